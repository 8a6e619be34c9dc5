"""`worker_heartbeats`: one document per worker process, renewed every WORKER_HEARTBEAT_SECONDS,
with what that process sees of the knowledge index. The web process reads it for `/readyz`."""
from __future__ import annotations

from datetime import datetime

from pymongo import DESCENDING
from pymongo.database import Database


class Heartbeats:
    def __init__(self, db: Database):
        self.collection = db.worker_heartbeats

    def ensure_indexes(self) -> None:
        self.collection.create_index([("beat_at", DESCENDING)], name="beat_at")

    def beat(self, worker_id: str, now: datetime, index_chunks: int | None, index_error: str = "") -> None:
        """`index_chunks` None: the index could not be read (`index_error` says why)."""
        self.collection.update_one(
            {"_id": worker_id},
            {"$set": {"beat_at": now, "index_chunks": index_chunks, "index_error": index_error},
             "$setOnInsert": {"started_at": now}},
            upsert=True,
        )

    def latest(self) -> dict | None:
        return self.collection.find_one(sort=[("beat_at", DESCENDING)])

    def remove(self, worker_id: str) -> None:
        """On a clean stop, so a stopped worker is not taken for a live one."""
        self.collection.delete_one({"_id": worker_id})
