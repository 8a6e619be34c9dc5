"""`messages`: every message of every conversation, both directions, with the provider's ids and
status. Each says how it came in or goes out: `channel` (twilio, meta…) and `business` (the
business number, as the channel names it; "" for the channel's default).

Inbound:  received → answered | acknowledged (a reaction: kept, not answered) | handoff (kept for
          the person answering the conversation) | rate_limited
Outbound: [held →] pending → submitting (→ pending again, with `retry_at`, when the provider was busy or
          unreachable) → then the provider's own status words (queued, sent, delivered, read,
          undelivered, failed), or dry_run; `failed` also when the provider refused the request,
          and `unconfirmed` when it did not answer in time (it may have sent the message: not
          retried, so never sent twice; Twilio's status report, if one comes, moves it on: it
          names our id, where Meta's names only the wamid we never got).
          `pending` and `submitting` are ours alone, so a provider's status never reads as "not
          sent". Status reports arrive in any order; a status only ever moves forward (`read`
          then a late `delivered` stays `read`).
          `held`: a person's reply after the customer's 24-hour window, waiting for their answer
          to the approved template sent instead (`kind` "template"); such a template not sent yet
          when the customer writes first is `canceled`.

`external_id` is the provider's id (Twilio's SID, Meta's wamid). `dedup_key` is unique:
`in:<external id>` makes a redelivered webhook a no-op,
`reply:<first inbound id>:<part>` makes re-queueing the same reply after a crash a no-op, and
`resend:<failed part id>` makes re-sending a failed part twice a no-op. A re-sent part is a new
message (`kind` "resend", `resend_of` the failed one, which keeps its failure and gets `resent_at`).
"""
from __future__ import annotations

from datetime import datetime

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

DUPLICATE_KEY = 11000
OPEN_OUTBOUND = ("pending", "submitting")
GAPS = ({"outcome": "unknown"}, {"feedback": "down"})  # the answers whose questions are knowledge gaps
HELD = "held"  # a person's reply after the 24-hour window, waiting for the customer to answer the template
RESENDABLE = ("failed", "undelivered")  # never delivered; an `unconfirmed` one may have been
FIRST_ANSWER_PARTS = {"direction": "outbound", "kind": "answer", "part": 0}
# The same test as an aggregation expression.
IS_FIRST_ANSWER_PART = {"$and": [{"$eq": [f"${name}", value]} for name, value in FIRST_ANSWER_PARTS.items()]}
RESPONSE_MS = {"$subtract": ["$sent_at", "$received_at"]}
NEWEST_FIELDS = ("direction", "type", "body", "created_at", "profile_name")
GAP_FIELDS = ("question", "question_vector", "created_at", "wa_id", "outcome", "feedback")
# How far along its way an outbound message is; a report never moves it back.
PROGRESS = {
    "pending": 0, "submitting": 0, "unconfirmed": 0,
    "accepted": 1, "scheduled": 1, "queued": 2, "sending": 3, "sent": 4,
    "delivered": 5, "undelivered": 5, "failed": 5, "canceled": 5,
    "read": 6,
}


class Messages:
    def __init__(self, db: Database):
        self.collection = db.messages

    def ensure_indexes(self) -> None:
        # Messages stored before there were channels name the provider's id `twilio_sid`.
        self.collection.update_many({"twilio_sid": {"$exists": True}}, {"$rename": {"twilio_sid": "external_id"}})
        self.collection.create_index([("dedup_key", ASCENDING)], unique=True, name="dedup_key_unique")
        self.collection.create_index([("conversation_id", ASCENDING), ("created_at", ASCENDING)], name="conversation_time")
        # For the admin API's stats: counts by direction and time, and the few failed or unconfirmed.
        # Meta's status reports name a message by its wamid alone.
        self.collection.create_index([("external_id", ASCENDING)], name="external_id")
        self.collection.create_index([("direction", ASCENDING), ("created_at", ASCENDING)], name="direction_time")
        self.collection.create_index([("status", ASCENDING)], name="status")
        # For the knowledge gaps (`gap_questions`): one index for each way an answer becomes one,
        # holding those answers alone (storing any other message leaves it as it is).
        for gap in GAPS:
            (field,) = gap
            self.collection.create_index([(field, ASCENDING), ("gap_closed_at", ASCENDING), ("created_at", ASCENDING)],
                                         name=f"gap_{field}", partialFilterExpression=gap)

    def insert_inbound(self, message: dict) -> ObjectId | None:
        """Store an inbound message; None when the provider delivered it before (its id is stored)."""
        document = dict(message, direction="inbound", status="received", dedup_key=f"in:{message['external_id']}")
        try:
            return self.collection.insert_one(document).inserted_id
        except DuplicateKeyError:
            return None

    def mark_inbound(self, message_id: ObjectId, status: str, now: datetime) -> None:
        self.collection.update_one({"_id": message_id}, {"$set": {"status": status, "updated_at": now}})

    def open_work(self, conversation_id: str) -> tuple[list[dict], list[dict]]:
        """In one query, in order: the replies queued but not yet handed to the provider (or interrupted
        while sending, or held), and the customer's messages not answered yet."""
        found = self._in_order(
            {"conversation_id": conversation_id, "status": {"$in": ["received", *OPEN_OUTBOUND, HELD]}}
        )
        return [m for m in found if m["direction"] == "outbound"], [m for m in found if m["direction"] == "inbound"]

    def history(self, conversation_id: str, before: datetime, limit: int) -> list[dict]:
        """The last `limit` turns before `before`, oldest first: answered customer messages and
        the first part of each answer (which carries the whole answer text).

        Read newest first on the (conversation_id, created_at) index, skipping other messages here:
        a filter on direction/status/kind would not narrow the index scan."""
        if limit <= 0:
            return []
        cursor = (
            self.collection.find({"conversation_id": conversation_id, "created_at": {"$lt": before}})
            .sort("created_at", DESCENDING)
            .batch_size(4 * limit)
        )
        turns = []
        with cursor:
            for message in cursor:
                if _is_turn(message):
                    turns.append(message)
                    if len(turns) == limit:
                        break
        return turns[::-1]

    def queue_reply(self, conversation_id: str, wa_id: str, reply_to: list[ObjectId], parts: list[str],
                    now: datetime, kind: str, route: dict, key: str | None = None, buttons: list[dict] | None = None,
                    held: bool = False, **details) -> list[dict]:
        """Queue a reply's parts for sending, every part by `route` (channel and business number);
        the `details` (what the answer was made of) go on the first part, the `buttons` (id, title)
        under the last, where its channel can show them; `held` ones wait for `release_held`.
        Idempotent: `key` names the reply (by default the first message it answers and its kind).
        Returns the parts still to send (or held), as stored."""
        key = key or f"reply:{reply_to[0]}:{kind}"
        documents = [
            {
                "dedup_key": f"{key}:{number}",
                "conversation_id": conversation_id,
                "wa_id": wa_id,
                "direction": "outbound",
                "kind": kind,
                "part": number,
                "parts": len(parts),
                "body": body,
                "status": HELD if held else "pending",
                "reply_to": reply_to,
                "created_at": now,
                "updated_at": now,
                **route,
                **(details if number == 0 else {}),
                **({"buttons": buttons} if buttons and number == len(parts) - 1 else {}),
            }
            for number, body in enumerate(parts)
        ]
        return self._queue(documents)

    def rate(self, answer_key: str, value: str, now: datetime) -> dict | None:
        """Store the customer's rating ("up", "down") on the answer whose first part has
        `answer_key`: that part, rated, or None when it was rated before (the first rating
        stands) or is gone."""
        return self.collection.find_one_and_update(
            {"dedup_key": answer_key, "feedback": {"$exists": False}},
            {"$set": {"feedback": value, "feedback_at": now}},
            projection={"conversation_id": 1, "language": 1, "feedback": 1}, return_document=ReturnDocument.AFTER)

    def release_held(self, message_ids: list[ObjectId], now: datetime) -> None:
        """Held replies to send now: the customer answered the template."""
        self.collection.update_many({"_id": {"$in": message_ids}, "status": HELD},
                                    {"$set": {"status": "pending", "released_at": now, "updated_at": now}})

    def fail_held(self, conversation_id: str, now: datetime, error_message: str) -> int:
        """The conversation's held replies will never go (the template that would open the way was
        refused): failed, and re-sendable once the customer writes again."""
        return self.collection.update_many(
            {"conversation_id": conversation_id, "status": HELD},
            {"$set": {"status": "failed", "error_message": error_message, "updated_at": now}}).modified_count

    def resendable_parts(self, reply_to: list[ObjectId]) -> list[dict]:
        """The parts of the reply to `reply_to` that were never delivered and that were not
        re-sent yet, in order."""
        return self._in_order({"direction": "outbound", "reply_to": reply_to, "status": {"$in": list(RESENDABLE)},
                               "resent_at": {"$exists": False}})

    def queue_resend(self, failed: list[dict], now: datetime) -> list[dict]:
        """Queue a new part for each failed one (idempotent); the worker sends them in order.
        Returns those still to send."""
        copies = [
            {
                "dedup_key": f"resend:{part['_id']}",
                "resend_of": part["_id"],
                "kind": "resend",
                "status": "pending",
                "created_at": now,
                "updated_at": now,
                **{name: part[name] for name in ("conversation_id", "wa_id", "direction", "part", "parts", "body",
                                                 "reply_to", "channel", "business") if name in part},
            }
            for part in failed
        ]
        queued = self._queue(copies)
        self.collection.update_many({"_id": {"$in": [part["_id"] for part in failed]}}, {"$set": {"resent_at": now}})
        return queued

    def _queue(self, documents: list[dict]) -> list[dict]:
        """Insert outbound parts, each once (by `dedup_key`): those of them still to send."""
        try:
            self.collection.insert_many(documents, ordered=True)  # sets each document's _id
        except BulkWriteError as exc:
            if any(error["code"] != DUPLICATE_KEY for error in exc.details["writeErrors"]):
                raise
            # queued before: what of it is still to send
            return self._in_order({"dedup_key": {"$in": [d["dedup_key"] for d in documents]},
                                   "status": {"$in": [*OPEN_OUTBOUND, HELD]}})
        return documents

    def mark_taken_up(self, message_ids: list[ObjectId], now: datetime, status: str = "answered") -> None:
        """The customer's messages taken up: `answered`, `acknowledged` (a reaction: no answer
        due) or `handoff` (kept for the person answering the conversation)."""
        self.collection.update_many(
            {"_id": {"$in": message_ids}, "status": "received"}, {"$set": {"status": status, "updated_at": now}}
        )

    def record_send(self, message_id: ObjectId, status: str, now: datetime, **fields) -> None:
        """Record a send attempt's outcome: the fields always, the status unless a status report
        got further already."""
        if not self._advance({"_id": message_id}, status, {"updated_at": now, **fields}) and fields:
            self.collection.update_one({"_id": message_id}, {"$set": {"updated_at": now, **fields}})

    def defer_send(self, message_id: ObjectId, attempts: int, retry_at: datetime, now: datetime, **error) -> None:
        """Put a part whose send attempt failed for a passing reason back in the queue, due again at
        `retry_at`."""
        self.collection.update_one(
            {"_id": message_id, "status": "submitting"},
            {"$set": {"status": "pending", "attempts": attempts, "retry_at": retry_at, "updated_at": now,
                      "last_error": error}},
        )

    def record_status(self, message_id: ObjectId | None, external_id: str, status: str, error_code: int | None,
                      now: datetime) -> bool:
        """Apply a provider's status report for one of our messages; False when it is not ours (the
        id and the provider's id do not match a stored message)."""
        if message_id is None:  # the provider reports by its own id alone (Meta)
            match = {"external_id": external_id, "direction": "outbound"}
        else:
            match = {"_id": message_id, "direction": "outbound", "external_id": {"$in": [external_id, None]}}
        if self.collection.count_documents(match, limit=1) == 0:
            return False
        fields = {"status_at": now, "updated_at": now, **({"error_code": error_code} if error_code else {})}
        self._advance(match, status, fields)
        if message_id is not None:
            self.collection.update_one({"_id": message_id, "external_id": None}, {"$set": {"external_id": external_id}})
        return True

    def sending_to(self, wa_id: str) -> bool:
        """Whether a message to `wa_id` is with the provider, its id not stored yet."""
        return self.collection.count_documents({"status": "submitting", "wa_id": wa_id, "direction": "outbound"},
                                               limit=1) > 0

    def _advance(self, match: dict, status: str, fields: dict) -> bool:
        """Set `status` and `fields` where the message is not already as far along (a status we do
        not rank, such as "dry_run", only replaces our own open ones); False if it was."""
        step = PROGRESS.get(status, 0)
        behind = sorted({*OPEN_OUTBOUND, *(name for name, known in PROGRESS.items() if known < step)})
        result = self.collection.update_one(dict(match, status={"$in": behind}), {"$set": {"status": status, **fields}})
        return result.matched_count == 1

    def insert_outbound(self, document: dict) -> ObjectId:
        return self.collection.insert_one(dict(document, direction="outbound")).inserted_id

    def delete_created_before(self, before: datetime) -> int:
        # one delete per direction: each is a range on the (direction, created_at) index
        return sum(self.collection.delete_many({"direction": direction, "created_at": {"$lt": before}}).deleted_count
                   for direction in ("inbound", "outbound"))

    def delete_of(self, conversation_ids: list[str], wa_id: str) -> int:
        """Every message of these conversations, and every other one to or from `wa_id` (send-test)."""
        return (self.collection.delete_many({"conversation_id": {"$in": conversation_ids}}).deleted_count
                + self.collection.delete_many({"wa_id": wa_id}).deleted_count)

    def has_any(self, conversation_id: str) -> bool:
        return self.collection.count_documents({"conversation_id": conversation_id}, limit=1) > 0

    def get(self, message_id: ObjectId) -> dict | None:
        return self.collection.find_one({"_id": message_id})

    def last_inbound(self, conversation_id: str) -> dict | None:
        """The customer's latest message in this conversation (its id and time)."""
        return self.collection.find_one({"conversation_id": conversation_id, "direction": "inbound"},
                                        sort=[("created_at", DESCENDING)],
                                        projection={"created_at": 1, "channel": 1, "business": 1})

    def find_outbound(self, external_id: str) -> dict | None:
        return self.collection.find_one({"external_id": external_id, "direction": "outbound"})

    def find_inbound(self, external_id: str) -> dict | None:
        return self.collection.find_one({"dedup_key": f"in:{external_id}"})

    def of_conversation(self, conversation_id: str, limit: int = 0) -> list[dict]:
        """The conversation's last `limit` messages (0: all), oldest first."""
        newest = self.collection.find({"conversation_id": conversation_id}).sort(
            [("created_at", DESCENDING), ("part", DESCENDING)]).limit(limit)
        return list(newest)[::-1]

    # Figures for the admin API's stats (webapp.admin.stats). Each reads the (direction, created_at)
    # index with a $match on exactly those two fields, any other condition in a stage of its own:
    # SecantusDB plans an index only for such a $match (MongoDB merges the stages either way).

    def totals(self, since: datetime | None, until: datetime | None) -> dict:
        """Messages created in [since, until) (None: unbounded): how many inbound and outbound,
        and the answers among them by outcome."""
        created = {op: at for op, at in (("$gte", since), ("$lt", until)) if at is not None}
        by_outcome = {}
        for direction in ("inbound", "outbound"):
            match = {"direction": direction, **({"created_at": created} if created else {})}
            by_outcome[direction] = {found["_id"]: found["n"] for found in self.collection.aggregate(
                [{"$match": match}, {"$group": {"_id": "$outcome", "n": {"$sum": 1}}}])}
        return {"inbound": sum(by_outcome["inbound"].values()), "outbound": sum(by_outcome["outbound"].values()),
                "answers": {outcome: n for outcome, n in by_outcome["outbound"].items() if outcome}}

    def inbound_since(self, since: datetime) -> int:
        return self.collection.count_documents({"direction": "inbound", "created_at": {"$gte": since}})

    def per_day(self, since: datetime) -> dict[str, dict]:
        """The messages created since `since`, by UTC day ("2026-12-05"): how many inbound and
        outbound, the answers among them (their first parts) by outcome, and the response times
        of those sent (`response_seconds`: from the customer's message received to the answer
        accepted by the provider, computed by the server). One pass over each direction's messages
        on the (direction, created_at) index: SecantusDB plans none for a $in on `direction`."""
        days: dict[str, dict] = {}
        for direction in ("inbound", "outbound"):
            group = {"_id": {"day": utc_day("$created_at")}, "n": {"$sum": 1}}
            if direction == "outbound":
                group["_id"].update(answer=IS_FIRST_ANSWER_PART, outcome="$outcome")
                group["ms"] = {"$push": RESPONSE_MS}  # null for a message not sent (or no answer)
            pipeline = [{"$match": {"direction": direction, "created_at": {"$gte": since}}}, {"$group": group}]
            for found in self.collection.aggregate(pipeline):
                day = days.setdefault(found["_id"]["day"],
                                      {"inbound": 0, "outbound": 0, "answers": {}, "response_seconds": []})
                day[direction] += found["n"]
                if found["_id"].get("answer"):
                    outcome = found["_id"].get("outcome") or "none"
                    day["answers"][outcome] = day["answers"].get(outcome, 0) + found["n"]
                    day["response_seconds"] += [ms / 1000 for ms in found["ms"] if ms is not None]
        return days

    def failures(self) -> dict:
        """Outbound messages never delivered, by the provider's error code ("none": refused without
        one), and the sends it never confirmed. Few, and found on the status index."""
        failed = [{"$match": {"status": {"$in": list(RESENDABLE)}}}, {"$match": {"direction": "outbound"}},
                  {"$group": {"_id": "$error_code", "n": {"$sum": 1}}}]
        return {"failed_by_error_code": {str(found["_id"] or "none"): found["n"]
                                         for found in self.collection.aggregate(failed)},
                "unconfirmed": self.collection.count_documents({"status": "unconfirmed"})}

    def newest(self, conversation_id: str, **having) -> dict | None:
        """The conversation's newest message (of those `having` these fields), read on its
        (conversation_id, created_at) index: the console's inbox asks this of each row. (One
        aggregation with a $in over the ids would read the whole collection on SecantusDB.)"""
        return self.collection.find_one({"conversation_id": conversation_id, **having}, NEWEST_FIELDS,
                                        sort=[("created_at", DESCENDING)])

    def replies_to(self, message_id: ObjectId) -> list[dict]:
        return self._in_order({"direction": "outbound", "reply_to": message_id})

    def _in_order(self, query: dict) -> list[dict]:
        return list(self.collection.find(query).sort([("created_at", ASCENDING), ("part", ASCENDING)]))

    # Knowledge gaps (webapp.gaps): first parts of answers that said "I don't know" or got a 👎, each
    # read on its own index with equalities and one range, the only filter SecantusDB plans an index
    # for (`gap_closed_at: None` matches the answers whose gap is open: the field is missing).

    def gap_questions(self, since: datetime, limit: int) -> list[dict]:
        """The newest `limit` answers since `since` that said "I don't know" or got a 👎 and whose gap
        is open, newest first, with what grouping them needs."""
        found = {}
        for gap in GAPS:
            cursor = self.collection.find({**gap, "gap_closed_at": None, "created_at": {"$gte": since}}, GAP_FIELDS)
            found.update((answer["_id"], answer) for answer in cursor.sort("created_at", DESCENDING).limit(limit))
        return sorted(found.values(), key=lambda answer: (answer["created_at"], answer["_id"]), reverse=True)[:limit]

    def close_gaps(self, answer_ids: list[ObjectId], now: datetime, answer_text: str) -> None:
        """These answers' questions are answered now (by `answer_text`): no longer gaps."""
        self.collection.update_many({"_id": {"$in": answer_ids}},
                                    {"$set": {"gap_closed_at": now, "gap_closed_by_answer": answer_text}})


def utc_day(field: str) -> dict:
    """An aggregation expression: the UTC day ("2026-12-05") of the time in `field` ("$created_at")."""
    return {"$dateToString": {"format": "%Y-%m-%d", "date": field}}


def _is_turn(message: dict) -> bool:
    """A customer's message taken up, or the first part (which holds the whole text) of an answer
    of the bot's or a person's."""
    if message["direction"] == "inbound":
        return message["status"] in ("answered", "handoff")
    return message.get("kind") in ("answer", "agent") and message.get("part") == 0

