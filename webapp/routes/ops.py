"""Ops routes under `/api/v1/whatsapp/` (admin token required): `test`, `diag`, `send-test`."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, jsonify
from pydantic import BaseModel, field_validator

from webapp.auth import admin_required
from webapp.channels import Channels
from webapp.channels.base import Channel, SendError
from webapp.chatwoot import client_of
from webapp.config import WHATSAPP_ADDRESS, masked
from webapp.formatting import strip_control_chars
from webapp.logs import mask_phone
from webapp.request_body import read_body
from webapp.services import services
from webapp.validation import InvalidInput

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)


@bp.get("/test")
@admin_required
def test_credentials():
    """Ask each channel's provider whether its credentials work (Twilio: the Accounts API; Meta:
    the phone number's details). Twilio's answer also stands at the top, as before channels."""
    results = {channel.name: channel.check() for channel in services().channels}
    ok = all(result["status"] == "ok" for result in results.values())
    body = {**results.get("twilio", {}), "status": "ok" if ok else "error", "channels": results}
    return jsonify(body), 200 if ok else 502


@bp.get("/diag")
@admin_required
def diag():
    """Which settings are loaded; secrets show only their last 4 characters."""
    settings = services().settings
    channels = services().channels
    return jsonify(
        channels={channel.name: {"mode": "dry-run" if channel.dry_run else "sending", **channel.describe()}
                  for channel in channels},
        loaded=settings.twilio_sends,
        dry_run=channels.get("twilio").dry_run if channels.get("twilio") else None,
        sid=masked(settings.twilio_account_sid),
        token=masked(settings.twilio_auth_token),
        **{"from": settings.twilio_whatsapp_from},
        api_base=settings.twilio_api_base,
        public_base_url=settings.public_base_url or None,
        signature_validation=settings.validate_twilio_signature,
        mongodb=_without_password(settings.mongodb_uri),
        chroma=settings.chroma_url or str(settings.chroma_path),
        answer_mode="llm" if settings.uses_llm else "offline",
        openai={"model": settings.openai_model, "base_url": settings.openai_base_url or None,
                "key": masked(settings.openai_api_key)},
        admin_token=masked(settings.admin_token),
        rate_limit_per_wa_id=settings.rate_limit_per_wa_id,
        chatwoot={**client_of(settings).describe(), "webhook_secret": masked(settings.chatwoot_webhook_secret)}
        if settings.chatwoot_on else None,
    )


class SendTest(BaseModel):
    to: str
    text: str
    channel: str = ""  # the channel to send through; the first configured by default

    @field_validator("to")
    @classmethod
    def _whatsapp_address(cls, value: str) -> str:
        value = value.strip()
        if not WHATSAPP_ADDRESS.match(value):
            raise ValueError("must be a WhatsApp address like whatsapp:+34600111222")
        return value

    @field_validator("text")
    @classmethod
    def _some_text(cls, value: str) -> str:
        value = strip_control_chars(value).strip()
        if not value:
            raise ValueError("must not be empty")
        return value


@bp.route("/send-test", methods=["GET", "POST"])
@admin_required
def send_test():
    """Send a text to a WhatsApp number: `to=whatsapp:+…&text=…` (query, form or JSON)."""
    params = read_body(SendTest, form=True, query=True)
    app = services()
    channel = _channel(app.channels, params.channel)
    if len(params.text) > channel.max_part_chars:
        raise InvalidInput.one("text", f"must have 1 to {channel.max_part_chars} characters ({channel.name})")
    wa_id, now = params.to.removeprefix("whatsapp:+"), datetime.now(timezone.utc)
    message_id = app.store.messages.insert_outbound(
        {"dedup_key": f"test:{now.timestamp()}:{params.to}", "kind": "test", "channel": channel.name, "business": "",
         "wa_id": wa_id, "body": params.text, "status": "submitting", "created_at": now, "updated_at": now}
    )
    try:
        result = channel.send_text("", wa_id, params.text, reference=str(message_id))
    except SendError as exc:
        app.store.messages.record_send(message_id, "failed", now, error_code=exc.code, error_message=exc.message)
        log.warning("send-test to %s failed: %s", mask_phone(params.to), exc.message)
        return jsonify({"status": "error", channel.name: {"ok": False, "status": exc.http_status, "code": exc.code,
                                                          "message": exc.message}}), 502
    app.store.messages.record_send(message_id, result.status, now, external_id=result.external_id)
    return jsonify({"status": "ok", channel.name: {"ok": True, "status": result.status, "sid": result.external_id}})


def _channel(channels: Channels, name: str) -> Channel:
    if not name:
        return channels.default
    try:
        return channels[name]
    except KeyError:
        raise InvalidInput.one("channel", f"must be one of: {', '.join(c.name for c in channels)}") from None


def _without_password(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password:
        netloc = f"{parts.username}:{masked(parts.password)}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
