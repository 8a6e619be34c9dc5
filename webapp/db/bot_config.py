"""`bot_config`: the bot settings admins change at run time (`webapp.bot_config`), one document
(`_id` "bot"), with a `version` that grows with each change and when it was made."""
from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError
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

    def save(self, config: dict, now: datetime, expected_version: int | None = None) -> int | None:
        """Replace the settings with `config`; their new version. With `expected_version`, only if
        they are still at that version (0: none saved yet); None when someone saved since."""
        if expected_version == 0:
            try:
                self.collection.insert_one({"_id": CONFIG_ID, **config, "updated_at": now, "version": 1})
            except DuplicateKeyError:
                return None
            return 1
        saved = self.collection.find_one_and_update(
            {"_id": CONFIG_ID, **({"version": expected_version} if expected_version else {})},
            {"$set": {**config, "updated_at": now}, "$inc": {"version": 1}},
            upsert=expected_version is None, return_document=ReturnDocument.AFTER, projection={"version": 1})
        return saved and saved["version"]
