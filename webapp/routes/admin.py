"""Admin API under `/api/v1/whatsapp/` (admin token required): stats, conversations, sessions.

- `GET stats`: figures over all conversations and messages (see `webapp.admin.stats`).
- `GET conversations?status=open|closed&page=1&per_page=20`: newest first.
- `GET conversations/<id>`: the conversation with its messages and their delivery statuses.
- `POST conversations/<id>/close`: closed; the customer's next message starts a new one.
- `POST conversations/<id>/release`: out of a handoff; the bot answers again.
- `POST conversations/<id>/reply`: a person's reply (`text`), sent via Twilio as role `agent`.
- `DELETE sessions/<wa_id>`: reset the customer; their next message starts a new conversation.
- `POST messages/<id>/resend`: queue again the parts of a reply that Twilio never delivered.
- `GET leads`, `GET leads.csv`: the contact details customers gave, listed or as a CSV file.
- `DELETE customers/<wa_id>`: erase everything about a customer, on their request.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify, request, stream_with_context
from pydantic import BaseModel

from webapp.admin import (AdminError, agent_reply, close_conversation, conversation_record, find_conversation,
                          lead_record, message_record, release_handoff, resend_failed_reply, stats)
from webapp.auth import admin_required
from webapp.chatwoot import sync as chatwoot
from webapp.db.conversations import STATUSES
from webapp.leads import leads_csv
from webapp.request_body import read_body
from webapp.retention import erase_customer
from webapp.services import services
from webapp.validation import whole_number

bp = Blueprint("admin", __name__)

WA_ID = re.compile(r"[0-9]{6,15}")  # E.164 digits, as Twilio's WaId sends them
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,100}")
MAX_PER_PAGE = 100
MAX_MESSAGES = 1000


@bp.get("/stats")
@admin_required
def show_stats():
    return jsonify(stats(services().store, _now()))


@bp.get("/conversations")
@admin_required
def list_conversations():
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        return jsonify(error=f"status must be one of: {', '.join(STATUSES)}"), 400
    page, per_page = _paging()
    found, total = services().store.conversations.page(status, page, per_page)
    return jsonify(conversations=[conversation_record(c) for c in found], page=page, per_page=per_page, total=total)


@bp.get("/conversations/<conversation_id>")
@admin_required
def show_conversation(conversation_id: str):
    store = services().store
    conversation = find_conversation(store, conversation_id)
    messages = store.messages.of_conversation(conversation_id, MAX_MESSAGES)
    return jsonify({**conversation_record(conversation), "messages": [message_record(m) for m in messages]})


@bp.post("/conversations/<conversation_id>/close")
@admin_required
def close(conversation_id: str):
    closed_now = close_conversation(services().store, conversation_id, _now(), mirror=services().chatwoot)
    return jsonify(id=conversation_id, status="closed", already_closed=not closed_now)


@bp.post("/conversations/<conversation_id>/release")
@admin_required
def release(conversation_id: str):
    return jsonify(release_handoff(services().store, conversation_id, _now(), mirror=services().chatwoot))


class AgentReply(BaseModel):
    """`{"text": …}` (JSON) or a `text` form field."""

    text: str


@bp.post("/conversations/<conversation_id>/reply")
@admin_required
def reply(conversation_id: str):
    text = read_body(AgentReply, form=True).text
    key = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
    if not IDEMPOTENCY_KEY.fullmatch(key):
        return jsonify(error="Idempotency-Key must be 1 to 100 of A-Z a-z 0-9 . _ : -", field="Idempotency-Key"), 400
    app = services()
    queued = agent_reply(app.store, app.channels, conversation_id, text, key, _now(), mirror=app.chatwoot)
    return jsonify(queued=[message_record(m) for m in queued]), 202


@bp.delete("/customers/<wa_id>")
@admin_required
def erase(wa_id: str):
    wa_id = _wa_id(wa_id)
    return jsonify(wa_id=wa_id, deleted=erase_customer(services().store, wa_id))


@bp.get("/leads")
@admin_required
def list_leads():
    page, per_page = _paging()
    found, total = services().store.leads.page(page, per_page)
    return jsonify(leads=[lead_record(lead) for lead in found], page=page, per_page=per_page, total=total)


@bp.get("/leads.csv")
@admin_required
def export_leads():
    lines = stream_with_context(leads_csv(services().store.leads.every()))
    return Response(lines, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="leads.csv"'})


@bp.delete("/sessions/<wa_id>")
@admin_required
def reset_session(wa_id: str):
    wa_id = _wa_id(wa_id)
    app = services()
    store = app.store
    conversation_ids = store.sessions.end(wa_id)
    if not conversation_ids:
        return jsonify(error="no session for this number"), 404
    for conversation_id in conversation_ids:
        if store.conversations.close(conversation_id, _now(), "session reset"):
            app.chatwoot.tell(conversation_id, wa_id, _now(), chatwoot.closed())
    return jsonify(wa_id=wa_id, ended_conversation=conversation_ids[0], ended_conversations=conversation_ids)


@bp.post("/messages/<message_id>/resend")
@admin_required
def resend(message_id: str):
    queued = resend_failed_reply(services().store, message_id, _now())
    return jsonify(queued=[message_record(m) for m in queued]), 202


@bp.errorhandler(AdminError)
def admin_error(error: AdminError):
    return jsonify(error=error.message), error.status


def _wa_id(given: str) -> str:
    """The digits of a customer's number given as 34600111222, +34600111222 or whatsapp:+34600111222."""
    digits = given.removeprefix("whatsapp:").removeprefix("+")
    if not WA_ID.fullmatch(digits):
        raise AdminError("wa_id must be the customer's number: 6 to 15 digits, like 34600111222", 400)
    return digits


def _paging() -> tuple[int, int]:
    page, per_page = _positive_int("page", 1), _positive_int("per_page", 20)
    if page is None or per_page is None or per_page > MAX_PER_PAGE:
        raise AdminError(f"page and per_page must be whole numbers from 1 (per_page at most {MAX_PER_PAGE})", 400)
    return page, per_page


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _positive_int(name: str, default: int) -> int | None:
    return whole_number(request.args.get(name, str(default)), 10**6 - 1)
