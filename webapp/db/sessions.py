"""`whatsapp_sessions`: one document per customer (`wa_id`) and channel pointing at their current
conversation on that channel (a customer who writes through Twilio and through Meta has two).
Deleting it (a reset, or the conversation closed) makes their next message start a new
conversation."""
from __future__ import annotations

import uuid
from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

CHANNEL_BEFORE_CHANNELS = "twilio"  # the only one there was


class Sessions:
    def __init__(self, db: Database):
        self.collection = db.whatsapp_sessions

    def ensure_indexes(self) -> None:
        # Sessions from before there were channels were Twilio's, one per wa_id.
        self.collection.update_many({"channel": {"$exists": False}}, {"$set": {"channel": CHANNEL_BEFORE_CHANNELS}})
        try:
            self.collection.drop_index("wa_id_unique")
        except OperationFailure:
            pass  # dropped already
        self.collection.create_index([("wa_id", ASCENDING), ("channel", ASCENDING)], unique=True,
                                     name="wa_id_channel_unique")
        self.collection.create_index([("updated_at", ASCENDING)], name="updated_at")
        self.collection.create_index([("last_inbound_at", ASCENDING)], name="last_inbound_at")

    def conversation_id(self, channel: str, wa_id: str, now: datetime) -> tuple[str, bool]:
        """The customer's current conversation id on `channel`, and whether this call started it
        (no session: a first message, or the first after a reset). Read on every message, not
        cached: a reset in another process must be seen at once. One find on the unique (`wa_id`,
        `channel`) for a known customer (a findAndModify would do, but SecantusDB scans the
        collection for it: 7 ms at 1,000 sessions against 1 ms), an insert more for a new one."""
        key = {"wa_id": wa_id, "channel": channel}
        for _ in range(3):  # two concurrent first messages: the loser's insert hits the unique index
            found = self.collection.find_one(key, projection={"conversation_id": 1})
            if found:
                return found["conversation_id"], False
            new_id = uuid.uuid4().hex
            try:
                self.collection.insert_one({**key, "conversation_id": new_id, "created_at": now, "updated_at": now})
            except DuplicateKeyError:
                continue
            return new_id, True
        raise RuntimeError(f"no session could be created or read for {wa_id[-4:]}")

    def end(self, wa_id: str) -> list[str]:
        """Delete the customer's sessions, on every channel; the conversations they pointed at."""
        conversation_ids = [found["conversation_id"] for found in
                            self.collection.find({"wa_id": wa_id}, projection={"conversation_id": 1})]
        self.collection.delete_many({"wa_id": wa_id, "conversation_id": {"$in": conversation_ids}})
        return conversation_ids

    def end_conversation(self, conversation_id: str) -> None:
        """Delete the session pointing at this conversation, if it still does."""
        self.collection.delete_one({"conversation_id": conversation_id})

    def end_conversations(self, conversation_ids: list[str]) -> int:
        """Delete the sessions still pointing at these conversations; how many there were."""
        return self.collection.delete_many({"conversation_id": {"$in": conversation_ids}}).deleted_count

    def delete_of(self, wa_id: str) -> int:
        return self.collection.delete_many({"wa_id": wa_id}).deleted_count

    def current_conversations(self, wa_id: str) -> list[str]:
        """The customer's current conversation on each channel."""
        return [found["conversation_id"] for found in
                self.collection.find({"wa_id": wa_id}, projection={"conversation_id": 1})]

    def touch(self, wa_id: str, conversation_id: str, inbound_at: datetime, profile_name: str = "") -> None:
        """Record the customer's latest message; `last_inbound_at` is when WhatsApp's 24-hour
        reply window opened. Only moves forward, so it may be applied late and more than once.
        Not on a session that was reset since: that conversation is over."""
        self.collection.update_one(
            {"wa_id": wa_id, "conversation_id": conversation_id},
            {"$max": {"last_inbound_at": inbound_at, "updated_at": inbound_at},
             **({"$set": {"profile_name": profile_name}} if profile_name else {})},
        )

    def last_inbound_at(self, wa_id: str, channel: str) -> datetime | None:
        found = self.collection.find_one({"wa_id": wa_id, "channel": channel}, projection={"last_inbound_at": 1})
        return found.get("last_inbound_at") if found else None

    def reply_number(self, channel: str, wa_id: str) -> str | None:
        """The form of the customer's number the channel's provider accepted replies to, when it is
        not `wa_id` itself (see `webapp.channels.meta.outbound`)."""
        found = self.collection.find_one({"wa_id": wa_id, "channel": channel}, projection={"reply_number": 1})
        return found.get("reply_number") if found else None

    def remember_reply_number(self, channel: str, wa_id: str, number: str) -> None:
        self.collection.update_one({"wa_id": wa_id, "channel": channel}, {"$set": {"reply_number": number}})

    def active_since(self, since: datetime) -> int:
        """Customers whose latest message came at `since` or later."""
        return self.collection.count_documents({"last_inbound_at": {"$gte": since}})
