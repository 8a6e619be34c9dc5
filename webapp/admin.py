"""What admins see of conversations and do to them, shared by the admin API (`routes/admin.py`)
and the admin command (`scripts/admin.py`): the stats; conversations, messages and leads as
JSON-ready records; re-sending a reply Twilio never delivered, a person's reply, and giving a
conversation in handoff back to the bot."""
from __future__ import annotations

import math
import re
from datetime import datetime, time, timedelta

from bson import ObjectId

from webapp.channels import Channels, route_of
from webapp.chatwoot import sync as chatwoot
from webapp.chatwoot.sync import ChatwootOutbox
from webapp.db import Store
from webapp.formatting import MAX_REPLY_CHARS, split_parts, strip_control_chars
from webapp.handoff import handoff_event

CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")
MESSAGE_ID = re.compile(r"[0-9a-f]{24}")
# WhatsApp accepts free-form text only within 24 hours of the customer's last message (Twilio 63016, Meta 131047).
REPLY_WINDOW = timedelta(hours=24)
WINDOW_CLOSED = ("outside WhatsApp's 24-hour window: the customer last wrote more than 24 hours ago, so WhatsApp "
                 "would refuse a free-form message (Twilio 63016, Meta 131047)")
# Messages older than this before today's midnight are rolled up (webapp.db.stats_rollup): a
# message is never stored with a time that far in the past, whatever the clocks of the servers.
ROLLUP_LAG = timedelta(days=1)
RECENT = timedelta(days=7)  # the window of the response times
DAYS_IN_STATS = 7  # the days the stats show one by one
MESSAGE_FIELDS = ("direction", "type", "kind", "part", "parts", "body", "media", "location", "status", "channel", "external_id",
                  "error_code", "error_message", "outcome", "created_at", "sent_at", "status_at", "resent_at")


class AdminError(Exception):
    """An admin request that cannot be carried out; `status` is its HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


def stats(store: Store, now: datetime) -> dict:
    """Conversations (total, open, in handoff, active in the last 24 h and 7 d); messages: in and
    out, answers by outcome, inbound in the last 24 h and 7 d, response times of the last 7 days
    (average and p95), failed deliveries by Twilio error code and unconfirmed sends; handoffs
    (requested, in the last 7 days, in progress) and leads (all, created in the last 7 days), the
    counts of events on the (type, at) index; and the last 7 days one by one (`per_day`).

    All-time totals come from the roll-up plus the messages stored since it, so the cost grows with
    the last days' traffic, not with the history."""
    rolled = roll_up(store, now)
    recent = store.messages.totals(rolled["until"], None)
    week = store.messages.per_day(now - RECENT)  # the last 7 x 24 h: the 7 days shown, and the start of an 8th
    conversations = dict(store.conversations.counts(), active_24h=store.sessions.active_since(now - timedelta(days=1)),
                         active_7d=store.sessions.active_since(now - RECENT))
    messages = {
        "inbound": rolled["inbound"] + recent["inbound"],
        "outbound": rolled["outbound"] + recent["outbound"],
        "inbound_24h": store.messages.inbound_since(now - timedelta(days=1)),
        "inbound_7d": sum(day["inbound"] for day in week.values()),
        "answers": {outcome: rolled["answers"].get(outcome, 0) + recent["answers"].get(outcome, 0)
                    for outcome in sorted({*rolled["answers"], *recent["answers"]})},
        "response_seconds_7d": _summary([seconds for day in week.values() for seconds in day["response_seconds"]]),
        **store.messages.failures(),
    }
    week_ago = now - RECENT
    handoffs = {"requested": store.events.count("handoff_requested"),
                "requested_7d": store.events.count("handoff_requested", week_ago),
                "in_progress": conversations["handoff"]}
    leads = {"total": store.leads.count(), "created_7d": store.events.count("lead_created", week_ago)}
    return {"generated_at": now.isoformat(), "conversations": conversations, "messages": messages,
            "handoffs": handoffs, "leads": leads, "days": per_day(store, now, week)}


def per_day(store: Store, now: datetime, messages: dict[str, dict]) -> list[dict]:
    """The last DAYS_IN_STATS days (UTC), newest first, from `messages` (`Messages.per_day` since
    the first of them or before): the messages stored in and out; the questions the bot looked up
    and how they went (`_outcomes`); the response times of the answers queued that day, p50 and
    p95 in seconds (as `response_seconds_7d`; None without any); the handoffs requested and the
    leads created; and the ratings customers gave (`_ratings`)."""
    first_day = now.date() - timedelta(days=DAYS_IN_STATS - 1)
    since = datetime.combine(first_day, time(), now.tzinfo)
    ratings = store.events.per_day(["answer_rated"], since, "rating")
    happened = store.events.per_day(["handoff_requested", "lead_created"], since)
    days = []
    for offset in range(DAYS_IN_STATS):
        day = (now.date() - timedelta(days=offset)).isoformat()
        stored, counted = messages.get(day, {}), happened.get(day, {})
        seconds = stored.get("response_seconds", [])
        days.append({"day": day, "inbound": stored.get("inbound", 0), "outbound": stored.get("outbound", 0),
                     **_outcomes(stored.get("answers", {})),
                     "reply_seconds_p50": _percentile(seconds, 0.5), "reply_seconds_p95": _percentile(seconds, 0.95),
                     "handoffs": counted.get("handoff_requested", 0), "leads": counted.get("lead_created", 0),
                     **_ratings(ratings.get(day, {}))})
    return days


def _outcomes(answers: dict[str, int]) -> dict:
    """The questions the bot looked up, from its answers by outcome: `answered` (also offline,
    `fallback`) and `unknown`, with the share of each."""
    answered = answers.get("answered", 0) + answers.get("fallback", 0)
    unknown = answers.get("unknown", 0)
    return {"questions": answered + unknown, "answered": answered, "unknown": unknown,
            "answered_rate": _share(answered, answered + unknown), "unknown_rate": _share(unknown, answered + unknown)}


def _ratings(rated: dict[str, int]) -> dict:
    """👍 and 👎, and the share of 👍."""
    up, down = rated.get("up", 0), rated.get("down", 0)
    return {"thumbs_up": up, "thumbs_down": down, "thumbs_up_rate": _share(up, up + down)}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def roll_up(store: Store, now: datetime) -> dict:
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
    return {"count": len(durations), "average": round(sum(durations) / len(durations), 3),
            "p95": _percentile(durations, 0.95)}


def _percentile(durations: list[float], share: float) -> float | None:
    """The nearest-rank percentile (`share` 0.95: p95); None without durations."""
    if not durations:
        return None
    return round(sorted(durations)[max(0, math.ceil(share * len(durations)) - 1)], 3)


def conversation_record(document: dict) -> dict:
    record = {"id": document["_id"], "wa_id": document["wa_id"], "channel": route_of(document)["channel"],
              "status": document["status"], "started_at": _iso(document["started_at"]),
              "closed_at": _iso(document.get("closed_at"))}
    for name in ("handoff", "last_handoff"):  # the current one, and the latest released
        if name in document:
            record[name] = {key: _iso(value) for key, value in document[name].items()}
    return record


def lead_record(document: dict) -> dict:
    return {"conversation_id": document["_id"],
            **{name: _iso(value) for name, value in document.items() if name != "_id"}}


def message_record(document: dict) -> dict:
    record = {"id": str(document["_id"]), "role": role_of(document),
              **{name: _iso(document[name]) for name in MESSAGE_FIELDS if name in document}}
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
    check_reply_window(store, message["wa_id"], message["conversation_id"], now)
    queued = store.messages.queue_resend(failed, now)
    store.jobs.enqueue(message["conversation_id"], message["wa_id"], now)
    return queued


def check_reply_window(store: Store, wa_id: str, conversation_id: str, now: datetime) -> dict | None:
    """The customer's latest message in the conversation (None if it has none left), if WhatsApp's
    24-hour window for a free-form reply is open; else AdminError, before WhatsApp would refuse it."""
    last, closes_at = reply_window(store, wa_id, conversation_id)
    if closes_at is None or now >= closes_at:
        raise AdminError(WINDOW_CLOSED, 409)
    return last


def reply_window(store: Store, wa_id: str, conversation_id: str) -> tuple[dict | None, datetime | None]:
    """The customer's latest message in the conversation (None if it has none left), and when
    WhatsApp's 24-hour window for a free-form reply closes (None: it never opened): 24 h after
    their last message, in this conversation or a newer one (their session's)."""
    last = store.messages.last_inbound(conversation_id)
    channel = route_of(last or {})["channel"]
    times = [t for t in (store.sessions.last_inbound_at(wa_id, channel), last and last["created_at"]) if t]
    return last, max(times) + REPLY_WINDOW if times else None


def agent_reply(store: Store, channels: Channels, conversation_id: str, text: str, key: str,
                now: datetime, mirror: ChatwootOutbox | None = None) -> list[dict]:
    """Queue a person's reply to the customer (role `agent`), sent by the worker in order with the
    rest of the conversation, the way the customer last wrote. `key` names it: the same key again
    queues nothing more. `mirror`: where to queue it for Chatwoot (not for a reply from there).

    After the customer's 24-hour window, the reply is `held` and the channel's approved template
    (REPLY_TEMPLATE_*) goes instead, once per message of the customer's it follows; the worker
    sends what is held when the customer answers. Without a template: AdminError (409)."""
    conversation = find_conversation(store, conversation_id)
    text = strip_control_chars(text).strip()
    if not 1 <= len(text) <= MAX_REPLY_CHARS:
        raise AdminError(f"text must have 1 to {MAX_REPLY_CHARS} characters", 400)
    last, closes_at = reply_window(store, conversation["wa_id"], conversation_id)
    window_open = closes_at is not None and now < closes_at
    route = route_of(last or {})
    template = None if window_open else channels.reply_template(route["channel"])
    if not window_open and (template is None or last is None):
        raise AdminError(f"{WINDOW_CLOSED}; with an approved template set for it (REPLY_TEMPLATE_CONTENT_SID for "
                         "Twilio, REPLY_TEMPLATE_NAME and REPLY_TEMPLATE_LANGUAGE for the Cloud API), the reply "
                         "would wait for the customer's answer to it", 409)
    reply_to = [last["_id"]] if last else []
    parts = store.messages.queue_reply(conversation_id, conversation["wa_id"], reply_to,
                                       split_parts(text, channels.part_chars(route["channel"])), now,
                                       kind="agent", route=route, key=f"agent:{key}", answer_text=text, role="agent",
                                       held=template is not None)
    if template is not None:  # one template for all the replies held after this message of the customer's
        parts = store.messages.queue_reply(conversation_id, conversation["wa_id"], reply_to, [template.label], now,
                                           kind="template", route=route, key=f"template:{last['_id']}",
                                           template=template.record()) + parts
    store.jobs.enqueue(conversation_id, conversation["wa_id"], now)
    if mirror is not None and any(p["kind"] == "agent" and p["created_at"] == now for p in parts):
        mirror.tell(conversation_id, conversation["wa_id"], now, chatwoot.outgoing(text))  # queued now, not before
    return parts


def close_conversation(store: Store, conversation_id: str, now: datetime, mirror: ChatwootOutbox | None = None) -> bool:
    """Close the conversation, by an admin: the customer's next message starts a new one. False
    when it was closed already. `mirror`: where to queue the closing for Chatwoot."""
    conversation = find_conversation(store, conversation_id)
    closed_now = store.conversations.close(conversation_id, now, "closed by an admin")
    store.sessions.end_conversation(conversation_id)
    if closed_now and mirror is not None:
        mirror.tell(conversation_id, conversation["wa_id"], now, chatwoot.closed())
    return closed_now


def release_handoff(store: Store, conversation_id: str, now: datetime, by: str = "admin",
                    mirror: ChatwootOutbox | None = None) -> dict:
    """Give the conversation back to the bot (it answers the customer's next message), released by
    an admin or from Chatwoot; `mirror`: where to queue the release for Chatwoot."""
    conversation = find_conversation(store, conversation_id)
    released = store.conversations.release(conversation_id, now, by=by)
    if released:
        store.events.record([handoff_event("handoff_released", conversation_id, released, by=by)])
        if mirror is not None:
            mirror.tell(conversation_id, conversation["wa_id"], now, chatwoot.released(by))
    return {"id": conversation_id, "status": store.conversations.get(conversation_id)["status"],
            "released": released is not None}


def role_of(message: dict) -> str:
    """Who wrote it: `customer`, `assistant` (the bot) or `agent` (a person)."""
    if message["direction"] == "inbound":
        return "customer"
    return message.get("role", "assistant")


def _iso(value):
    """Times as ISO 8601 (Flask would write them as HTTP dates)."""
    return value.isoformat() if isinstance(value, datetime) else value
