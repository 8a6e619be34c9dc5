"""`whatsapp_sessions`: one document per customer (`wa_id`) pointing at their conversation."""
from __future__ import annotations

import uuid
from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database


class Sessions:
    def __init__(self, db: Database):
        self.collection = db.whatsapp_sessions

    def ensure_indexes(self) -> None:
        self.collection.create_index([("wa_id", ASCENDING)], unique=True, name="wa_id_unique")
        self.collection.create_index([("updated_at", ASCENDING)], name="updated_at")

    def get_or_create(self, wa_id: str, now: datetime) -> dict:
        """The customer's session; the first message creates it with a new conversation id.
        An upsert on the unique `wa_id`, so two concurrent first messages get the same one."""
        self.collection.update_one(
            {"wa_id": wa_id},
            {"$setOnInsert": {"wa_id": wa_id, "conversation_id": uuid.uuid4().hex, "created_at": now, "updated_at": now}},
            upsert=True,
        )
        return self.collection.find_one({"wa_id": wa_id})

    def touch(self, wa_id: str, now: datetime, profile_name: str = "") -> None:
        """Record activity; `last_inbound_at` opens WhatsApp's 24-hour reply window."""
        fields = {"updated_at": now, "last_inbound_at": now}
        if profile_name:
            fields["profile_name"] = profile_name
        self.collection.update_one({"wa_id": wa_id}, {"$set": fields, "$inc": {"inbound_count": 1}})
