"""`events`: what happened in conversations, for analytics. One document per event: `type`, the
`conversation_id`, when it happened (`at`), and what it is about (`message_id`, `error_code`,
`reason`…).

Each event has a key of its own as `_id` (its type and what it is about), so recording it again
(a retried job, a repeated status report) adds nothing.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from webapp.db.messages import DUPLICATE_KEY, utc_day

TYPES = ("message_received", "message_sent", "message_failed", "lead_created", "handoff_requested",
         "handoff_released", "answer_rated")


def event(type_: str, key: str, conversation_id: str, at: datetime, **details) -> dict:
    """An event document; `key` names what it is about, unique for that type."""
    if type_ not in TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    return {"_id": f"{type_}:{key}", "type": type_, "conversation_id": conversation_id, "at": at, **details}


def message_event(type_: str, message: dict, at: datetime, **details) -> dict:
    """An event about one message (received, sent, failed)."""
    return event(type_, str(message["_id"]), message["conversation_id"], at, message_id=message["_id"], **details)


class Events:
    def __init__(self, db: Database):
        self.collection = db.events

    def ensure_indexes(self) -> None:
        self.collection.create_index([("type", ASCENDING), ("at", ASCENDING)], name="type_at")
        self.collection.create_index([("conversation_id", ASCENDING)], name="conversation_id")

    def record(self, events: list[dict]) -> None:
        """Store events in one command; those recorded before are left as they were."""
        if not events:
            return
        try:
            self.collection.insert_many(events, ordered=False)
        except BulkWriteError as exc:
            if any(error["code"] != DUPLICATE_KEY for error in exc.details["writeErrors"]):
                raise

    def delete_before(self, before: datetime) -> int:
        # one delete per type: each is a range on the (type, at) index
        return sum(self.collection.delete_many({"type": type_, "at": {"$lt": before}}).deleted_count for type_ in TYPES)

    def delete_of(self, conversation_ids: list[str]) -> int:
        return self.collection.delete_many({"conversation_id": {"$in": conversation_ids}}).deleted_count

    def count(self, type_: str, since: datetime | None = None) -> int:
        return self.collection.count_documents({"type": type_, **({"at": {"$gte": since}} if since else {})})

    def per_day(self, types: Iterable[str], since: datetime, detail: str = "type") -> dict[str, dict[str, int]]:
        """The events of these types since `since`, by UTC day and the value of their `detail` (by
        default their type). One aggregation per type: SecantusDB plans no index for a $in on it."""
        days: dict[str, dict[str, int]] = {}
        for type_ in types:
            pipeline = [{"$match": {"type": type_, "at": {"$gte": since}}},
                        {"$group": {"_id": {"day": utc_day("$at"), "value": f"${detail}"}, "n": {"$sum": 1}}}]
            for found in self.collection.aggregate(pipeline):
                counts = days.setdefault(found["_id"]["day"], {})
                value = found["_id"].get("value")
                counts[value] = counts.get(value, 0) + found["n"]
        return days

    def of_conversation(self, conversation_id: str) -> list[dict]:
        return list(self.collection.find({"conversation_id": conversation_id}).sort("at", ASCENDING))
