"""`bot_config`: the bot settings admins change at run time (`webapp.bot_config`), one document
(`_id` "bot"), with a `version` that grows with each change and when it was made."""
from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument
from pymongo.database import Database

CONFIG_ID = "bot"
META = ("_id", "version", "updated_at")


class BotConfigs:
    def __init__(self, db: Database):
        self.collection = db.bot_config

    def ensure_indexes(self) -> None:
        pass  # one document, found by _id

    def get(self) -> dict | None:
        """The saved settings (without their version and time), or None if none were saved."""
        found = self.collection.find_one({"_id": CONFIG_ID})
        return {k: v for k, v in found.items() if k not in META} if found else None

    def meta(self) -> dict:
        found = self.collection.find_one({"_id": CONFIG_ID}, projection={"version": 1, "updated_at": 1}) or {}
        return {"version": found.get("version", 0), "updated_at": found.get("updated_at")}

    def save(self, config: dict, now: datetime) -> int:
        """Replace the settings with `config`; its new version."""
        saved = self.collection.find_one_and_update(
            {"_id": CONFIG_ID}, {"$set": {**config, "updated_at": now}, "$inc": {"version": 1}},
            upsert=True, return_document=ReturnDocument.AFTER, projection={"version": 1})
        return saved["version"]
