"""`leads`: one document per conversation (`_id` = its id) in which the customer gave a name, an
e-mail address or a phone number (`webapp.leads`): those details, the customer's WhatsApp number
and profile name, `source` "whatsapp", and when it was first and last noted."""
from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database


class Leads:
    def __init__(self, db: Database):
        self.collection = db.leads

    def ensure_indexes(self) -> None:
        self.collection.create_index([("updated_at", DESCENDING)], name="updated_at")
        self.collection.create_index([("wa_id", ASCENDING)], name="wa_id")

    def note(self, conversation_id: str, wa_id: str, profile_name: str, details: dict, now: datetime) -> bool:
        """Create or update the conversation's lead with `details`; True when it is new."""
        profile = {"profile_name": profile_name} if profile_name else {}
        result = self.collection.update_one(
            {"_id": conversation_id},
            {"$set": {**details, **profile, "updated_at": now},
             "$setOnInsert": {"wa_id": wa_id, "source": "whatsapp", "created_at": now}},
            upsert=True,
        )
        return result.upserted_id is not None

    def page(self, page: int, per_page: int) -> tuple[list[dict], int]:
        """Most recently noted first: one page of leads, and how many there are."""
        found = self.collection.find().sort("updated_at", DESCENDING).skip((page - 1) * per_page).limit(per_page)
        return list(found), self.count()

    def every(self):
        """Every lead, most recently noted first, as a cursor."""
        return self.collection.find().sort("updated_at", DESCENDING)

    def delete_of(self, conversation_ids: list[str], wa_id: str) -> int:
        """The leads of these conversations, and any other of `wa_id`'s."""
        query = {"$or": [{"_id": {"$in": conversation_ids}}, {"wa_id": wa_id}]}
        return self.collection.delete_many(query).deleted_count

    def count(self) -> int:
        return self.collection.count_documents({})
