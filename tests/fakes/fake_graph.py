"""A fake Meta Graph API (the WhatsApp Cloud API) serving real HTTP on 127.0.0.1 for tests, also
as Kapso and 360dialog serve it (`flavor`: their paths and key headers, the same request shapes).

Covers `POST /{version}/{phone_number_id}/messages` (a text, quick-reply buttons, a template, a
read receipt with the typing indicator) and `GET /{version}/{phone_number_id}` (the number's
details). Every request is
recorded; errors come as the Graph API's `{"error": {...}}`; faults and latency can be injected,
and an allowed list refuses other recipients with 131030, as a number in development does.

Each message request is checked against Meta's official OpenAPI description
(`../shared/meta/business-messaging-api_v23.0.yaml`), and one that does not conform is refused
(400, code 100) and recorded as a contract violation. Two things about that document:
- Its message schemas are `allOf` of the common properties and a branch with
  `additionalProperties: false`, which on its own refuses every property of the other branch: read
  literally, every one of Meta's own request examples fails. The checker merges each `allOf` into
  one closed object (what the document means); then Meta's text, interactive and media examples
  pass, and a request with a field the document does not name still fails.
- Its `Message` schema does not describe a read receipt, though the document gives one as an
  example ("Send typing indicator and read receipt"): those are checked against its
  `MarkMessageRequestPayload` schema and the shape of that example.
"""
from __future__ import annotations

import functools
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from .http_server import Fault, Headers, ProviderFake, Reply

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared/meta/business-messaging-api_v23.0.yaml"
MESSAGES_PATH = "/{Version}/{Phone-Number-ID}/messages"
READ_RECEIPT_EXAMPLE = "Send typing indicator and read receipt"
CONTRACT_ERROR_CODE = 100  # the Graph API's "invalid parameter"

@dataclass(frozen=True)
class Flavor:
    """How one provider serves the Cloud API: its paths (the number's id in group `number`, `messages`
    set for a send) and the header that carries its key."""

    route: re.Pattern
    key_header: str  # lower-case
    key_prefix: str = ""


FLAVORS = {
    # Meta: /{version}/{phone_number_id}[/messages], a bearer token
    "meta": Flavor(re.compile(r"^/v[0-9]+\.[0-9]+/(?P<number>[0-9]+)(?P<messages>/messages)?$"), "authorization",
                   "Bearer "),
    # Kapso: its Meta-compatible API under /meta/whatsapp/{version}, the project's API key
    "kapso": Flavor(re.compile(r"^/meta/whatsapp/v[0-9]+\.[0-9]+/(?P<number>[0-9]+)(?P<messages>/messages)?$"),
                    "x-api-key"),
    # 360dialog: /messages (the key names the number) and /v1/configs/webhook, the number's API key
    "360dialog": Flavor(re.compile(r"^(?:(?P<messages>/messages)|/v1/configs/webhook)$"), "d360-api-key"),
}


@functools.lru_cache(maxsize=None)
def load_spec(path: str = str(SPEC_PATH)) -> dict[str, Any]:
    with open(path, encoding="utf-8") as spec_file:
        return yaml.load(spec_file, Loader=yaml.CSafeLoader)


def resolved(spec: dict, node: Any, seen: tuple[str, ...] = ()) -> Any:
    """`node` with its local `$ref`s replaced, OpenAPI-only keywords dropped and `allOf`s merged."""
    if isinstance(node, list):
        return [resolved(spec, item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in seen:  # a recursive schema: accept anything below the second visit
            return {}
        target = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return resolved(spec, target, seen + (ref,))
    schema = {key: resolved(spec, value, seen) for key, value in node.items()
              if key not in ("discriminator", "example", "examples")}
    return _merge_all_of(schema) if "allOf" in schema else schema


_OBJECT_KEYWORDS = {"type", "properties", "required", "additionalProperties", "description", "title"}


def _merge_all_of(schema: dict) -> dict:
    merged, rest = {key: value for key, value in schema.items() if key != "allOf"}, []
    for branch in schema["allOf"]:
        if not set(branch) <= _OBJECT_KEYWORDS:
            rest.append(branch)
            continue
        merged.setdefault("properties", {}).update(branch.get("properties", {}))
        merged["required"] = sorted({*merged.get("required", []), *branch.get("required", [])})
        if branch.get("additionalProperties") is False:
            merged["additionalProperties"] = False
        if "type" in branch:
            merged["type"] = branch["type"]
    return {**merged, **({"allOf": rest} if rest else {})}


@functools.lru_cache(maxsize=None)
def message_contract() -> tuple[Draft202012Validator, Draft202012Validator, dict]:
    """Validators for a message and for a read receipt, and the document's read-receipt example."""
    spec = load_spec()
    schemas = spec["components"]["schemas"]
    examples = spec["paths"][MESSAGES_PATH]["post"]["requestBody"]["content"]["application/json"]["examples"]
    return (Draft202012Validator(resolved(spec, schemas["Message"])),
            Draft202012Validator(resolved(spec, schemas["MarkMessageRequestPayload"])),
            examples[READ_RECEIPT_EXAMPLE]["value"])


def contract_problems(payload: object) -> list[str]:
    """How a messages request departs from Meta's document (empty: it conforms)."""
    message, read_receipt, example = message_contract()
    if isinstance(payload, dict) and "status" in payload and "type" not in payload:
        problems = [error.message for error in read_receipt.iter_errors(payload)]
        return problems + _shape_problems(payload, example, "")
    return [f"{'/'.join(map(str, error.absolute_path)) or 'body'}: {error.message[:300]}"
            for error in message.iter_errors(payload)]


def _shape_problems(value: object, example: object, where: str) -> list[str]:
    """Keys the example does not have, and values of another JSON type than the example's."""
    if isinstance(example, dict):
        if not isinstance(value, dict):
            return [f"{where or 'body'}: must be an object"]
        return [problem for key, item in value.items() for problem in (
            _shape_problems(item, example[key], f"{where}/{key}") if key in example
            else [f"{where}/{key}: not in Meta's example"])]
    return [] if type(value) is type(example) else [f"{where}: must be a {type(example).__name__}"]


def graph_error(status: int, code: int, message: str = "", subcode: int | None = None) -> Reply:
    error = {"message": message or f"(#{code}) error", "type": "OAuthException", "code": code,
             "error_data": {"messaging_product": "whatsapp", "details": message or "error"},
             "fbtrace_id": secrets.token_urlsafe(12)}
    if subcode is not None:
        error["error_subcode"] = subcode
    return Reply.json(status, {"error": error})


@dataclass(frozen=True)
class GraphRequest:
    method: str
    path: str
    headers: Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class FakeGraph(ProviderFake):
    def __init__(self, access_token: str, port: int = 0, allowed_numbers: set[str] | None = None,
                 flavor: str = "meta") -> None:
        super().__init__(port)
        self.access_token = access_token
        self.flavor = FLAVORS[flavor]
        self.allowed_numbers = allowed_numbers  # None: anyone; else others get 131030
        self._sent: list[dict] = []

    def sent_messages(self) -> list[dict]:
        """The messages accepted, in order: {"phone_number_id", "to", "type", "body" (a text's, or the
        text above an interactive message's buttons), "id"}, and "interactive" or "template" for those."""
        with self._lock:
            return [dict(m) for m in self._sent]

    def read_receipts(self) -> list[dict]:
        return [r.json() for r in self.requests if r.method == "POST" and (r.json() or {}).get("status") == "read"]

    def fail_next(self, status: int, code: int, message: str = "", times: int = 1, subcode: int | None = None) -> None:
        """The next `times` messages sent (not read receipts) get this Graph error."""
        self._inject(Fault(reply=graph_error(status, code, message, subcode)), times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        self._inject(Fault(delay=seconds), times)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._violations.clear()
            self._sent.clear()
        self._clear_faults()

    def handle(self, method: str, path: str, headers: Headers, body: bytes) -> Reply:
        self._record(GraphRequest(method, path, headers, body))
        route = self.flavor.route.match(path.split("?", 1)[0])
        if route is None:
            return graph_error(404, 803, "Unknown path components")
        if headers.get(self.flavor.key_header) != f"{self.flavor.key_prefix}{self.access_token}":
            return graph_error(401, 190, "Invalid OAuth access token")
        phone_number_id = route.groupdict().get("number") or ""
        if not route.group("messages"):
            return Reply.json(200, {"display_phone_number": "+1 555-078-3881", "verified_name": "Fibra Clara",
                                    "quality_rating": "GREEN", "code_verification_status": "VERIFIED",
                                    "id": phone_number_id}) if method == "GET" else graph_error(400, 100)
        try:
            payload = json.loads(body)
        except ValueError:
            return graph_error(400, CONTRACT_ERROR_CODE, "the body is not JSON")
        if isinstance(payload, dict) and payload.get("status") == "read":  # faults are for messages sent
            return self._message(phone_number_id, payload)
        fault = self._take_fault()
        reply = fault.reply or self._message(phone_number_id, payload)
        return Reply(reply.status, reply.body, reply.headers, fault.delay)

    def _message(self, phone_number_id: str, payload: Any) -> Reply:
        problems = contract_problems(payload)
        if problems:
            self._record_violations(problems)
            return graph_error(400, CONTRACT_ERROR_CODE, "; ".join(problems)[:1000])
        if payload.get("status") == "read":
            return Reply.json(200, {"success": True})
        to = payload["to"]
        if self.allowed_numbers is not None and to not in self.allowed_numbers:
            return graph_error(400, 131030, "Recipient phone number not in allowed list")
        wamid = "wamid." + secrets.token_urlsafe(30)
        with self._lock:
            interactive = payload.get("interactive")
            self._sent.append({"phone_number_id": phone_number_id, "to": to, "type": payload.get("type"),
                               "body": (payload.get("text") or {}).get("body")
                               or ((interactive or {}).get("body") or {}).get("text"),
                               "id": wamid, **({"interactive": interactive} if interactive else {}),
                               **({"template": payload["template"]} if payload.get("type") == "template" else {})})
        return Reply.json(200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                                "messages": [{"id": wamid}]})
