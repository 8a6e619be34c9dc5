"""`twilio_contents`: the Content SIDs of the quick-reply contents this app created in Twilio's
Content API, one per key (a hash of what the content holds, `webapp.channels.twilio.quick_reply`),
so that every process sends by the same one and none creates it again."""
from __future__ import annotations

from datetime import datetime

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError


class TwilioContents:
    def __init__(self, db: Database):
        self.collection = db.twilio_contents

    def ensure_indexes(self) -> None:
        """None needed: a content is found by its key, which is its `_id` (unique)."""

    def sid_of(self, key: str) -> str | None:
        found = self.collection.find_one({"_id": key}, projection={"sid": 1})
        return found["sid"] if found else None

    def keep(self, key: str, sid: str, description: dict, now: datetime) -> str:
        """Store `sid` for `key`, unless another process stored one first: the SID stored, either way."""
        try:
            self.collection.insert_one({"_id": key, "sid": sid, **description, "created_at": now})
        except DuplicateKeyError:
            return self.sid_of(key) or sid
        return sid

    def forget(self, key: str, sid: str) -> None:
        """Drop `sid`, a content Twilio no longer knows (unless another process replaced it already)."""
        self.collection.delete_one({"_id": key, "sid": sid})
