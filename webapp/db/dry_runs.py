"""`dry_runs`: questions asked from the console to see what the assistant would answer. The web
process asks (`pending`: the `question`); a worker process, which holds the model and the index,
claims one under a lease and stores its `answer` (`answered`: the text as a customer would get it,
outcome, language, sources, the passages retrieved with their scores, timings) or why it could not
(`failed`: `error`). Nothing is sent to anyone. Kept a day (a TTL index)."""
from __future__ import annotations

from datetime import datetime, timedelta

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database

from webapp.db.jobs import NEVER_LEASED

KEPT_SECONDS = 24 * 3600


class DryRuns:
    def __init__(self, db: Database):
        self.collection = db.dry_runs

    def ensure_indexes(self) -> None:
        self.collection.create_index([("created_at", ASCENDING)], name="created_at_ttl",
                                     expireAfterSeconds=KEPT_SECONDS)
        self.collection.create_index([("status", ASCENDING), ("created_at", ASCENDING)], name="status_created_at")

    def ask(self, question: str, now: datetime) -> str:
        """A new dry run; its id."""
        inserted = self.collection.insert_one(
            {"status": "pending", "question": question, "created_at": now, "lease_until": NEVER_LEASED})
        return str(inserted.inserted_id)

    def get(self, dry_run_id: str) -> dict | None:
        """None for an id that is not one (or a dry run removed after a day)."""
        if not ObjectId.is_valid(dry_run_id):
            return None
        return self.collection.find_one({"_id": ObjectId(dry_run_id)})

    def claim(self, worker_id: str, now: datetime, lease_seconds: float) -> dict | None:
        """The oldest pending dry run no live worker holds, now held by `worker_id`."""
        return self.collection.find_one_and_update(
            {"status": "pending", "lease_until": {"$lte": now}},
            {"$set": {"lease_until": now + timedelta(seconds=lease_seconds), "worker": worker_id}},
            sort=[("created_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    def finish(self, dry_run_id: str, result: dict, now: datetime) -> None:
        self._end(dry_run_id, {"status": "answered", "answer": result, "answered_at": now})

    def fail(self, dry_run_id: str, error: str, now: datetime) -> None:
        self._end(dry_run_id, {"status": "failed", "error": error, "failed_at": now})

    def _end(self, dry_run_id: str, fields: dict) -> None:
        self.collection.update_one({"_id": ObjectId(dry_run_id)}, {"$set": fields})
