"""`POST /api/v1/whatsapp/webhook`: Twilio delivers a customer's message here.

The request only validates, stores and enqueues; the answer is produced by the background
worker and sent through the REST API, so Twilio always gets its reply within milliseconds.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from flask import Blueprint, Response, g, jsonify, request
from twilio.twiml.messaging_response import MessagingResponse

from rag.language import detect_language, phrase
from webapp.auth import twilio_signature_required
from webapp.db.events import message_event
from webapp import logs
from webapp.logs import mask_phone
from webapp.services import services
from webapp.whatsapp.inbound import InvalidInbound, parse_inbound

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)
OUTCOME_BY_STATUS = {200: "stored", 400: "invalid", 403: "forbidden"}


@bp.post("/webhook")
@twilio_signature_required
def receive():
    app = services()
    settings = app.settings
    try:
        inbound = parse_inbound(request.form, settings.max_inbound_chars)
    except InvalidInbound as exc:
        return jsonify(error=exc.message, field=exc.field), 400

    now = datetime.now(timezone.utc)
    conversation_id, started = app.store.sessions.conversation_id(inbound.wa_id, now)
    logs.bind(message_sid=inbound.message_sid, conversation_id=conversation_id)  # until the request ends
    if started:
        app.store.conversations.start(conversation_id, inbound.wa_id, now)
    message_id = app.store.messages.insert_inbound(
        {
            "twilio_sid": inbound.message_sid,
            "conversation_id": conversation_id,
            "wa_id": inbound.wa_id,
            "body": inbound.body,
            "type": inbound.type,
            "media": inbound.media,
            **({"location": inbound.location} if inbound.location else {}),
            "profile_name": inbound.profile_name,
            "created_at": now,
            "updated_at": now,
        }
    )
    if message_id is None:
        log.info("duplicate webhook for %s ignored", inbound.message_sid)
        g.webhook_outcome = "duplicate"
        return _twiml_ok()

    broken = app.hit_customer_limit(inbound.wa_id)
    if broken is not None:
        g.webhook_outcome = "rate_limited"
        app.store.messages.mark_inbound(message_id, "rate_limited", now)
        app.store.sessions.touch(inbound.wa_id, conversation_id, now, inbound.profile_name)
        # The worker records the others when it takes them up, off the path Twilio waits for.
        app.store.events.record([message_event("message_received", {"_id": message_id,
                                                                    "conversation_id": conversation_id}, now)])
        log.info("customer %s rate limited (%s)", mask_phone(inbound.wa_id), broken)
        if not app.may_send_notice(inbound.wa_id, broken):
            return _twiml_ok()
        language = detect_language(inbound.body)
        app.store.messages.queue_reply(
            conversation_id, inbound.wa_id, [message_id], [phrase("rate_limited", language)], now, kind="notice"
        )
    due_at = now + timedelta(seconds=settings.reply_debounce_seconds)
    app.store.jobs.enqueue(conversation_id, inbound.wa_id, due_at)
    log.info("stored %s from %s", inbound.message_sid, mask_phone(inbound.wa_id))
    return _twiml_ok()


@bp.after_request
def count_outcome(response: Response) -> Response:
    outcome = g.get("webhook_outcome") or OUTCOME_BY_STATUS.get(response.status_code, f"http_{response.status_code}")
    services().metrics.webhooks.labels(outcome=outcome).inc()
    return response


def _twiml_ok() -> Response:
    """An empty TwiML answer: Twilio sends nothing itself; our reply goes out via the REST API."""
    return Response(str(MessagingResponse()), status=200, mimetype="application/xml")
