"""`whatsapp_sessions`: one document per customer (`wa_id`) pointing at their conversation."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database

CACHED_CONVERSATIONS = 10_000


class Sessions:
    def __init__(self, db: Database):
        self.collection = db.whatsapp_sessions
        # A customer's conversation id never changes once created, so each process remembers it:
        # the webhook then reads nothing from this collection for a customer it has seen.
        self._conversation_ids: dict[str, str] = {}
        self._cache_lock = threading.Lock()

    def ensure_indexes(self) -> None:
        self.collection.create_index([("wa_id", ASCENDING)], unique=True, name="wa_id_unique")
        self.collection.create_index([("updated_at", ASCENDING)], name="updated_at")

    def conversation_id(self, wa_id: str, now: datetime) -> str:
        """The customer's conversation id; their first message creates the session. An upsert on
        the unique `wa_id`, so two concurrent first messages get the same one."""
        with self._cache_lock:
            known = self._conversation_ids.get(wa_id)
        if known:
            return known
        self.collection.update_one(
            {"wa_id": wa_id},
            {"$setOnInsert": {"wa_id": wa_id, "conversation_id": uuid.uuid4().hex, "created_at": now, "updated_at": now}},
            upsert=True,
        )
        conversation_id = self.collection.find_one({"wa_id": wa_id}, {"conversation_id": 1})["conversation_id"]
        with self._cache_lock:
            if len(self._conversation_ids) >= CACHED_CONVERSATIONS:
                del self._conversation_ids[next(iter(self._conversation_ids))]  # the longest remembered
            self._conversation_ids[wa_id] = conversation_id
        return conversation_id

    def touch(self, wa_id: str, conversation_id: str, inbound_at: datetime, profile_name: str = "") -> None:
        """Record the customer's latest message; `last_inbound_at` is when WhatsApp's 24-hour
        reply window opened. Only moves forward, so it may be applied late and more than once.
        An upsert, so a session deleted since its id was cached comes back with that id."""
        self.collection.update_one(
            {"wa_id": wa_id},
            {"$max": {"last_inbound_at": inbound_at, "updated_at": inbound_at},
             **({"$set": {"profile_name": profile_name}} if profile_name else {}),
             "$setOnInsert": {"conversation_id": conversation_id, "created_at": inbound_at}},
            upsert=True,
        )
