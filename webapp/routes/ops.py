"""Ops routes under `/api/v1/whatsapp/` (admin token required): `test`, `diag`, `send-test`."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, jsonify
from pydantic import BaseModel, field_validator

from webapp.auth import admin_required
from webapp.config import WHATSAPP_ADDRESS, masked
from webapp.logs import mask_phone
from webapp.request_body import read_body
from webapp.services import services
from webapp.whatsapp.formatting import MAX_PART_CHARS, strip_control_chars
from webapp.whatsapp.outbound import SendError

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)


@bp.get("/test")
@admin_required
def test_credentials():
    """Check the Twilio credentials against the Accounts API."""
    result = services().sender.check_credentials()
    return jsonify(result), 200 if result["status"] == "ok" else 502


@bp.get("/diag")
@admin_required
def diag():
    """Which settings are loaded; secrets show only their last 4 characters."""
    settings = services().settings
    return jsonify(
        loaded=settings.twilio_sends,
        dry_run=services().sender.dry_run,
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
    )


class SendTest(BaseModel):
    to: str
    text: str

    @field_validator("to")
    @classmethod
    def _whatsapp_address(cls, value: str) -> str:
        value = value.strip()
        if not WHATSAPP_ADDRESS.match(value):
            raise ValueError("must be a WhatsApp address like whatsapp:+34600111222")
        return value

    @field_validator("text")
    @classmethod
    def _one_message(cls, value: str) -> str:
        value = strip_control_chars(value).strip()
        if not 1 <= len(value) <= MAX_PART_CHARS:
            raise ValueError(f"must have 1 to {MAX_PART_CHARS} characters")
        return value


@bp.route("/send-test", methods=["GET", "POST"])
@admin_required
def send_test():
    """Send a text to a WhatsApp number: `to=whatsapp:+…&text=…` (query, form or JSON)."""
    params = read_body(SendTest, form=True, query=True)
    to, text = params.to, params.text
    app = services()
    now = datetime.now(timezone.utc)
    message_id = app.store.messages.insert_outbound(
        {"dedup_key": f"test:{now.timestamp()}:{to}", "kind": "test", "wa_id": to.removeprefix("whatsapp:+"),
         "body": text, "status": "submitting", "created_at": now, "updated_at": now}
    )
    try:
        result = app.sender.send(to, text, reference=str(message_id))
    except SendError as exc:
        app.store.messages.record_send(message_id, "failed", now, error_code=exc.code, error_message=exc.message)
        log.warning("send-test to %s failed: %s", mask_phone(to), exc.message)
        return jsonify(status="error", twilio={"ok": False, "status": exc.http_status, "code": exc.code,
                                                "message": exc.message}), 502
    app.store.messages.record_send(message_id, result.status, now, twilio_sid=result.sid)
    return jsonify(status="ok", twilio={"ok": True, "status": result.status, "sid": result.sid})


def _without_password(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password:
        netloc = f"{parts.username}:{masked(parts.password)}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)
