"""Twilio's webhooks, under /api/v1/whatsapp/, each signed with our auth token (X-Twilio-Signature):

- `POST webhook`: a customer's message. Validated, handed to the inbox, and answered with empty
  TwiML in milliseconds; the worker's answer goes out through the REST API.
- `POST status`: how far a message we sent has got. Its URL carries our own id for the message
  (`?ref=`), so a report that arrives before we stored the message's SID still finds it.
"""
from __future__ import annotations

import functools
import logging
from datetime import datetime, timezone
from urllib.parse import quote

from flask import Blueprint, Response, g, jsonify, request
from twilio.twiml.messaging_response import MessagingResponse

from webapp import inbox
from webapp.channels.base import InvalidInbound
from webapp.channels.twilio.inbound import parse_inbound, parse_status_report, signature_is_valid
from webapp.services import services

log = logging.getLogger(__name__)
bp = Blueprint("twilio", __name__)
OUTCOME_BY_STATUS = {200: "stored", 400: "invalid", 403: "forbidden"}


def twilio_signature_required(view):
    """Refuse (403) a request not signed by Twilio with our auth token, unless the check is off."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        settings = services().settings
        if settings.validate_twilio_signature and not signature_is_valid(
            settings.twilio_auth_token.get_secret_value(),
            _public_url(settings.public_base_url),
            request.form,
            request.headers.get("X-Twilio-Signature", ""),
        ):
            log.warning("%s refused: missing or invalid X-Twilio-Signature", request.path)
            return jsonify(error="invalid or missing X-Twilio-Signature"), 403
        return view(*args, **kwargs)

    return wrapper


def _public_url(public_base_url: str) -> str:
    """The URL Twilio signed, as it went on the wire: the configured public base (required when
    sending) or, in dry-run, the scheme and host Flask saw. Not `request.url`, which decodes it into
    an IRI (a Host of `xn--` makes that raise) and so differs from what was signed when it holds
    %-escapes."""
    base = public_base_url or f"{request.scheme}://{request.host}"
    query = request.query_string.decode("latin-1")
    return base + quote(request.script_root + request.path) + (f"?{query}" if query else "")


@bp.post("/webhook")
@twilio_signature_required
def webhook():
    app = services()
    try:
        inbound = parse_inbound(request.form, app.settings.max_inbound_chars)
    except InvalidInbound as exc:
        return jsonify(error=exc.message, field=exc.field), 400
    g.webhook_outcome = inbox.receive(app, inbound, datetime.now(timezone.utc))
    # Empty TwiML: Twilio sends nothing itself; our reply goes out via the REST API.
    return Response(str(MessagingResponse()), status=200, mimetype="application/xml")


@bp.post("/status")
@twilio_signature_required
def status():
    try:
        report = parse_status_report(request.args, request.form)
    except InvalidInbound as exc:
        return jsonify(error=exc.message, field=exc.field), 400
    if inbox.apply_status(services(), report, datetime.now(timezone.utc)) == "unknown":
        return jsonify(error="no message of ours has this ref and MessageSid"), 404
    return "", 204


@bp.after_request
def count_webhook(response: Response) -> Response:
    if request.endpoint == "twilio.webhook":
        outcome = g.get("webhook_outcome") or OUTCOME_BY_STATUS.get(response.status_code, f"http_{response.status_code}")
        services().metrics.webhooks.labels(channel="twilio", outcome=outcome).inc()
    return response
