"""`whatsapp_sessions`: one document per customer (`wa_id`) pointing at their current
conversation. Deleting it (a reset, or the conversation closed) makes their next message start a
new conversation."""
from __future__ import annotations

import uuid
from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError


class Sessions:
    def __init__(self, db: Database):
        self.collection = db.whatsapp_sessions

    def ensure_indexes(self) -> None:
        self.collection.create_index([("wa_id", ASCENDING)], unique=True, name="wa_id_unique")
        self.collection.create_index([("updated_at", ASCENDING)], name="updated_at")
        self.collection.create_index([("last_inbound_at", ASCENDING)], name="last_inbound_at")

    def conversation_id(self, wa_id: str, now: datetime) -> tuple[str, bool]:
        """The customer's current conversation id, and whether this call started it (no session:
        a first message, or the first after a reset). Read on every message, not cached: a reset
        in another process must be seen at once. One find on the unique `wa_id` for a known
        customer (a findAndModify would do, but SecantusDB scans the collection for it: 7 ms at
        1,000 sessions against 1 ms), an insert more for a new one."""
        for _ in range(3):  # two concurrent first messages: the loser's insert hits the unique index
            found = self.collection.find_one({"wa_id": wa_id}, projection={"conversation_id": 1})
            if found:
                return found["conversation_id"], False
            new_id = uuid.uuid4().hex
            try:
                self.collection.insert_one({"wa_id": wa_id, "conversation_id": new_id, "created_at": now,
                                            "updated_at": now})
            except DuplicateKeyError:
                continue
            return new_id, True
        raise RuntimeError(f"no session could be created or read for {wa_id[-4:]}")

    def end(self, wa_id: str) -> str | None:
        """Delete the customer's session; the id of the conversation it pointed at, if any."""
        ended = self.collection.find_one_and_delete({"wa_id": wa_id}, projection={"conversation_id": 1})
        return ended["conversation_id"] if ended else None

    def end_conversation(self, conversation_id: str) -> None:
        """Delete the session pointing at this conversation, if it still does."""
        self.collection.delete_one({"conversation_id": conversation_id})

    def end_conversations(self, conversation_ids: list[str]) -> int:
        """Delete the sessions still pointing at these conversations; how many there were."""
        return self.collection.delete_many({"conversation_id": {"$in": conversation_ids}}).deleted_count

    def delete_of(self, wa_id: str) -> int:
        return self.collection.delete_many({"wa_id": wa_id}).deleted_count

    def current_conversation(self, wa_id: str) -> str | None:
        found = self.collection.find_one({"wa_id": wa_id}, projection={"conversation_id": 1})
        return found["conversation_id"] if found else None

    def touch(self, wa_id: str, conversation_id: str, inbound_at: datetime, profile_name: str = "") -> None:
        """Record the customer's latest message; `last_inbound_at` is when WhatsApp's 24-hour
        reply window opened. Only moves forward, so it may be applied late and more than once.
        Not on a session that was reset since: that conversation is over."""
        self.collection.update_one(
            {"wa_id": wa_id, "conversation_id": conversation_id},
            {"$max": {"last_inbound_at": inbound_at, "updated_at": inbound_at},
             **({"$set": {"profile_name": profile_name}} if profile_name else {})},
        )

    def last_inbound_at(self, wa_id: str) -> datetime | None:
        found = self.collection.find_one({"wa_id": wa_id}, projection={"last_inbound_at": 1})
        return found.get("last_inbound_at") if found else None

    def active_since(self, since: datetime) -> int:
        """Customers whose latest message came at `since` or later."""
        return self.collection.count_documents({"last_inbound_at": {"$gte": since}})
