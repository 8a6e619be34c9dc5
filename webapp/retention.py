"""Retention and erasure: what is kept of customers, and for how long.

- `purge` deletes the messages and events older than a cut-off, and the conversations left with
  no message (with the sessions pointing at them, so the customer's next message starts a new
  one). The worker runs it every PURGE_EVERY_SECONDS when RETENTION_DAYS is set; admins can run
  it with `scripts/admin.py purge`. Leads are the business's own records: they stay until erased.
- `erase_customer` deletes everything about one WhatsApp number, on the customer's request.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

from pymongo.errors import PyMongoError

from webapp.admin import roll_up
from webapp.db import Store
from webapp.db.events import TYPES
from webapp.logs import mask_phone

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 3600


def purge(store: Store, before: datetime) -> dict:
    """Delete what is older than `before`, and than the stats roll-up (so the all-time totals keep
    counting every message: up to a day more is kept); how many documents of each collection went."""
    before = min(before, roll_up(store, datetime.now(timezone.utc))["until"])
    messages = sum(store.messages.collection.delete_many({"direction": direction, "created_at": {"$lt": before}})
                   .deleted_count for direction in ("inbound", "outbound"))  # on the (direction, created_at) index
    events = sum(store.events.collection.delete_many({"type": type_, "at": {"$lt": before}}).deleted_count
                 for type_ in TYPES)
    emptied = [c["_id"] for c in store.conversations.collection.find({"started_at": {"$lt": before}}, {"_id": 1})
               if store.messages.collection.count_documents({"conversation_id": c["_id"]}, limit=1) == 0]
    return {"messages": messages, "events": events, **_delete_conversations(store, emptied)}


def erase_customer(store: Store, wa_id: str) -> dict:
    """Delete every session, conversation, message, lead, event and queued job of `wa_id`; how
    many documents of each collection went (all zero when there was nothing)."""
    conversation_ids = [c["_id"] for c in store.conversations.collection.find({"wa_id": wa_id}, {"_id": 1})]
    session = store.sessions.collection.find_one({"wa_id": wa_id}, {"conversation_id": 1})
    if session and session["conversation_id"] not in conversation_ids:
        conversation_ids.append(session["conversation_id"])
    in_them = {"conversation_id": {"$in": conversation_ids}}
    deleted = {
        "messages": store.messages.collection.delete_many(in_them).deleted_count
        + store.messages.collection.delete_many({"wa_id": wa_id}).deleted_count,  # send-test messages too
        "leads": store.leads.collection.delete_many({"$or": [{"_id": {"$in": conversation_ids}}, {"wa_id": wa_id}]})
        .deleted_count,
        "events": store.events.collection.delete_many(in_them).deleted_count,
        **_delete_conversations(store, conversation_ids),
    }
    deleted["sessions"] += store.sessions.collection.delete_many({"wa_id": wa_id}).deleted_count
    log.info("erased customer %s: %s", mask_phone(wa_id), deleted)
    return deleted


def _delete_conversations(store: Store, conversation_ids: list[str]) -> dict:
    """The conversations, their queued jobs, and the sessions still pointing at them."""
    if not conversation_ids:
        return {"conversations": 0, "reply_jobs": 0, "sessions": 0}
    by_id = {"_id": {"$in": conversation_ids}}
    return {
        "conversations": store.conversations.collection.delete_many(by_id).deleted_count,
        "reply_jobs": store.jobs.collection.delete_many(by_id).deleted_count,
        "sessions": store.sessions.collection.delete_many({"conversation_id": {"$in": conversation_ids}}).deleted_count,
    }


def keep_purging(store: Store, retention_days: int, stop: threading.Event,
                 every_seconds: float = PURGE_EVERY_SECONDS) -> None:
    """Purge what is older than `retention_days` now and every `every_seconds`, until `stop`."""
    while True:
        try:
            deleted = purge(store, datetime.now(timezone.utc) - timedelta(days=retention_days))
            if any(deleted.values()):
                log.info("retention (%d days): deleted %s", retention_days, deleted)
        except PyMongoError as exc:
            log.warning("retention purge failed, trying again later: %s", exc)
        if stop.wait(every_seconds):
            return
