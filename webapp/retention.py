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
from webapp.logs import mask_phone

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 3600


def purge(store: Store, before: datetime) -> dict:
    """Delete what is older than `before`, and than the stats roll-up (so the all-time totals keep
    counting every message: up to a day more is kept); how many documents of each collection went."""
    before = min(before, roll_up(store, datetime.now(timezone.utc))["until"])
    messages, events = store.messages.delete_created_before(before), store.events.delete_before(before)
    emptied = [c for c in store.conversations.ids_started_before(before) if not store.messages.has_any(c)]
    return {"messages": messages, "events": events, **_delete_conversations(store, emptied)}


def erase_customer(store: Store, wa_id: str) -> dict:
    """Delete every session, conversation, message, lead, event and queued job of `wa_id`; how
    many documents of each collection went (all zero when there was nothing)."""
    conversation_ids = store.conversations.ids_of(wa_id)
    conversation_ids += [c for c in store.sessions.current_conversations(wa_id) if c not in conversation_ids]
    deleted = {
        "messages": store.messages.delete_of(conversation_ids, wa_id),
        "leads": store.leads.delete_of(conversation_ids, wa_id),
        "events": store.events.delete_of(conversation_ids),
        **_delete_conversations(store, conversation_ids),
    }
    deleted["sessions"] += store.sessions.delete_of(wa_id)
    log.info("erased customer %s: %s", mask_phone(wa_id), deleted)
    return deleted


def _delete_conversations(store: Store, conversation_ids: list[str]) -> dict:
    """The conversations, their queued jobs and Chatwoot sync, and the sessions still pointing at them."""
    if not conversation_ids:
        return {"conversations": 0, "reply_jobs": 0, "chatwoot_sync": 0, "sessions": 0}
    return {"conversations": store.conversations.delete(conversation_ids),
            "reply_jobs": store.jobs.delete(conversation_ids),
            "chatwoot_sync": store.chatwoot_sync.delete(conversation_ids),
            "sessions": store.sessions.end_conversations(conversation_ids)}


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
