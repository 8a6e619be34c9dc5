"""`conversations`: one document per conversation (`_id` = its id): whose it is, when it started,
and its status. Its messages are in `messages`.

A conversation starts with a customer's first message after they had no session, and is `open`.
It is in `handoff` while a person, not the bot, answers it (`handoff`: when and why it was asked
for, until when the bot stays silent, whether the handoff webhook was told); released, it is open
again (`last_handoff` keeps the record). It is `closed` by an admin (closing it, or resetting the
customer's session), and their next message starts a new one.
"""
from __future__ import annotations

import re
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from webapp.db.sessions import CHANNEL_BEFORE_CHANNELS

STATUSES = ("open", "handoff", "closed")
WHOLE_NUMBER_DIGITS = 11  # a number typed whole, with its country code (34 600 111 222); fewer digits: a part


class Conversations:
    def __init__(self, db: Database):
        self.collection = db.conversations

    def ensure_indexes(self) -> None:
        # Conversations from before there were channels were Twilio's.
        self.collection.update_many({"channel": {"$exists": False}}, {"$set": {"channel": CHANNEL_BEFORE_CHANNELS}})
        self.collection.create_index([("status", ASCENDING), ("started_at", DESCENDING)], name="status_started")
        self.collection.create_index([("started_at", DESCENDING)], name="started_at")
        self.collection.create_index([("wa_id", ASCENDING)], name="wa_id")

    def start(self, conversation_id: str, wa_id: str, channel: str, now: datetime, profile_name: str = "") -> None:
        """`profile_name`: the customer's WhatsApp name when they started it, for finding them."""
        try:
            self.collection.insert_one({"_id": conversation_id, "wa_id": wa_id, "channel": channel, "status": "open",
                                        "started_at": now, **({"profile_name": profile_name} if profile_name else {})})
        except DuplicateKeyError:
            pass  # a retried webhook

    def get(self, conversation_id: str) -> dict | None:
        return self.collection.find_one({"_id": conversation_id})

    def page(self, status: str | None, page: int, per_page: int) -> tuple[list[dict], int]:
        """Newest first: one page of conversations (optionally only `status` ones) and how many
        there are in all."""
        return self.find(_having(status), (page - 1) * per_page, per_page), self.count(status)

    def search(self, status: str | None, channel: str | None, text: str, skip: int, limit: int) -> list[dict]:
        """Newest first: `limit` conversations after the first `skip` (optionally only `status` ones, on
        `channel`) whose customer's number or name holds `text`. A whole number (11 digits or more)
        is found on the wa_id index; a part of one or a name is looked for in every conversation."""
        query = _having(status)
        if channel:
            query["channel"] = channel
        digits = re.sub(r"[\s+()-]", "", text)
        if digits.isascii() and digits.isdigit():
            query["wa_id"] = digits if len(digits) >= WHOLE_NUMBER_DIGITS else {"$regex": re.escape(digits)}
        elif text.strip():
            query["profile_name"] = {"$regex": re.escape(text.strip()), "$options": "i"}
        return self.find(query, skip, limit)

    def find(self, query: dict, skip: int, limit: int) -> list[dict]:
        return list(self.collection.find(query).sort("started_at", DESCENDING).skip(skip).limit(limit))

    def waiting_for_person(self, limit: int) -> list[dict]:
        """Conversations in handoff, the longest waiting first."""
        return list(self.collection.find({"status": "handoff"}).sort("handoff.requested_at", ASCENDING).limit(limit))

    def every(self, status: str | None = None):
        """Every conversation (or every `status` one), oldest first, as a cursor."""
        return self.collection.find(_having(status)).sort("started_at", ASCENDING)

    def count(self, status: str | None = None) -> int:
        return self.collection.count_documents(_having(status))

    def start_handoff(self, conversation_id: str, now: datetime, until: datetime, reason: str) -> dict | None:
        """Hand an open conversation to a person until `until`: the handoff, or None when it was
        not open (in a handoff already, or closed)."""
        handoff = {"requested_at": now, "until": until, "reason": reason}
        result = self.collection.update_one({"_id": conversation_id, "status": "open"},
                                            {"$set": {"status": "handoff", "handoff": handoff}})
        return handoff if result.modified_count == 1 else None

    def count_answer(self, conversation_id: str) -> int:
        """One more answer given in the conversation: how many it has had (for FEEDBACK_EVERY_N_ANSWERS)."""
        found = self.collection.find_one_and_update({"_id": conversation_id}, {"$inc": {"answers": 1}},
                                                    projection={"answers": 1}, return_document=ReturnDocument.AFTER)
        return (found or {}).get("answers", 0)

    def record_notice(self, conversation_id: str, requested_at: datetime, now: datetime, error: str | None) -> None:
        """Whether the handoff webhook took the notice of the handoff requested at `requested_at`."""
        outcome = {"handoff.notify_error": error} if error else {"handoff.notified_at": now}
        self.collection.update_one({"_id": conversation_id, "handoff.requested_at": requested_at}, {"$set": outcome})

    def release(self, conversation_id: str, now: datetime, by: str) -> dict | None:
        """Give a conversation in handoff back to the bot: the handoff released, or None when it
        was in none (released already, by an admin or its time running out)."""
        found = self.collection.find_one({"_id": conversation_id, "status": "handoff"}, projection={"handoff": 1})
        if found is None:
            return None
        released = {**found["handoff"], "released_at": now, "released_by": by}
        result = self.collection.update_one(
            {"_id": conversation_id, "status": "handoff", "handoff.requested_at": found["handoff"]["requested_at"]},
            {"$set": {"status": "open", "last_handoff": released}, "$unset": {"handoff": ""}})
        return released if result.modified_count == 1 else None

    def close(self, conversation_id: str, now: datetime, reason: str) -> bool:
        """Close an open conversation (or one in handoff); False when it was closed already."""
        result = self.collection.update_one(
            {"_id": conversation_id, "status": {"$in": ["open", "handoff"]}},
            {"$set": {"status": "closed", "closed_at": now, "closed_because": reason}},
        )
        return result.modified_count == 1

    def ids_started_before(self, before: datetime) -> list[str]:
        return [c["_id"] for c in self.collection.find({"started_at": {"$lt": before}}, {"_id": 1})]

    def ids_of(self, wa_id: str) -> list[str]:
        return [c["_id"] for c in self.collection.find({"wa_id": wa_id}, {"_id": 1})]

    def delete(self, conversation_ids: list[str]) -> int:
        return self.collection.delete_many({"_id": {"$in": conversation_ids}}).deleted_count

    def counts(self) -> dict:
        return {"total": self.count(), "open": self.count("open"), "handoff": self.count("handoff")}


def _having(status: str | None) -> dict:
    return {"status": status} if status else {}
