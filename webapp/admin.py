"""What admins see of conversations and do to them, shared by the admin API (`routes/admin.py`)
and the admin command (`scripts/admin.py`): the stats, conversations and messages as JSON-ready
records, and re-sending a reply Twilio never delivered."""
from __future__ import annotations

import math
import re
from datetime import datetime, time, timedelta

from bson import ObjectId

from webapp.db import Store

CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")
MESSAGE_ID = re.compile(r"[0-9a-f]{24}")
# WhatsApp accepts free-form text only within 24 hours of the customer's last message (Twilio 63016).
REPLY_WINDOW = timedelta(hours=24)
# Messages older than this before today's midnight are rolled up (webapp.db.stats_rollup): a
# message is never stored with a time that far in the past, whatever the clocks of the servers.
ROLLUP_LAG = timedelta(days=1)
RECENT = timedelta(days=7)  # the window of the response times
MESSAGE_FIELDS = ("direction", "type", "kind", "part", "parts", "body", "media", "location", "status", "twilio_sid", "error_code",
                  "error_message", "outcome", "created_at", "sent_at", "status_at", "resent_at")


class AdminError(Exception):
    """An admin request that cannot be carried out; `status` is its HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


def stats(store: Store, now: datetime) -> dict:
    """Conversations (total, open, active in the last 24 h and 7 d) and messages: in and out, answers
    by outcome, inbound in the last 24 h and 7 d, response times of the last 7 days (average and
    p95), failed deliveries by Twilio error code and unconfirmed sends.

    All-time totals come from the roll-up plus the messages stored since it, so the cost grows with
    the last days' traffic, not with the history."""
    rolled = _rolled_up_totals(store, now)
    recent = store.messages.totals(rolled["until"], None)
    conversations = dict(store.conversations.counts(), active_24h=store.sessions.active_since(now - timedelta(days=1)),
                         active_7d=store.sessions.active_since(now - RECENT))
    messages = {
        "inbound": rolled["inbound"] + recent["inbound"],
        "outbound": rolled["outbound"] + recent["outbound"],
        "inbound_24h": store.messages.inbound_since(now - timedelta(days=1)),
        "inbound_7d": store.messages.inbound_since(now - RECENT),
        "answers": {outcome: rolled["answers"].get(outcome, 0) + recent["answers"].get(outcome, 0)
                    for outcome in sorted({*rolled["answers"], *recent["answers"]})},
        "response_seconds_7d": _summary(store.messages.response_times(now - RECENT)),
        **store.messages.failures(),
    }
    return {"generated_at": now.isoformat(), "conversations": conversations, "messages": messages}


def _rolled_up_totals(store: Store, now: datetime) -> dict:
    """The roll-up, first moved on to ROLLUP_LAG before today's midnight if it was behind."""
    rolled = store.stats_rollup.get()
    boundary = datetime.combine(now.date(), time(), now.tzinfo) - ROLLUP_LAG
    if rolled["until"] is None or rolled["until"] < boundary:
        added = store.messages.totals(rolled["until"], boundary)
        store.stats_rollup.advance(rolled, boundary, added)  # or another process just did
        rolled = store.stats_rollup.get()
    return rolled


def _summary(durations: list[float]) -> dict:
    """Count, average and p95 (nearest rank)."""
    if not durations:
        return {"count": 0, "average": None, "p95": None}
    p95 = sorted(durations)[max(0, math.ceil(0.95 * len(durations)) - 1)]
    return {"count": len(durations), "average": round(sum(durations) / len(durations), 3), "p95": round(p95, 3)}


def conversation_record(document: dict) -> dict:
    return {"id": document["_id"], "wa_id": document["wa_id"], "status": document["status"],
            "started_at": _iso(document["started_at"]), "closed_at": _iso(document.get("closed_at"))}


def message_record(document: dict) -> dict:
    record = {"id": str(document["_id"]), **{name: _iso(document[name]) for name in MESSAGE_FIELDS if name in document}}
    if "resend_of" in document:
        record["resend_of"] = str(document["resend_of"])
    return record


def find_conversation(store: Store, conversation_id: str) -> dict:
    conversation = store.conversations.get(conversation_id) if CONVERSATION_ID.fullmatch(conversation_id) else None
    if conversation is None:
        raise AdminError("no such conversation", 404)
    return conversation


def resend_failed_reply(store: Store, message_id: str, now: datetime) -> list[dict]:
    """Queue again the parts of the reply `message_id` belongs to that Twilio never delivered
    (failed or undelivered, not re-sent yet); the worker sends them, in order. Refused outside
    the customer's 24-hour window, where Twilio would refuse them too."""
    message = store.messages.get(ObjectId(message_id)) if MESSAGE_ID.fullmatch(message_id) else None
    if message is None or message["direction"] != "outbound":
        raise AdminError("no such outbound message", 404)
    if not message.get("reply_to"):
        raise AdminError("only replies to a customer can be re-sent (this is a send-test message)", 400)
    failed = store.messages.resendable_parts(message["reply_to"])
    if not failed:
        raise AdminError(f"nothing to re-send: this reply has no failed or undelivered part left "
                         f"(this part is {message['status']})", 409)
    closes_at = reply_window_closes_at(store, message["wa_id"], message["conversation_id"])
    if closes_at is None or now >= closes_at:
        raise AdminError("outside WhatsApp's 24-hour window: the customer last wrote more than 24 hours ago, "
                         "so Twilio would refuse a free-form message (63016)", 409)
    queued = store.messages.queue_resend(failed, now)
    store.jobs.enqueue(message["conversation_id"], message["wa_id"], now)
    return queued


def reply_window_closes_at(store: Store, wa_id: str, conversation_id: str) -> datetime | None:
    """When the customer's 24-hour window closes: 24 h after their last message, in this
    conversation or a newer one (their session's). None if they never wrote."""
    times = [t for t in (store.sessions.last_inbound_at(wa_id), store.messages.last_inbound_at(conversation_id)) if t]
    return max(times) + REPLY_WINDOW if times else None


def _iso(value):
    """Times as ISO 8601 (Flask would write them as HTTP dates)."""
    return value.isoformat() if isinstance(value, datetime) else value
