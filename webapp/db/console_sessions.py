"""`console_sessions`: one document per signed-in console browser. `_id` is the SHA-256 of the
cookie's secret (a copy of the database gives no one a session), with the form token (`csrf`),
the fingerprint of the admin token it was signed in with (a new ADMIN_TOKEN signs everyone out)
and when it expires; a TTL index removes it then."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.database import Database


class ConsoleSessions:
    def __init__(self, db: Database):
        self.collection = db.console_sessions

    def ensure_indexes(self) -> None:
        self.collection.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_at_ttl")

    def start(self, token_fingerprint: str, now: datetime, lifetime: timedelta) -> tuple[str, dict]:
        """A new session: the secret for the cookie, and the session."""
        secret = secrets.token_urlsafe(32)
        session = {"_id": _key(secret), "csrf": secrets.token_urlsafe(32), "token": token_fingerprint,
                   "created_at": now, "expires_at": now + lifetime}
        self.collection.insert_one(session)
        return secret, session

    def find(self, secret: str, token_fingerprint: str, now: datetime) -> dict | None:
        """The live session the cookie's secret opens, signed in with the current admin token."""
        return self.collection.find_one({"_id": _key(secret), "token": token_fingerprint,
                                         "expires_at": {"$gt": now}})

    def end(self, secret: str) -> None:
        self.collection.delete_one({"_id": _key(secret)})


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
