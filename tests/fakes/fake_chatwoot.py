"""A fake Chatwoot (its account API, as an API-channel inbox uses it) serving real HTTP on 127.0.0.1.

It keeps contacts, conversations and messages in memory, answers as Chatwoot's Rails server does
(the shapes its views render, which Chatwoot's OpenAPI file does not always describe), and, when
given a webhook secret (and URL, or `poster`), delivers signed `message_created` and
`conversation_status_changed` webhooks: for the messages the app posts and the statuses it sets
(Chatwoot echoes them, a moment later) and for what an agent does (`agent_replies`,
`agent_sets_status`).

Every request is checked against Chatwoot's OpenAPI file (`../shared/chatwoot/swagger.json`) with
openapi-core: its paths, methods and required fields are the contract (see its SOURCE.md), and a
request that breaks it is refused (422) and recorded as a contract violation. Faults: an error
status for the next requests (`fail_next`), latency (`delay_next`), or down for everything until
`up()` (`down()`).
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from openapi_core import OpenAPI

from .http_server import Fault, Headers, ProviderFake, Reply, openapi_problems

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared/chatwoot/swagger.json"
SPEC_HOST = "https://app.chatwoot.com"  # the document's only server: requests are checked as sent there
API = "/api/v1/accounts/{account}"
AGENT = {"id": 7, "name": "Ana (agent)", "type": "user"}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: Headers
    body: Any  # parsed JSON, or None

    @property
    def route(self) -> str:
        """The path with numbers as {id}: "POST /api/v1/accounts/{id}/conversations/{id}/messages"."""
        return f"{self.method} " + "/".join("{id}" if part.isdigit() else part for part in self.path.split("/"))


@functools.lru_cache(maxsize=1)
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


def contract_problems(method: str, path: str, headers: Headers, body: bytes) -> list[str]:
    """How a request breaks Chatwoot's OpenAPI file ([] when it conforms)."""
    return openapi_problems(_openapi(), SPEC_HOST, method, path, headers, body)


class FakeChatwoot(ProviderFake):
    def __init__(self, token: str, account_id: int = 1, inbox_id: int = 1, webhook_url: str = "",
                 webhook_secret: str = "", echo: bool = True, port: int = 0) -> None:
        super().__init__(port)
        _openapi()  # read the document now (seconds), not during a request the app times
        self.token, self.account_id, self.inbox_id = token, account_id, inbox_id
        self.webhook_url, self.webhook_secret, self.echo = webhook_url, webhook_secret, echo
        self.contacts: dict[int, dict] = {}
        self.conversations: dict[int, dict] = {}
        self.messages: dict[int, dict] = {}
        self._ids = itertools.count(101)
        self._down = 0  # status every request gets while down, 0 when up
        self.deliveries: list[tuple[dict, int]] = []  # (webhook payload, the app's status)
        # how a webhook reaches the app: (body, headers) -> its status; by default POSTed to `webhook_url`
        self.poster = lambda body, headers: requests.post(self.webhook_url, data=body, headers=headers,
                                                          timeout=10).status_code

    # --- faults -------------------------------------------------------------------------------
    def fail_next(self, status: int, times: int = 1) -> None:
        self._inject(Fault(reply=Reply.json(status, {"error": f"injected {status}"})), times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        self._inject(Fault(delay=seconds), times)

    def down(self, status: int = 502) -> None:
        with self._lock:
            self._down = status

    def up(self) -> None:
        with self._lock:
            self._down = 0

    # --- what tests read ----------------------------------------------------------------------
    def conversation_of(self, phone_number: str) -> dict:
        """The one conversation of the contact with this phone number (+E.164)."""
        contact = next(c for c in self.contacts.values() if c["phone_number"] == phone_number)
        (conversation,) = [c for c in self.conversations.values() if c["contact_id"] == contact["id"]]
        return conversation

    def messages_of(self, conversation_id: int) -> list[dict]:
        with self._lock:
            return [m for m in self.messages.values() if m["conversation_id"] == conversation_id]

    # --- what an agent does in Chatwoot ---------------------------------------------------------
    def agent_replies(self, conversation_id: int, text: str, private: bool = False) -> int:
        """An agent's reply (or private note) in the conversation; the app's status for its webhook."""
        message = self._add_message(conversation_id, {"content": text, "message_type": "outgoing",
                                                      "private": private}, sender=AGENT)
        return self.deliver(self.message_event(message))

    def agent_sets_status(self, conversation_id: int, status: str) -> int:
        with self._lock:
            conversation = self.conversations[conversation_id]
            conversation["status"] = status
        return self.deliver(dict(self._conversation_view(conversation), event="conversation_status_changed"))

    def message_event(self, message: dict) -> dict:
        conversation = self.conversations[message["conversation_id"]]
        return dict(message, event="message_created", message_type=message["message_type_name"],
                    conversation=self._conversation_view(conversation),
                    inbox={"id": self.inbox_id, "name": "WhatsApp"}, account={"id": self.account_id})

    def deliver(self, payload: dict, timestamp: int | None = None, delivery: str | None = None,
                secret: str | None = None) -> int:
        """POST a webhook to the app, signed as Chatwoot signs it; the app's status."""
        body, headers = self.signed(payload, timestamp, secret)
        status = self.poster(body, {**headers, "X-Chatwoot-Delivery": delivery or str(uuid.uuid4())})
        with self._lock:
            self.deliveries.append((payload, status))
        return status

    def signed(self, payload: dict, timestamp: int | None = None, secret: str | None = None) -> tuple[bytes, dict]:
        """A webhook's body and headers (without X-Chatwoot-Delivery), signed as Chatwoot signs them."""
        body = json.dumps(payload).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        key = (self.webhook_secret if secret is None else secret).encode()
        signature = hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-Chatwoot-Signature": f"sha256={signature}",
                      "X-Chatwoot-Timestamp": stamp}

    # --- the API --------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Headers, body: bytes) -> Reply:
        url = urlsplit(path)
        parsed = json.loads(body) if body else None
        self._record(Recorded(method, url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, headers, parsed))
        if headers.get("api_access_token") != self.token:
            return Reply.json(401, {"errors": ["Invalid Access Token"]})
        problems = contract_problems(method, path, headers, body)
        if problems:
            self._record_violations(problems)
            return Reply.json(422, {"message": "; ".join(problems)})
        fault = self._take_fault()
        with self._lock:
            down = self._down
        if fault.reply or down:
            return fault.reply or Reply.json(down, {"error": "down"})
        reply = self._route(method, url.path.removeprefix(API.format(account=self.account_id)),
                            parse_qs(url.query), parsed or {})
        return Reply(reply.status, reply.body, reply.headers, delay=fault.delay)

    def _route(self, method: str, path: str, query: dict, body: dict) -> Reply:
        parts = path.strip("/").split("/")
        match method, parts:
            case "GET", ["contacts", "search"]:
                return self._search(query.get("q", [""])[0])
            case "POST", ["contacts"]:
                return self._create_contact(body)
            case "PUT", ["contacts", contact_id]:
                return self._update_contact(int(contact_id), body)
            case "POST", ["contacts", contact_id, "labels"]:
                return self._labels(self.contacts, int(contact_id), body)
            case "POST", ["conversations"]:
                return self._create_conversation(body)
            case "POST", ["conversations", conversation_id, "messages"]:
                return self._create_message(int(conversation_id), body)
            case "GET", ["conversations", conversation_id, "messages"]:
                return self._list_messages(int(conversation_id))
            case "POST", ["conversations", conversation_id, "toggle_status"]:
                return self._set(int(conversation_id), "status", body["status"])
            case "POST", ["conversations", conversation_id, "toggle_priority"]:
                return self._set(int(conversation_id), "priority", body["priority"])
            case "POST", ["conversations", conversation_id, "labels"]:
                return self._labels(self.conversations, int(conversation_id), body)
            case "POST", ["conversations", conversation_id, "custom_attributes"]:
                return self._conversation_attributes(int(conversation_id), body)
        return Reply.json(404, {"error": "Resource could not be found"})

    def _search(self, q: str) -> Reply:
        with self._lock:
            found = [dict(c) for c in self.contacts.values() if q and q in (c["phone_number"], c["identifier"])]
        return Reply.json(200, {"meta": {"count": len(found), "current_page": 1}, "payload": found})

    def _create_contact(self, body: dict) -> Reply:
        with self._lock:
            if body.get("phone_number") and any(c["phone_number"] == body["phone_number"] for c in self.contacts.values()):
                return Reply.json(422, {"message": "Phone number has already been taken"})
            contact_id = next(self._ids)
            source_id = str(uuid.uuid4())
            contact = {"id": contact_id, "name": body.get("name", ""), "phone_number": body.get("phone_number"),
                       "identifier": body.get("identifier"), "email": None, "labels": [],
                       "custom_attributes": dict(body.get("custom_attributes") or {}),
                       "contact_inboxes": [{"source_id": source_id, "inbox": {"id": body["inbox_id"]}}]}
            self.contacts[contact_id] = contact
        return Reply.json(200, {"payload": {"contact": contact, "contact_inbox": contact["contact_inboxes"][0]}})

    def _update_contact(self, contact_id: int, body: dict) -> Reply:
        with self._lock:
            contact = self.contacts.get(contact_id)
            if contact is None:
                return Reply.json(404, {"error": "Resource could not be found"})
            contact["custom_attributes"].update(body.get("custom_attributes") or {})
            contact.update({k: v for k, v in body.items() if k in ("name", "phone_number", "identifier")})
        return Reply.json(200, {"payload": contact})

    def _create_conversation(self, body: dict) -> Reply:
        with self._lock:
            contact = self.contacts.get(body.get("contact_id"))
            if contact is None or body["source_id"] not in [ci["source_id"] for ci in contact["contact_inboxes"]]:
                return Reply.json(422, {"message": "Contact inbox not found"})
            conversation_id = next(self._ids)
            conversation = {"id": conversation_id, "account_id": self.account_id, "inbox_id": body.get("inbox_id"),
                            "contact_id": contact["id"], "source_id": body["source_id"],
                            "status": body.get("status", "open"), "priority": None, "labels": [],
                            "custom_attributes": dict(body.get("custom_attributes") or {})}
            self.conversations[conversation_id] = conversation
        return Reply.json(200, dict(self._conversation_view(conversation)))

    def _create_message(self, conversation_id: int, body: dict) -> Reply:
        if conversation_id not in self.conversations:
            return Reply.json(404, {"error": "Resource could not be found"})
        message = self._add_message(conversation_id, body, sender={"id": 1, "name": "API", "type": "user"})
        if self.echo and self.webhook_secret and not message["private"]:
            threading.Thread(target=self.deliver, args=(self.message_event(message),), daemon=True).start()
        return Reply.json(200, self._message_view(message))

    def _list_messages(self, conversation_id: int) -> Reply:
        if conversation_id not in self.conversations:
            return Reply.json(404, {"error": "Resource could not be found"})
        return Reply.json(200, {"meta": {}, "payload": [self._message_view(m) for m in self.messages_of(conversation_id)]})

    def _set(self, conversation_id: int, field: str, value: str) -> Reply:
        with self._lock:
            conversation = self.conversations.get(conversation_id)
            if conversation is None:
                return Reply.json(404, {"error": "Resource could not be found"})
            conversation[field] = value
        if field == "priority":
            return Reply(200)
        if self.echo and self.webhook_secret:  # Chatwoot tells of every status change, ours too
            event = dict(self._conversation_view(conversation), event="conversation_status_changed")
            threading.Thread(target=self.deliver, args=(event,), daemon=True).start()
        return Reply.json(200, {"meta": {}, "payload": {"success": True, "current_status": value,
                                                        "conversation_id": conversation_id}})

    def _labels(self, table: dict, key: int, body: dict) -> Reply:
        with self._lock:
            if key not in table:
                return Reply.json(404, {"error": "Resource could not be found"})
            table[key]["labels"] = list(body["labels"])  # Chatwoot replaces the whole list
        return Reply.json(200, {"payload": list(body["labels"])})

    def _conversation_attributes(self, conversation_id: int, body: dict) -> Reply:
        with self._lock:
            conversation = self.conversations.get(conversation_id)
            if conversation is None:
                return Reply.json(404, {"error": "Resource could not be found"})
            conversation["custom_attributes"] = dict(body["custom_attributes"])
        return Reply.json(200, {"custom_attributes": conversation["custom_attributes"]})

    def _add_message(self, conversation_id: int, body: dict, sender: dict) -> dict:
        with self._lock:
            message_id = next(self._ids)
            kind = body.get("message_type", "outgoing")
            message = {"id": message_id, "conversation_id": conversation_id, "content": body["content"],
                       "message_type_name": kind, "private": bool(body.get("private", False)),
                       "content_type": "text", "content_attributes": dict(body.get("content_attributes") or {}),
                       "created_at": int(time.time()), "sender": sender, "source_id": None}
            self.messages[message_id] = message
            return message

    @staticmethod
    def _message_view(message: dict) -> dict:
        """A message as the API renders it: `message_type` as a number (0 incoming, 1 outgoing)."""
        view = {k: v for k, v in message.items() if k != "message_type_name"}
        return dict(view, message_type={"incoming": 0, "outgoing": 1}[message["message_type_name"]])

    def _conversation_view(self, conversation: dict) -> dict:
        contact = self.contacts[conversation["contact_id"]]
        return {"id": conversation["id"], "account_id": self.account_id, "inbox_id": conversation["inbox_id"],
                "status": conversation["status"], "priority": conversation["priority"],
                "labels": list(conversation["labels"]), "channel": "Channel::Api",
                "custom_attributes": dict(conversation["custom_attributes"]),
                "contact_inbox": {"source_id": conversation["source_id"], "contact_id": contact["id"],
                                  "inbox_id": conversation["inbox_id"]},
                "meta": {"sender": {"id": contact["id"], "name": contact["name"],
                                    "phone_number": contact["phone_number"]}}}
