"""A fake Twilio REST API (2010-04-01) and Content API (v1) serving real HTTP on 127.0.0.1 for tests.

Covers sending a message, fetching the account and creating a content (`POST /v1/Content`, as
quick-reply buttons need). Every request is recorded, faults and latency can be injected, and each
Messages POST is checked against Twilio's official OpenAPI description of the 2010 API, each
Content request against that of the Content API (with openapi-core), so that a request the real
API would not understand fails loudly. A message sent by a ContentSid the fake never created (nor
was given with `add_content`) is refused as Twilio refuses it (21655).
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import re
import secrets
import signal
import threading
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from email.utils import format_datetime
from http import HTTPStatus
from collections import deque
from pathlib import Path
from typing import Any, Callable, Self
from urllib.parse import parse_qs, urlsplit

from openapi_core import OpenAPI

from .http_server import Fault, Headers, ProviderFake, Reply, openapi_problems

# ---------------------------------------------------------------------------
# Contract check against Twilio's OpenAPI description
# ---------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC_PATH = REPO_ROOT.parent / "shared/twilio/twilio_api_v2010.json"
CONTENT_SPEC_PATH = REPO_ROOT.parent / "shared/twilio/twilio_content_v1.json"
CONTENT_HOST = "https://content.twilio.com"  # the Content API document's only server
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MESSAGES_OPERATION = ("/2010-04-01/Accounts/{AccountSid}/Messages.json", "post")
ACCOUNT_OPERATION = ("/2010-04-01/Accounts/{Sid}.json", "get")


@functools.lru_cache(maxsize=None)
def _load_spec(resolved_path: str) -> dict[str, Any]:
    with open(resolved_path, encoding="utf-8") as spec_file:
        return json.load(spec_file)


def load_spec(path: str | Path | None = None) -> dict[str, Any]:
    """The parsed OpenAPI document, read once per path."""
    return _load_spec(str(Path(path or DEFAULT_SPEC_PATH).resolve()))


def _deref(spec: dict[str, Any], node: Any) -> Any:
    """`node` with every local `$ref` replaced by its target."""
    if isinstance(node, list):
        return [_deref(spec, item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _deref(spec, target)
    return {key: _deref(spec, value) for key, value in node.items()}


@dataclass(frozen=True)
class OperationContract:
    """The checkable part of one OpenAPI operation: path parameters and form body."""

    label: str
    path_params: dict[str, dict[str, Any]]
    form_schema: dict[str, Any] | None

    def violations(
        self, path_args: dict[str, str], content_type: str, form: dict[str, list[str]]
    ) -> list[str]:
        problems = [
            problem
            for name, schema in self.path_params.items()
            for problem in _value_problems(name, schema, [path_args.get(name, "")])
        ]
        if self.form_schema is not None:
            problems += _form_problems(self.form_schema, content_type, form)
        return [f"{self.label}: {problem}" for problem in problems]


@functools.lru_cache(maxsize=None)
def _operation_contract(spec_path: str, path: str, method: str) -> OperationContract:
    spec = load_spec(spec_path)
    path_item = spec["paths"][path]
    operation = path_item[method]
    params = _deref(spec, path_item.get("parameters", []) + operation.get("parameters", []))
    form = operation.get("requestBody", {}).get("content", {}).get(FORM_CONTENT_TYPE)
    return OperationContract(
        label=f"{method.upper()} {path}",
        path_params={p["name"]: p["schema"] for p in params if p["in"] == "path"},
        form_schema=_deref(spec, form["schema"]) if form else None,
    )


def operation_contract(
    path: str, method: str, spec_path: str | Path | None = None
) -> OperationContract:
    return _operation_contract(str(Path(spec_path or DEFAULT_SPEC_PATH).resolve()), path, method)


def _form_problems(
    schema: dict[str, Any], content_type: str, form: dict[str, list[str]]
) -> list[str]:
    if content_type.partition(";")[0].strip().lower() != FORM_CONTENT_TYPE:
        return [f"Content-Type is {content_type!r}, expected {FORM_CONTENT_TYPE}"]
    properties = schema.get("properties", {})
    problems = [f"unknown parameter {name!r}" for name in form if name not in properties]
    problems += [
        f"missing required parameter {name!r}"
        for name in schema.get("required", [])
        if name not in form
    ]
    for name, values in form.items():
        if name in properties:
            problems += _value_problems(name, properties[name], values)
    return problems


def _value_problems(name: str, schema: dict[str, Any], values: list[str]) -> list[str]:
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    elif len(values) > 1:
        return [f"{name!r} is not an array but was sent {len(values)} times"]
    return [
        f"{name!r}={value!r} {problem}"
        for value in values
        if (problem := _scalar_problem(schema, value))
    ]


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_uri(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def _parses_as(parse: Callable[[str], object]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            parse(value)
        except ValueError:
            return False
        return True

    return check


_TYPE_CHECKS: dict[str, Callable[[str], bool]] = {
    "integer": lambda value: re.fullmatch(r"-?\d+", value) is not None,
    "number": _is_number,
    "boolean": lambda value: value.lower() in ("true", "false"),
}
# "phone-number" is left unchecked: Twilio uses it for E.164 numbers, short codes,
# alphanumeric sender IDs and channel addresses alike.
_FORMAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "uri": _is_uri,
    "date-time": _parses_as(datetime.fromisoformat),
    "date": _parses_as(date.fromisoformat),
}


def _scalar_problem(schema: dict[str, Any], value: str) -> str | None:
    kind = schema.get("type", "string")
    if kind in _TYPE_CHECKS and not _TYPE_CHECKS[kind](value):
        return f"is not a valid {kind}"
    if "enum" in schema and value not in schema["enum"]:
        return f"is not one of {schema['enum']}"
    if kind == "string":
        return _string_problem(schema, value)
    return None


def _string_problem(schema: dict[str, Any], value: str) -> str | None:
    if len(value) < schema.get("minLength", 0):
        return f"is shorter than {schema['minLength']} characters"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"is longer than {schema['maxLength']} characters"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return f"does not match {schema['pattern']}"
    format_check = _FORMAT_CHECKS.get(schema.get("format", ""))
    ignore_format = schema.get("x-twilio", {}).get("ignoreFormat", False)
    if format_check and not ignore_format and not format_check(value):
        return f"is not a valid {schema['format']}"
    return None


@functools.lru_cache(maxsize=1)
def _content_openapi() -> OpenAPI:
    return OpenAPI.from_dict(json.loads(CONTENT_SPEC_PATH.read_text(encoding="utf-8")))


def content_problems(method: str, path: str, headers: Headers, body: bytes) -> list[str]:
    """How a Content API request breaks Twilio's document of it ([] when it conforms)."""
    return openapi_problems(_content_openapi(), CONTENT_HOST, method, path, headers, body)


# ---------------------------------------------------------------------------
# The Twilio fake
# ---------------------------------------------------------------------------

API_VERSION = "2010-04-01"
CONTRACT_ERROR_CODE = 21600  # the fake's own code for "outside the OpenAPI contract"
MAX_BODY_CHARS = 1600
WHATSAPP_ADDRESS = re.compile(r"whatsapp:\+[1-9]\d{6,14}")
_MESSAGES_URL = re.compile(r"/2010-04-01/Accounts/(?P<AccountSid>[^/]+)/Messages\.json")
_ACCOUNT_URL = re.compile(r"/2010-04-01/Accounts/(?P<Sid>[^/]+)\.json")
_CONTENT_URL = "/v1/Content"
_VARIABLE = re.compile(r"\{\{(\w+)\}\}")
_NOT_IN_A_VARIABLE = re.compile(r"[\n\t]| {5}")  # Twilio refuses such variable values (21656)

DEFAULT_ERROR_CODES = {401: 20003, 404: 20404, 405: 20004, 429: 20429, 500: 20500, 503: 20503}
ERROR_MESSAGES = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21617: "The concatenated message body exceeds the 1600 character limit",
    21655: "The ContentSid is Invalid",
    21656: "The ContentVariables Parameter is invalid",
    63016: (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
}


def twilio_error(
    status: int, code: int, message: str | None = None, headers: Headers | None = None
) -> Reply:
    """A reply in Twilio's (legacy, non RFC 9457) JSON error shape."""
    payload = {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code) or HTTPStatus(status).phrase,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply.json(status, payload, headers)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: Headers
    form: dict[str, list[str]]
    auth_ok: bool
    status_returned: int
    at: float  # time.time() on arrival
    json: Any = None  # a JSON body (the Content API's), parsed

    def param(self, name: str) -> str | None:
        """The first value of form parameter `name`."""
        return _first(self.form, name)


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _parse_form(headers: Headers, body: bytes) -> dict[str, list[str]]:
    if not headers.get("content-type", "").startswith(FORM_CONTENT_TYPE):
        return {}
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def _parse_json(headers: Headers, body: bytes) -> Any:
    if not headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _basic_auth(headers: Headers) -> tuple[str, str] | None:
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        credentials = base64.b64decode(encoded, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    user, separator, password = credentials.partition(":")
    return (user, password) if separator else None


class FakeTwilio(ProviderFake):
    """Fake of Twilio's Messages (create), Account (fetch) and Content (create) endpoints.

    Injected faults apply, in FIFO order, to the next Messages.json POSTs (or, `on="content"`,
    Content POSTs) whatever they contain; the contract check still runs (and records) for those
    requests.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        spec_path: str | Path | None = None,
        *,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.spec_path = Path(spec_path or DEFAULT_SPEC_PATH)
        self._messages: list[dict[str, Any]] = []
        self._contents: dict[str, dict[str, Any]] = {}  # the account's contents, by SID
        self._content_faults: deque[Fault] = deque()
        self._faults_on = {"messages": self._faults, "content": self._content_faults}
        self._contracts: dict[tuple[str, str], OperationContract] = {}

    def start(self) -> Self:
        # Loaded here so a missing spec fails the test setup, not a request thread (the Content
        # API's document takes a second or so, once per process).
        self._contracts = {
            op: operation_contract(*op, spec_path=self.spec_path)
            for op in (MESSAGES_OPERATION, ACCOUNT_OPERATION)
        }
        _content_openapi()
        return super().start()

    # -- inspection -----------------------------------------------------------

    def sent_messages(self) -> list[dict[str, Any]]:
        """Accepted messages in arrival order, as dicts with to, from_, body, sid; one sent by a
        content also has content_sid and content_variables (parsed), and its body is the
        content's as the customer reads it (its variables filled in)."""
        with self._lock:
            return [
                {"to": m["to"], "from_": m["from"], "body": m["body"], "sid": m["sid"],
                 **({k: m[k] for k in ("content_sid", "content_variables")} if "content_sid" in m else {})}
                for m in self._messages
            ]

    def contents(self) -> list[dict[str, Any]]:
        """The contents created through the Content API (and given with `add_content`), in order."""
        with self._lock:
            return [json.loads(json.dumps(content)) for content in self._contents.values()]

    def add_content(self, sid: str | None = None, types: dict | None = None, language: str = "es") -> str:
        """A content the account has already (made in the Console: an approved template); its SID."""
        resource = self._content_resource({"friendly_name": "", "language": language, "types": types or {}}, sid)
        with self._lock:
            self._contents[resource["sid"]] = resource
        return resource["sid"]

    def clear(self) -> None:
        """Forget recorded requests, messages, contract violations and pending faults (the
        contents stay: they are the account's)."""
        with self._lock:
            self._requests.clear()
            self._messages.clear()
            self._violations.clear()
        self._clear_faults()

    # -- fault injection ------------------------------------------------------

    def fail_next(
        self,
        status: int,
        code: int | None = None,
        message: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        on: str = "messages",
    ) -> None:
        """Answer the next `times` message POSTs (`on="content"`: Content POSTs) with a Twilio error."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        code = code if code is not None else DEFAULT_ERROR_CODES.get(status, status)
        self._inject(Fault(reply=twilio_error(status, code, message, headers)), times, self._faults_on[on])

    def delay_next(self, seconds: float, times: int = 1, on: str = "messages") -> None:
        """Answer the next `times` message POSTs (`on="content"`: Content POSTs) only after
        `seconds` (cut short by stop())."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._inject(Fault(delay=seconds), times, self._faults_on[on])

    def _clear_faults(self) -> None:
        super()._clear_faults()
        with self._lock:
            self._content_faults.clear()

    # -- request handling -----------------------------------------------------

    def handle(self, method: str, path: str, headers: Headers, body: bytes) -> Reply:
        arrived = time.time()
        url_path = urlsplit(path).path
        form = _parse_form(headers, body)
        auth_ok = _basic_auth(headers) == (self.account_sid, self.auth_token)
        if url_path == _CONTENT_URL and method == "POST":
            reply = self._create_content(path, headers, body, auth_ok)
        else:
            reply = self._route(method, url_path, headers, form, auth_ok)
        self._record(RecordedRequest(method, url_path, headers, form, auth_ok, reply.status, arrived,
                                     _parse_json(headers, body)))
        return reply

    def _route(
        self, method: str, path: str, headers: Headers, form: dict[str, list[str]], auth_ok: bool
    ) -> Reply:
        messages = _MESSAGES_URL.fullmatch(path)
        account = _ACCOUNT_URL.fullmatch(path)
        if messages and method == "POST":
            return self._create_message(messages.groupdict(), headers, form, auth_ok)
        if account and method == "GET":
            path_args = account.groupdict()
            violations = self._check_contract(ACCOUNT_OPERATION, path_args, headers, form)
            return self._fetch_account(path_args["Sid"], auth_ok, violations)
        if messages or account:
            return twilio_error(405, 20004, "Method not allowed")
        return twilio_error(404, 20404, f"The requested resource {path} was not found")

    def _create_message(
        self,
        path_args: dict[str, str],
        headers: Headers,
        form: dict[str, list[str]],
        auth_ok: bool,
    ) -> Reply:
        fault = self._take_fault()
        violations = self._check_contract(MESSAGES_OPERATION, path_args, headers, form)
        account_sid = path_args["AccountSid"]
        reply = fault.reply or self._message_reply(account_sid, form, auth_ok, violations)
        return replace(reply, delay=fault.delay)

    def _check_contract(
        self,
        operation: tuple[str, str],
        path_args: dict[str, str],
        headers: Headers,
        form: dict[str, list[str]],
    ) -> list[str]:
        contract = self._contracts[operation]
        violations = contract.violations(path_args, headers.get("content-type", ""), form)
        self._record_violations(violations)
        return violations

    def _message_reply(
        self, account_sid: str, form: dict[str, list[str]], auth_ok: bool, violations: list[str]
    ) -> Reply:
        if not auth_ok:
            return twilio_error(401, 20003)
        if violations:
            return _contract_error(violations)
        if account_sid != self.account_sid:
            return twilio_error(404, 20404, f"Account {account_sid} was not found")
        error = _message_error(form) or self._content_error(form)
        if error:
            return error
        resource = self._message_resource(account_sid, form)
        content = {"content_sid": _first(form, "ContentSid"), "content_variables": _variables(form)}
        with self._lock:
            self._messages.append({**resource, **(content if content["content_sid"] else {})})
        return Reply.json(201, resource)

    def _content_error(self, form: dict[str, list[str]]) -> Reply | None:
        """Twilio's refusal of a message by a content it does not have, or with variables it
        will not take."""
        content_sid = _first(form, "ContentSid")
        if not content_sid:
            return None
        with self._lock:
            known = content_sid in self._contents
        if not known:
            return twilio_error(400, 21655)
        if _variables(form) is None:
            return twilio_error(400, 21656)
        return None

    def _message_resource(self, account_sid: str, form: dict[str, list[str]]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(timezone.utc))
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
        return {
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "body": _first(form, "Body") or self._rendered(form),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": _first(form, "From"),
            "messaging_service_sid": _first(form, "MessagingServiceSid"),
            "num_media": str(len(form.get("MediaUrl", []))),
            "num_segments": "1",  # WhatsApp messages are not split into SMS segments
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": _first(form, "To"),
            "uri": f"{uri}.json",
        }

    def _rendered(self, form: dict[str, list[str]]) -> str:
        """A content's body as the customer reads it: its variables filled in (else their samples)."""
        with self._lock:
            content = self._contents.get(_first(form, "ContentSid") or "")
        if content is None:
            return ""
        body = next((kind["body"] for kind in content["types"].values() if "body" in kind), "")
        values = {**(content["variables"] or {}), **(_variables(form) or {})}
        return _VARIABLE.sub(lambda found: values.get(found[1], found[0]), body)

    def _create_content(self, path: str, headers: Headers, body: bytes, auth_ok: bool) -> Reply:
        fault = self._take_fault(self._content_faults)
        violations = content_problems("POST", path, headers, body)
        self._record_violations(violations)
        if fault.reply or not auth_ok or violations:
            reply = fault.reply or (_contract_error(violations) if auth_ok else twilio_error(401, 20003))
            return replace(reply, delay=fault.delay)
        resource = self._content_resource(json.loads(body))
        with self._lock:
            self._contents[resource["sid"]] = resource
        return replace(Reply.json(201, resource), delay=fault.delay)

    def _content_resource(self, request: dict[str, Any], sid: str | None = None) -> dict[str, Any]:
        """A content as the API renders it (the types sent as null left out)."""
        sid = sid or "HX" + secrets.token_hex(16)
        url = f"{CONTENT_HOST}/v1/Content/{sid}"
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "friendly_name": request.get("friendly_name") or "",
            "language": request["language"],
            "variables": request.get("variables") or {},
            "types": {name: kind for name, kind in request["types"].items() if kind is not None},
            "url": url,
            "date_created": now,
            "date_updated": now,
            "links": {"approval_create": f"{url}/ApprovalRequests/whatsapp",
                      "approval_fetch": f"{url}/ApprovalRequests"},
        }

    def _fetch_account(self, sid: str, auth_ok: bool, violations: list[str]) -> Reply:
        if not auth_ok:
            return twilio_error(401, 20003)
        if violations:
            return _contract_error(violations)
        if sid != self.account_sid:
            return twilio_error(404, 20404, f"Account {sid} was not found")
        return Reply.json(200, self._account_resource())

    def _account_resource(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}"
        created = "Thu, 30 Jul 2015 20:00:00 +0000"
        return {
            "auth_token": self.auth_token,
            "date_created": created,
            "date_updated": created,
            "friendly_name": "Fake Twilio account",
            "owner_account_sid": self.account_sid,
            "sid": self.account_sid,
            "status": "active",
            "subresource_uris": {"messages": f"{uri}/Messages.json"},
            "type": "Full",
            "uri": f"{uri}.json",
        }


def _contract_error(violations: list[str]) -> Reply:
    message = "Request violates Twilio's API contract: " + "; ".join(violations)
    return twilio_error(400, CONTRACT_ERROR_CODE, message)


def _variables(form: dict[str, list[str]]) -> dict[str, str] | None:
    """ContentVariables ({} when not sent), or None when Twilio would refuse them (21656): not a
    JSON object of non-empty strings on one line."""
    try:
        variables = json.loads(_first(form, "ContentVariables") or "{}")
    except ValueError:
        return None
    if not isinstance(variables, dict) or not all(
            isinstance(value, str) and value and not _NOT_IN_A_VARIABLE.search(value) for value in variables.values()):
        return None
    return variables


def _message_error(form: dict[str, list[str]]) -> Reply | None:
    to, sender, body = _first(form, "To"), _first(form, "From"), _first(form, "Body")
    if not to:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not sender and not _first(form, "MessagingServiceSid"):
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
        return twilio_error(400, 21602, "Message body is required.")
    if body and len(body) > MAX_BODY_CHARS:
        return twilio_error(400, 21617)
    if not WHATSAPP_ADDRESS.fullmatch(to):
        return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Twilio API until SIGTERM/Ctrl-C.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--spec-path", default=None)
    args = parser.parse_args(argv)

    stop_requested = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop_requested.set())
    with FakeTwilio(args.account_sid, args.auth_token, args.spec_path, port=args.port) as fake:
        print(fake.base_url, flush=True)
        stop_requested.wait()


if __name__ == "__main__":
    main()
