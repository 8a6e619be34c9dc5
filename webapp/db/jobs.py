"""`reply_jobs`: which conversations have work for the background worker.

One document per conversation (`_id` = conversation id), so one conversation is processed by one
worker at a time and its messages in order. A worker claims a job with a lease; if it dies, the
lease expires and another worker takes the job over. The collection stays small (a job is deleted
when its conversation has nothing left to do), which keeps claiming fast.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database

NEVER_LEASED = datetime(1970, 1, 1, tzinfo=timezone.utc)


class ReplyJobs:
    def __init__(self, db: Database):
        self.collection = db.reply_jobs

    def ensure_indexes(self) -> None:
        self.collection.create_index([("due_at", ASCENDING)], name="due_at")

    def enqueue(self, conversation_id: str, wa_id: str, due_at: datetime) -> None:
        """Ask for the conversation to be processed at `due_at` or later. A later message pushes
        `due_at` back (debounce) and bumps `seq`, so a worker busy with the job sees new work."""
        self.collection.update_one(
            {"_id": conversation_id},
            {
                "$setOnInsert": {"wa_id": wa_id, "lease_until": NEVER_LEASED, "created_at": due_at},
                "$max": {"due_at": due_at},
                "$inc": {"seq": 1},
            },
            upsert=True,
        )

    def claim(self, worker_id: str, now: datetime, lease_seconds: float) -> dict | None:
        return self.collection.find_one_and_update(
            {"due_at": {"$lte": now}, "lease_until": {"$lte": now}},
            {"$set": {"lease_until": now + timedelta(seconds=lease_seconds), "worker": worker_id}},
            sort=[("due_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    def renew(self, job: dict, now: datetime, lease_seconds: float) -> bool:
        """Extend our lease and note its end in `job["lease_until"]`; False if it was lost (expired
        and taken by another worker)."""
        lease_until = now + timedelta(seconds=lease_seconds)
        result = self.collection.update_one(
            {"_id": job["_id"], "worker": job["worker"]}, {"$set": {"lease_until": lease_until}}
        )
        job["lease_until"] = lease_until if result.matched_count == 1 else NEVER_LEASED
        return result.matched_count == 1

    def complete(self, job: dict) -> None:
        """Delete the job unless new work arrived while it was processed; then just release it."""
        deleted = self.collection.delete_one({"_id": job["_id"], "worker": job["worker"], "seq": job["seq"]})
        if deleted.deleted_count == 0:
            self.release(job)

    def postpone(self, job: dict, due_at: datetime) -> None:
        """Release the job, due again at `due_at` (a reply part waits for a retry)."""
        self.collection.update_one(
            {"_id": job["_id"], "worker": job["worker"]}, {"$set": {"lease_until": NEVER_LEASED, "due_at": due_at}}
        )

    def delete(self, conversation_ids: list[str]) -> int:
        return self.collection.delete_many({"_id": {"$in": conversation_ids}}).deleted_count

    def backlog(self) -> tuple[int, datetime | None]:
        """How many conversations have work queued, and since when the oldest has (one command)."""
        found = list(self.collection.aggregate(
            [{"$group": {"_id": None, "depth": {"$sum": 1}, "oldest": {"$min": "$created_at"}}}]
        ))
        return (found[0]["depth"], found[0]["oldest"]) if found else (0, None)

    def release(self, job: dict) -> None:
        self.collection.update_one(
            {"_id": job["_id"], "worker": job["worker"]}, {"$set": {"lease_until": NEVER_LEASED}}
        )
