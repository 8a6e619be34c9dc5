"""`worker_heartbeats`: one document per worker process, renewed every WORKER_HEARTBEAT_SECONDS,
with what that process sees of the knowledge index: `index_chunks` (None when it cannot read it,
`index_error` says why) and `index`, its description (`rag.store.describe_index`). The web process
reads it for `/readyz` and the console: it never opens the index itself."""
from __future__ import annotations

from datetime import datetime

from pymongo import DESCENDING
from pymongo.database import Database


class Heartbeats:
    def __init__(self, db: Database):
        self.collection = db.worker_heartbeats

    def ensure_indexes(self) -> None:
        self.collection.create_index([("beat_at", DESCENDING)], name="beat_at")

    def beat(self, worker_id: str, now: datetime, index_chunks: int | None, index_error: str = "",
             index: dict | None = None) -> None:
        """`index_chunks` None: the index could not be read (`index_error` says why)."""
        self.collection.update_one(
            {"_id": worker_id},
            {"$set": {"beat_at": now, "index_chunks": index_chunks, "index_error": index_error, "index": index},
             "$setOnInsert": {"started_at": now}},
            upsert=True,
        )

    def latest(self) -> dict | None:
        return self.collection.find_one(sort=[("beat_at", DESCENDING)])

    def index_status(self) -> dict | None:
        """The index as the worker that beat last describes it, with that beat's `beat_at`; None when
        no worker has reported or it could not read the index."""
        beat = self.collection.find_one(sort=[("beat_at", DESCENDING)], projection={"index": 1, "beat_at": 1})
        if not beat or not beat.get("index"):
            return None
        return {**beat["index"], "beat_at": beat["beat_at"]}

    def alive(self, since: datetime) -> bool:
        """Whether a worker process has beaten since `since`."""
        return self.collection.find_one({"beat_at": {"$gte": since}}, projection={"_id": 1}) is not None

    def remove(self, worker_id: str) -> None:
        """On a clean stop, so a stopped worker is not taken for a live one."""
        self.collection.delete_one({"_id": worker_id})
