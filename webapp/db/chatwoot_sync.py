"""`chatwoot_sync`: what is still to be told to Chatwoot about each conversation, and how it is linked
there. One document per conversation (`_id` = its id), kept while the conversation is:

- `events`: what happened and Chatwoot has not been told yet, in order (a message, an answer, a
  handoff…). The sync takes the first, tells Chatwoot, then pops it: so Chatwoot down or slow only
  delays the conversation's events, in order, none lost;
- `chatwoot`: the Chatwoot contact and conversation it is mirrored to, once created;
- `posted`: the ids of the latest messages we posted there, and `in_flight` the one being posted:
  Chatwoot sends our own messages back as webhooks, and these tell them from an agent's;
- a lease (`lease_until`, `worker`) so that one sync works on a conversation at a time, the time
  its oldest untold event came (`due_at`), and after a failure when to try again (`retry_at`,
  which a new event does not bring forward) with the failures in a row (`attempts`).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database

NEVER_LEASED = datetime(1970, 1, 1, tzinfo=timezone.utc)
POSTED_KEPT = 50  # message ids remembered per conversation, to recognise their echoes


class ChatwootSync:
    def __init__(self, db: Database):
        self.collection = db.chatwoot_sync

    def ensure_indexes(self) -> None:
        self.collection.create_index([("due_at", ASCENDING)], name="due_at",
                                     partialFilterExpression={"pending": True})
        self.collection.create_index([("chatwoot.conversation_id", ASCENDING)], name="chatwoot_conversation",
                                     sparse=True)

    def add(self, conversation_id: str, wa_id: str, events: list[dict], now: datetime) -> None:
        """Queue `events` (dicts with their `kind`) for the conversation, after those queued before."""
        self.collection.update_one(
            {"_id": conversation_id},
            {"$setOnInsert": {"wa_id": wa_id, "lease_until": NEVER_LEASED, "retry_at": NEVER_LEASED, "attempts": 0},
             "$push": {"events": {"$each": [{**event, "at": now} for event in events]}},
             "$set": {"pending": True},
             "$min": {"due_at": now, "waiting_since": now}},
            upsert=True,
        )

    def claim(self, worker_id: str, now: datetime, lease_seconds: float) -> dict | None:
        return self.collection.find_one_and_update(
            {"pending": True, "due_at": {"$lte": now}, "retry_at": {"$lte": now}, "lease_until": {"$lte": now}},
            {"$set": {"lease_until": now + timedelta(seconds=lease_seconds), "worker": worker_id}},
            sort=[("due_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    def renew(self, state: dict, now: datetime, lease_seconds: float) -> bool:
        """Extend our lease (noting its end in `state`); False if it was lost to another sync."""
        lease_until = now + timedelta(seconds=lease_seconds)
        result = self.collection.update_one({"_id": state["_id"], "worker": state["worker"]},
                                            {"$set": {"lease_until": lease_until}})
        state["lease_until"] = lease_until
        return result.matched_count == 1

    def link(self, state: dict, chatwoot: dict) -> None:
        """Record the Chatwoot contact and conversation the conversation is mirrored to."""
        self.collection.update_one({"_id": state["_id"]}, {"$set": {"chatwoot": chatwoot}})
        state["chatwoot"] = chatwoot

    def unlink(self, state: dict) -> None:
        """Forget a Chatwoot conversation that is gone (deleted there): the next event opens another."""
        self.collection.update_one({"_id": state["_id"]}, {"$unset": {"chatwoot": ""}})
        state.pop("chatwoot", None)

    def posting(self, state: dict, content: str, now: datetime) -> None:
        self.collection.update_one({"_id": state["_id"]}, {"$set": {"in_flight": {"content": content, "at": now}}})

    def done(self, state: dict, posted_id: int | None = None) -> None:
        """The first event is told: pop it (and note the message it posted)."""
        update: dict = {"$pop": {"events": -1}, "$set": {"attempts": 0}, "$unset": {"in_flight": "", "last_error": ""}}
        if posted_id is not None:
            update["$push"] = {"posted": {"$each": [posted_id], "$slice": -POSTED_KEPT}}
        self.collection.update_one({"_id": state["_id"], "worker": state["worker"]}, update)
        state["events"].pop(0)
        state.pop("in_flight", None)
        if posted_id is not None:
            state["posted"] = [*state.get("posted", []), posted_id][-POSTED_KEPT:]

    def skip(self, state: dict, error: str) -> None:
        """Drop the first event, which Chatwoot refuses whatever is done (noted as the last error)."""
        self.collection.update_one({"_id": state["_id"], "worker": state["worker"]},
                                   {"$pop": {"events": -1}, "$set": {"attempts": 0, "last_error": error},
                                    "$unset": {"in_flight": ""}})
        state["events"].pop(0)

    def finish(self, state: dict, now: datetime) -> None:
        """Release the conversation; nothing pending when every event queued was told."""
        self.collection.update_one({"_id": state["_id"], "worker": state["worker"], "events": {"$size": 0}},
                                   {"$set": {"pending": False}, "$unset": {"waiting_since": "", "due_at": ""}})
        self.collection.update_one({"_id": state["_id"], "worker": state["worker"]},
                                   {"$set": {"lease_until": NEVER_LEASED}})

    def postpone(self, state: dict, due_at: datetime, error: str) -> None:
        """Release the conversation, due again at `due_at` (Chatwoot failed: its events wait)."""
        self.collection.update_one(
            {"_id": state["_id"], "worker": state["worker"]},
            {"$set": {"lease_until": NEVER_LEASED, "due_at": due_at, "retry_at": due_at, "last_error": error},
             "$inc": {"attempts": 1}})

    def of_chatwoot_conversation(self, chatwoot_conversation_id: int) -> dict | None:
        return self.collection.find_one({"chatwoot.conversation_id": chatwoot_conversation_id})

    def backlog(self) -> tuple[int, datetime | None]:
        """How many events wait to be told to Chatwoot, and since when the oldest has (one command)."""
        found = list(self.collection.aggregate([
            {"$match": {"pending": True}},
            {"$group": {"_id": None, "events": {"$sum": {"$size": "$events"}}, "oldest": {"$min": "$waiting_since"}}},
        ]))
        return (found[0]["events"], found[0]["oldest"]) if found else (0, None)

    def delete(self, conversation_ids: list[str]) -> int:
        return self.collection.delete_many({"_id": {"$in": conversation_ids}}).deleted_count
