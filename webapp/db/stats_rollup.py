"""`stats_rollup`: message totals up to a day boundary, so the admin API's stats read only the
messages stored since then, however long the history grows.

One document (`_id` "messages"): `until`, and the count of messages created before it, inbound and
outbound, with the answers by outcome. Those facts never change once a message is stored, so
totals once counted stay true; anything that does change (delivery status) is not rolled up.
"""
from __future__ import annotations

from datetime import datetime

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

ROLLUP_ID = "messages"


class StatsRollup:
    def __init__(self, db: Database):
        self.collection = db.stats_rollup

    def ensure_indexes(self) -> None:
        pass  # one document, found by _id

    def get(self) -> dict:
        """The totals so far; `until` None when nothing was rolled up yet."""
        nothing = {"until": None, "inbound": 0, "outbound": 0, "answers": {}}
        return {**nothing, **(self.collection.find_one({"_id": ROLLUP_ID}) or {})}

    def advance(self, rolled: dict, until: datetime, added: dict) -> bool:
        """Add `added`, the totals of the messages created from `rolled["until"]` to `until`, and
        move `until` on. Only from the `until` that was read: when another process got there
        first this does nothing (False), so no message is ever counted twice."""
        increments = {"inbound": added["inbound"], "outbound": added["outbound"],
                      **{f"answers.{outcome}": n for outcome, n in added["answers"].items()}}
        try:
            result = self.collection.update_one({"_id": ROLLUP_ID, "until": rolled["until"]},
                                                {"$set": {"until": until}, "$inc": increments},
                                                upsert=rolled["until"] is None)
        except DuplicateKeyError:  # two first roll-ups at once: the other one inserted it
            return False
        return result.matched_count == 1 or result.upserted_id is not None
