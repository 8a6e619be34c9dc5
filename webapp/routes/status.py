"""`POST /api/v1/whatsapp/status`: Twilio reports how far a message we sent has got.

Twilio calls it when the message was sent with a status callback (`PUBLIC_BASE_URL` set). The URL
carries our own id for the message (`?ref=`), so a report that arrives before we stored the
message's SID still finds it. Reports arrive in any order; a status only moves forward.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import Blueprint, jsonify, request

from webapp.auth import twilio_signature_required
from webapp.db.events import message_event
from webapp.db.messages import RESENDABLE
from webapp.services import services
from webapp.whatsapp.inbound import InvalidInbound, parse_status_report

log = logging.getLogger(__name__)
bp = Blueprint("status", __name__)


@bp.post("/status")
@twilio_signature_required
def record():
    try:
        report = parse_status_report(request.args, request.form)
    except InvalidInbound as exc:
        return jsonify(error=exc.message, field=exc.field), 400
    now = datetime.now(timezone.utc)
    if not services().store.messages.record_status(
        report.message_id, report.message_sid, report.status, report.error_code, now
    ):
        log.warning("status report for a message we do not have: ref %s, %s", report.message_id, report.message_sid)
        return jsonify(error="no message of ours has this ref and MessageSid"), 404
    if report.error_code:
        log.warning("message %s is %s: Twilio error %s", report.message_sid, report.status, report.error_code)
    if report.status in RESENDABLE:  # Twilio gave up on it
        record_failure(services().store, report.message_id, report.error_code, now)
    return "", 204


def record_failure(store, message_id, error_code: int | None, now: datetime) -> None:
    message = store.messages.get(message_id)
    if message.get("conversation_id"):  # a send-test message belongs to none
        store.events.record([message_event("message_failed", message, now, error_code=error_code)])
