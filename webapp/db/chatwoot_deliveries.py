"""`chatwoot_deliveries`: the Chatwoot webhooks taken (`_id` = their `X-Chatwoot-Delivery`), so a
replayed or redelivered one is not acted on twice. Kept a day (a TTL index): older ones are refused
for their timestamp anyway."""
from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

KEPT_SECONDS = 24 * 3600


class ChatwootDeliveries:
    def __init__(self, db: Database):
        self.collection = db.chatwoot_deliveries

    def ensure_indexes(self) -> None:
        self.collection.create_index([("at", ASCENDING)], name="at_ttl", expireAfterSeconds=KEPT_SECONDS)

    def first_time(self, delivery_id: str, now: datetime) -> bool:
        """Note the delivery; False when it was noted before (a replay)."""
        try:
            self.collection.insert_one({"_id": delivery_id, "at": now})
        except DuplicateKeyError:
            return False
        return True

    def forget(self, delivery_id: str) -> None:
        """Let a delivery that could not be acted on (the database failed midway) come again."""
        self.collection.delete_one({"_id": delivery_id})
