"""Chatwoot's webhook, `/api/v1/chatwoot/webhook`: what agents do in Chatwoot, brought back.

Authenticated as Chatwoot signs webhooks: `X-Chatwoot-Signature` is `sha256=` and the HMAC-SHA256,
keyed with CHATWOOT_WEBHOOK_SECRET, of `{X-Chatwoot-Timestamp}.{raw body}`; a timestamp more than
MAX_AGE_SECONDS away from now is refused (a replay of an old delivery), and each
`X-Chatwoot-Delivery` is acted on once (without one, each signature). Then:

- `message_created`, an agent's reply (`outgoing`, not private) in a conversation we mirror: sent
  to the customer through their conversation's channel, split and in order, if WhatsApp's 24-hour
  window is open, or after the approved template and the customer's answer to it (REPLY_TEMPLATE_*;
  the agent is told either way in a private note if it is closed); the conversation goes to the
  person if it had not. Our own messages, which Chatwoot sends back, are recognised and ignored.
- `conversation_status_changed` to `resolved` or `pending`: the bot answers again; to `open`: the
  conversation goes to the person. (Our own changes come back too, and change nothing: they
  follow ours.)
- Anything else is acknowledged and ignored.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta, timezone

from flask import Blueprint, jsonify, request

from webapp.admin import AdminError, agent_reply, release_handoff
from webapp.chatwoot import sync as chatwoot
from webapp.db.messages import HELD
from webapp.handoff import handoff_event
from webapp.services import services

log = logging.getLogger(__name__)
bp = Blueprint("chatwoot", __name__)
MAX_ID = 2**63 - 1  # the largest id MongoDB can look up; Chatwoot's ids are far below it
CHANNEL = "chatwoot"
MAX_AGE_SECONDS = 300
BOT_ANSWERS = ("resolved", "pending")  # a conversation set back to either is the bot's again
OUTGOING = ("outgoing", 1)  # as webhooks write it, and as the API does
HELD_NOTE = ("Fuera de la ventana de 24 h de WhatsApp: se ha enviado al cliente la plantilla aprobada; tu respuesta "
             "le llegará cuando conteste.")


@bp.post("/webhook")
def webhook():
    app = services()
    body = request.get_data(cache=True)
    problem = signature_problem(app.settings.chatwoot_webhook_secret.get_secret_value(), body,
                                request.headers.get("X-Chatwoot-Signature", ""),
                                request.headers.get("X-Chatwoot-Timestamp", ""), time.time())
    if problem:
        log.warning("Chatwoot webhook refused: %s", problem)
        app.metrics.webhooks.labels(channel=CHANNEL, outcome="forbidden").inc()
        return jsonify(error=problem), 401
    # Chatwoot names each delivery; without the header, a replay is the same signed timestamp and body
    delivery = request.headers.get("X-Chatwoot-Delivery") or "signature:" + request.headers["X-Chatwoot-Signature"]
    if len(delivery) > 100:
        return jsonify(error="X-Chatwoot-Delivery is too long", field="X-Chatwoot-Delivery"), 400
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return jsonify(error="the body is not valid JSON", field="body"), 400
    if not isinstance(payload, dict):
        return jsonify(error="the body must be a JSON object", field="body"), 400
    now = datetime.now(timezone.utc)
    if not app.store.chatwoot_deliveries.first_time(delivery, now):
        app.metrics.webhooks.labels(channel=CHANNEL, outcome="duplicate").inc()
        return jsonify(outcome="duplicate")
    try:
        outcome = act_on(app, payload, now)
    except Exception:
        app.store.chatwoot_deliveries.forget(delivery)  # Chatwoot delivers it again
        raise
    app.metrics.webhooks.labels(channel=CHANNEL, outcome=outcome).inc()
    return jsonify(outcome=outcome)


def signature_problem(secret: str, body: bytes, signature: str, timestamp: str, now: float) -> str | None:
    """Why the delivery is not Chatwoot's (or is too old), or None."""
    if not timestamp.isdigit() or not signature.startswith("sha256="):
        return "missing or invalid X-Chatwoot-Signature or X-Chatwoot-Timestamp"
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.removeprefix("sha256=").encode(), expected.encode()):
        return "invalid X-Chatwoot-Signature"
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return f"X-Chatwoot-Timestamp more than {MAX_AGE_SECONDS} s away from now"
    return None


def act_on(app, payload: dict, now: datetime) -> str:
    """What the delivery meant for us: `sent`, `held`, `refused`, `echo`, `released`, `handed_off` or
    `ignored`."""
    event = payload.get("event")
    conversation = payload.get("conversation") if event == "message_created" else payload
    state = _state_of(app, conversation)
    if state is None:
        return "ignored"  # not a conversation we mirror
    if event == "message_created":
        return _agent_message(app, state, payload, now)
    if event == "conversation_status_changed":  # (not conversation_updated: our own labels and attributes send it)
        return _status_changed(app, state, payload.get("status"), now)
    return "ignored"


def _state_of(app, conversation) -> dict | None:
    chatwoot_id = conversation.get("id") if isinstance(conversation, dict) else None
    if type(chatwoot_id) is not int or not 0 < chatwoot_id <= MAX_ID:  # bool is an int; BSON stores 64 bits
        return None
    return app.store.chatwoot_sync.of_chatwoot_conversation(chatwoot_id)


def _agent_message(app, state: dict, message: dict, now: datetime) -> str:
    text = message.get("content")
    if message.get("message_type") not in OUTGOING or message.get("private") or not isinstance(text, str):
        return "ignored"  # the customer's messages (ours, echoed), and notes between agents
    if message.get("id") in state.get("posted", []) or (state.get("in_flight") or {}).get("content") == text:
        return "echo"
    conversation_id = state["_id"]
    try:
        parts = agent_reply(app.store, app.channels, conversation_id, text, f"chatwoot:{message.get('id')}", now)
    except AdminError as refused:
        app.chatwoot.tell(conversation_id, state["wa_id"], now, chatwoot.note(f"No enviado al cliente: {refused}"))
        return "refused"
    _hand_to_person(app, state, now)
    if any(part["status"] == HELD for part in parts):
        app.chatwoot.tell(conversation_id, state["wa_id"], now, chatwoot.note(HELD_NOTE))
        return "held"
    return "sent"


def _status_changed(app, state: dict, status, now: datetime) -> str:
    if status in BOT_ANSWERS:
        try:
            released = release_handoff(app.store, state["_id"], now, by="chatwoot", mirror=app.chatwoot)["released"]
        except AdminError:  # our conversation is gone (erased)
            return "ignored"
        return "released" if released else "ignored"
    if status == "open":
        return "handed_off" if _hand_to_person(app, state, now) else "ignored"
    return "ignored"


def _hand_to_person(app, state: dict, now: datetime) -> bool:
    """The conversation goes to the person now answering it in Chatwoot (if it was the bot's)."""
    until = now + timedelta(minutes=app.settings.handoff_timeout_minutes)
    handoff = app.store.conversations.start_handoff(state["_id"], now, until, "agent")
    if handoff:
        app.store.events.record([handoff_event("handoff_requested", state["_id"], handoff, reason="agent")])
    return handoff is not None
