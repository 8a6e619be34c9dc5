"""The inbox: what happens to a customer's message whichever channel brought it, and to a
provider's report on a message we sent. Channels' webhooks call it once they have authenticated
and parsed a delivery; it does only what the provider must wait for, and the worker answers.

- A message is stored once (the provider's id makes a redelivery a no-op), counted against the
  customer's rate limit (a limited message is kept, not answered, with one notice per window) and
  its conversation queued for the worker, due after REPLY_DEBOUNCE_SECONDS.
- A status report moves our message's status forward, never back. One that arrives before the
  worker has stored the provider's id for the message is asked for again (Meta redelivers).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from rag.language import detect_language, phrase
from webapp import logs
from webapp.chatwoot import sync as chatwoot
from webapp.channels.base import InboundMessage, StatusReport
from webapp.db.events import message_event
from webapp.db.messages import RESENDABLE
from webapp.logs import mask_phone
from webapp.services import Services

log = logging.getLogger(__name__)


def receive(app: Services, inbound: InboundMessage, now: datetime) -> str:
    """Store `inbound` and queue its conversation: `stored`, `duplicate` or `rate_limited`."""
    store = app.store
    conversation_id, started = store.sessions.conversation_id(inbound.channel, inbound.wa_id, now)
    logs.bind(message_sid=inbound.external_id, conversation_id=conversation_id)  # until the request ends
    if started:
        store.conversations.start(conversation_id, inbound.wa_id, inbound.channel, now, inbound.profile_name)
    message_id = store.messages.insert_inbound({
        "channel": inbound.channel,
        "business": inbound.business,
        "external_id": inbound.external_id,
        "conversation_id": conversation_id,
        "wa_id": inbound.wa_id,
        "body": inbound.body,
        "type": inbound.type,
        "media": inbound.media,
        **({"location": inbound.location} if inbound.location else {}),
        **({"context": inbound.context} if inbound.context else {}),
        "profile_name": inbound.profile_name,
        "created_at": now,
        "updated_at": now,
    })
    if message_id is None:
        log.info("duplicate delivery of %s ignored", inbound.external_id)
        return "duplicate"
    app.chatwoot.tell(conversation_id, inbound.wa_id, now, chatwoot.incoming(shown(inbound), inbound.profile_name))
    outcome = "stored"
    broken = app.hit_customer_limit(inbound.wa_id)
    if broken is not None:
        outcome = "rate_limited"
        store.messages.mark_inbound(message_id, "rate_limited", now)
        store.sessions.touch(inbound.wa_id, conversation_id, now, inbound.profile_name)
        # The worker records the others when it takes them up, off the path the provider waits for.
        store.events.record([message_event("message_received", {"_id": message_id,
                                                                "conversation_id": conversation_id}, now)])
        log.info("customer %s rate limited (%s)", mask_phone(inbound.wa_id), broken)
        if not app.may_send_notice(inbound.wa_id, broken):
            return outcome
        notice = phrase("rate_limited", detect_language(inbound.body))
        store.messages.queue_reply(conversation_id, inbound.wa_id, [message_id], [notice], now, kind="notice",
                                   route={"channel": inbound.channel, "business": inbound.business})
        app.chatwoot.tell(conversation_id, inbound.wa_id, now, chatwoot.outgoing(notice))
    store.jobs.enqueue(conversation_id, inbound.wa_id, now + timedelta(seconds=app.settings.reply_debounce_seconds))
    log.info("%s %s from %s", outcome, inbound.external_id, mask_phone(inbound.wa_id))
    return outcome


def shown(inbound: InboundMessage) -> str:
    """The message as an agent reads it: its text, or what it is ("[audio]") when it has none."""
    return inbound.body or f"[{inbound.type}]"


def apply_status(app: Services, report: StatusReport, now: datetime) -> str:
    """Record a provider's status report: `applied`; `unknown` when it is not about a message of
    ours; `early` when it may be about one the worker is sending, whose id the provider has not
    given back yet (a provider that names messages by its own id alone: Meta's), to be delivered
    again."""
    store = app.store
    if not store.messages.record_status(report.message_id, report.external_id, report.status, report.error_code, now):
        if report.message_id is None and report.wa_id and store.messages.sending_to(report.wa_id):
            log.info("status report %s may be about a message still being sent: asked again", report.external_id)
            return "early"
        log.warning("status report for a message we do not have: ref %s, %s", report.message_id, report.external_id)
        return "unknown"
    if report.error_code:
        log.warning("message %s is %s: error %s", report.external_id, report.status, report.error_code)
    if report.status in RESENDABLE:  # the provider gave up on it
        message = store.messages.get(report.message_id) if report.message_id else \
            store.messages.find_outbound(report.external_id)
        if message.get("conversation_id"):  # a send-test message belongs to none
            store.events.record([message_event("message_failed", message, now, error_code=report.error_code)])
    return "applied"
