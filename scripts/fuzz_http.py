"""HTTP fuzz benchmark: no request, however malformed, makes the app answer 5xx.

    python scripts/fuzz_http.py [--requests 10000] [--max-seconds 900] [--seed 1] [--concurrency 8]
                                [--replay INDEX] [--keep]

Starts, all on 127.0.0.1 and in a scratch folder removed afterwards: a MongoDB-protocol server
(SecantusDB, fresh data), the fake Twilio REST API and gunicorn with 2 workers, configured as
tests/conftest.py's `gunicorn_server` fixture configures them (ADMIN_TOKEN set; PUBLIC_BASE_URL
the address gunicorn listens on, so Twilio's signature covers the URL the request names). The per-address admin limits are
raised so requests with the right token reach the routes behind it (tests/test_input_fuzz.py fuzzes
the lockout). Twenty outbound messages are stored first, so status reports can find one of ours,
and a worker's heartbeat, so /readyz is ready (no worker runs: a 503 from it would count as a 5xx).

Then sends `--requests` generated requests over `--concurrency` keep-alive connections. Request k
of a seed is always the same request (a `random.Random` seeded with seed and k), so `--replay k`
sends that one alone. The families, each built by mutating a valid request:

- webhooks, signed as Twilio signs them (so the fields reach the parser) and unsigned or wrongly
  signed: fields dropped, replaced, sent twice or added; values with control characters, NUL, any
  Unicode plane, other scripts' digits, long values; random NumMedia and MediaUrlN;
- status callbacks likewise, with a random `ref` (sometimes one of ours) and ErrorCode;
- the ops routes (`test`, `diag`, `send-test`): right, near and wrong tokens, random query
  strings, form, JSON (any shape, lone surrogates) and raw bodies, any method;
- the admin API (`stats`, `conversations…`, `sessions/<wa_id>`, `messages/<id>/resend`) and the
  routes outside it (`/metrics`, `/healthz`, `/readyz`, the OpenAPI document): random ids and
  numbers in the path (sometimes one of ours), paging and filter queries, any method;
- the routes with a JSON body (`PUT /api/v1/bot/config`, `send-test`, `conversations/<id>/reply`)
  with the right token: bodies nested deeper than Python's parser goes (`[[[…]]]`, up to the 64 KiB
  cap), and each field given a value of any JSON type (objects like `{"$gt": ""}`, numbers, lists);
- the Cloud API webhooks (Meta's, Kapso's, 360dialog's): Meta's verification GET with random
  parameters, and deliveries authenticated as each provider does (mostly), unauthenticated or
  wrongly: a valid delivery (or Kapso event, single or batched) with fields replaced by any JSON
  value (numbers, text, lists, objects, deep nesting), dropped or added, statuses among them, and
  bodies that are not JSON at all;
- Chatwoot's webhook: an agent's reply (in a conversation we mirror, or not) and a status change,
  signed as Chatwoot signs them (mostly), unsigned, wrongly signed or stale, with fields replaced
  by any JSON value, dropped or added, a delivery id sometimes sent before (a replay) or missing;
- the console's pages (`/console/…`): with the session of a signed-in browser (mostly), none or a
  made-up one; with the page's CSRF token (mostly), a wrong one or none; any of the forms' fields
  with odd values, in the body or the query string, random ids, any method;
- random paths under /api/v1/whatsapp/ and random methods;
- raw bodies: invalid UTF-8, invalid percent-encoding, binary, any content type;
- odd headers: Host, X-Forwarded-*, Content-Type, long and non-ASCII values;
- oversized bodies (over the app's 64 KiB cap), with a Content-Length and chunked: expected 413.

Prints the total, the count per status code, the count of 5xx (must be 0), requests per second,
how many oversized bodies got 413, what the deeply nested and wrong-typed JSON bodies got, and for
any 5xx the first 5 reproducers (method, path, headers,
body prefix) and the exceptions in the server log. Exits 1 if any request got a 5xx or no answer,
130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import hashlib
import hmac
import secrets
import select
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, urlencode

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import embedded_mongo, run_local  # noqa: E402
from scripts.chat import kapso_event, kapso_signature, meta_delivery, meta_signature, twilio_form  # noqa: E402
from tests.fakes.fake_graph import FakeGraph  # noqa: E402
from tests.fakes.fake_twilio import FakeTwilio  # noqa: E402
from tests.processes import app_env, database_uri, free_port, start_gunicorn  # noqa: E402
from webapp.request_body import MAX_REQUEST_BYTES  # noqa: E402
from webapp.config import API_PREFIX  # noqa: E402
from webapp.bot_config import BotConfig  # noqa: E402
from webapp.console.session import token_fingerprint  # noqa: E402
from webapp.db import open_store  # noqa: E402

ACCOUNT_SID = "AC" + "f" * 32
SENDER = "whatsapp:+14155238886"
WEB_WORKERS = 2
START_TIMEOUT_SECONDS = 120
REQUEST_TIMEOUT_SECONDS = 30
OUR_MESSAGES = 20
REPRODUCERS = 5
FORM = "application/x-www-form-urlencoded"
ADMIN_ROUTES = ["/test", "/diag", "/send-test"]
# Every admin API route ({} a path parameter); tests/test_input_fuzz.py fuzzes the same.
ADMIN_API_ROUTES = [API_PREFIX + route for route in (
    "/stats", "/conversations", "/conversations/{}", "/conversations/{}/close", "/conversations/{}/release",
    "/conversations/{}/reply", "/sessions/{}", "/customers/{}", "/messages/{}/resend", "/leads", "/leads.csv")]
OTHER_ROUTES = ["/metrics", "/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/bot/config",
                "/api/v1/knowledge/gaps"]
# The routes that read a JSON body, with their fields ({} a conversation id)
META_WEBHOOK = "/api/v1/meta/webhook"
META_APP_SECRET, META_VERIFY_TOKEN, META_ACCESS_TOKEN = "fuzz-meta-app-secret", "fuzz-meta-verify-token", "fuzz-meta-token"
META_PHONE_NUMBER_ID = "106540352242922"
CHATWOOT_WEBHOOK, CHATWOOT_SECRET = "/api/v1/chatwoot/webhook", "fuzz-chatwoot-secret"
CHATWOOT_CONVERSATION = 77  # mirrors one of our conversations (prepare_database)
FUZZ_CONVERSATION = "f" * 32
CLOUD_API_SECRETS = {"meta": META_APP_SECRET, "kapso": "fuzz-kapso-secret", "360dialog": "fuzz-d360-secret"}
CLOUD_API_SIGNING = {"meta": ("X-Hub-Signature-256", meta_signature), "kapso": ("X-Webhook-Signature", kapso_signature),
                     "360dialog": ("X-Webhook-Secret", lambda secret, _: secret)}
# The console's pages ({} a path parameter), with the method each takes, and the fields its forms send.
CONSOLE_ROUTES = [("GET", "/console/sign-in"), ("POST", "/console/sign-in"), ("GET", "/console/"),
                  ("GET", "/console/inbox"), ("GET", "/console/conversations/{}"),
                  ("GET", "/console/conversations/{}/live"), ("POST", "/console/conversations/{}/reply"),
                  ("POST", "/console/conversations/{}/release"), ("POST", "/console/conversations/{}/close"),
                  ("GET", "/console/knowledge"), ("POST", "/console/knowledge/ask"),
                  ("GET", "/console/knowledge/ask/{}"), ("GET", "/console/dashboard"), ("GET", "/console/settings"),
                  ("POST", "/console/settings"), ("GET", "/console/language/{}"), ("POST", "/console/sign-out"),
                  ("GET", "/console/static/{}")]
CONSOLE_FIELDS = ["csrf_token", "token", "next", "text", "reply_key", "question", "business_hours_on", "timezone",
                  "hours_mon", "hours_sun", "status", "channel", "q", "page", *BotConfig.model_fields]
JSON_ROUTES = [("PUT", "/api/v1/bot/config", list(BotConfig.model_fields)),
               ("POST", API_PREFIX + "/send-test", ["to", "text"]),
               ("POST", API_PREFIX + "/conversations/{}/reply", ["text"])]
LIST_QUERY_NAMES = ["status", "page", "per_page", "days", "limit", "format", "x", ""]
LIST_QUERY_VALUES = ["open", "closed", "lost", "OPEN", "csv", "json", "1", "0", "100", "101", "366", "-1", "٣", "9" * 30,
                     ""]
CUSTOMERS = ["whatsapp:+34600111222", "whatsapp:+34600111333", "whatsapp:+447700900123"]
ODD_TEXT = ["", " ", "\x00", "\u202e", "\ufeff", "\u200b", "😀", "٣٤٥", "²", "\r\n", "\t", "%", "%zz", "+", "&",
            "=", "null", "[]", "{}", "<x/>", "ñandú", "a" * 1_601, "a" * 4_097, "😀" * 2_000]
NUMBERS = ["0", "1", "10", "11", "-1", "-0", " 2 ", "1_0", "٣", "²", "1e3", "0x5", "9" * 30, "9" * 5_000, ""]
STATUSES = ["queued", "sent", "delivered", "read", "undelivered", "failed", "canceled", "dry_run", "x" * 33, "Sent"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "get",
           "M-SEARCH", "X"]
PATH_PIECES = list("abcdehikostw-_./~;,=+@:") + ["%00", "%ff", "%2F", "%25", "%zz", "..", "webhook", "status",
                                                 "send-test", "%C3%B1", "//"]
CONTENT_TYPES = [FORM, FORM + "; charset=latin-1", FORM + "; charset=utf-16", "multipart/form-data",
                 "multipart/form-data; boundary=x", 'multipart/form-data; boundary="', "application/json",
                 "text/plain", "", "application/x-www-form-urlencoded; boundary=x; charset=", "x/y; a=b; a=c"]
ODD_HEADERS = {
    "Host": ["xn--", "xn--a.com", "a" * 64 + ".com", "localhost:0", "localhost:99999", "[::1]", "[", "", "ä.com"],
    "X-Forwarded-For": ["1.2.3.4, 5.6.7.8", "garbage", ""],
    "X-Forwarded-Proto": ["https", "gopher", ""],
    "X-Forwarded-Host": ["xn--", "evil.example"],
    "X-Forwarded-Port": ["99999", "abc"],
    "X-Forwarded-Prefix": ["/a%2Fb", "[", "/"],
    "X-Twilio-Webhooks-Signature-Settings": ["algorithm=HMAC_SHA256", "algorithm=MD5", "key=x"],
    "Content-Type": CONTENT_TYPES,
    "Expect": ["100-continue", "nonsense"],
    "Authorization": ["Bearer", "Basic !!!", "Bearer " + "x" * 5_000],
}


@dataclass
class Wire:
    """One request as it goes on the wire."""

    method: str
    path: str  # ASCII: percent-encoded where needed
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    body: bytes = b""
    chunked: bool = False
    family: str = ""


# -- generation ---------------------------------------------------------------------------------


class Generator:
    """Builds request `index` from `seed` alone, whatever thread asks and in whatever order."""

    def __init__(self, seed: int, host: str, auth_token: str, admin_token: str, our_ids: list[str],
                 console: ConsoleSession):
        self.seed = seed
        self.host = host
        self.validator = RequestValidator(auth_token)
        self.admin_token = admin_token
        self.our_ids = our_ids
        self.console_session = console
        self.families = [(self.webhook, 20), (self.status, 16), (self.admin, 16), (self.admin_api, 10),
                         (self.json_body, 8), (self.meta, 12), (self.chatwoot, 8), (self.any_path, 10),
                         (self.raw_body, 11), (self.odd_headers, 10), (self.oversized, 7), (self.console, 12)]

    def request(self, index: int) -> Wire:
        rng = random.Random(f"{self.seed}:{index}")
        family = rng.choices([f for f, _ in self.families], weights=[w for _, w in self.families])[0]
        wire = family(rng)
        wire.family = wire.family or family.__name__
        return wire

    # families

    def webhook(self, rng: random.Random) -> Wire:
        sid = message_sid(rng)
        base = twilio_form(rng.choice(CUSTOMERS), SENDER, rng.choice(["hola", "cuánto cuesta la fibra?"]), "Ana",
                           ACCOUNT_SID)
        base.update(MessageSid=sid, SmsMessageSid=sid, SmsSid=sid)
        media = rng.randint(0, 12) if rng.random() < 0.3 else 0
        base["NumMedia"] = str(media)
        for i in range(media):
            base[f"MediaUrl{i}"] = f"https://api.twilio.com/media/{i}"
            base[f"MediaContentType{i}"] = "image/jpeg"
        pairs = mutate(rng, base, {"From": whatsapp_address, "MessageSid": message_sid, "NumMedia": number})
        return self.signed_form(rng, f"{API_PREFIX}/webhook", "", pairs)

    def status(self, rng: random.Random) -> Wire:
        sid = message_sid(rng)
        base = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": rng.choice(STATUSES), "ErrorCode": number(rng),
                "AccountSid": ACCOUNT_SID, "To": rng.choice(CUSTOMERS), "From": SENDER, "ApiVersion": "2010-04-01"}
        pairs = mutate(rng, base, {"MessageSid": message_sid, "ErrorCode": number,
                                   "MessageStatus": lambda r: r.choice(STATUSES + [random_text(r)])})
        return self.signed_form(rng, f"{API_PREFIX}/status", self.status_query(rng), pairs)

    def admin(self, rng: random.Random) -> Wire:
        route = rng.choice(ADMIN_ROUTES)
        method = rng.choice(["GET", "GET", "POST", "POST", "PUT", "HEAD", "OPTIONS"])
        query = urlencode(self.send_test_fields(rng), errors="surrogatepass") if rng.random() < 0.4 else \
            random_query(rng)
        content_type, body = self.admin_body(rng)
        headers = [("Authorization", self.authorization(rng))] if rng.random() < 0.9 else []
        if content_type:
            headers.append(("Content-Type", content_type.encode()))
        return Wire(method, f"{API_PREFIX}{route}" + (f"?{query}" if query else ""), headers, body)

    def admin_api(self, rng: random.Random) -> Wire:
        route = rng.choice(ADMIN_API_ROUTES + OTHER_ROUTES)
        segment = rng.choice([rng.choice(self.our_ids), secrets_hex(rng, 24), secrets_hex(rng, 32), number(rng),
                              rng.choice(CUSTOMERS), random_text(rng)])
        path = route.format(quote(segment, safe="", errors="surrogatepass"))
        method = rng.choice(["GET", "GET", "POST", "POST", "DELETE", "PUT", "HEAD", "OPTIONS"])
        if rng.random() < 0.6:
            query = urlencode([(rng.choice(LIST_QUERY_NAMES), rng.choice(LIST_QUERY_VALUES + [random_text(rng)]))
                               for _ in range(rng.randint(1, 3))], errors="surrogatepass")
        else:
            query = random_query(rng)
        headers = [("Authorization", self.authorization(rng))] if rng.random() < 0.9 else []
        content_type, body = self.admin_body(rng)  # a reply's {"text": …} among them
        if content_type:
            headers.append(("Content-Type", content_type.encode()))
        return Wire(method, path + (f"?{query}" if query else ""), headers, body)

    def json_body(self, rng: random.Random) -> Wire:
        method, route, fields = rng.choice(JSON_ROUTES)
        path = route.format(rng.choice([secrets_hex(rng, 32), rng.choice(self.our_ids)]))
        headers = [("Authorization", f"Bearer {self.admin_token}".encode()), ("Content-Type", b"application/json")]
        if rng.random() < 0.4:
            return Wire(method, path, headers, deep_json(rng, rng.choice(fields)), family="deep_json")
        values = {name: json_value(rng) if rng.random() < 0.7 else rng.choice(["hola", "whatsapp:+34600111222"])
                  for name in rng.sample(fields, k=rng.randint(1, len(fields)))}
        return Wire(method, path, headers, json.dumps(values).encode(), family="wrong_types")

    def meta(self, rng: random.Random) -> Wire:
        provider = rng.choice(["meta", "meta", "kapso", "360dialog"])
        if provider == "meta" and rng.random() < 0.2:
            query = urlencode({name: rng.choice([value, random_text(rng)]) for name, value in (
                ("hub.mode", "subscribe"), ("hub.verify_token", META_VERIFY_TOKEN), ("hub.challenge", "1158201444"))
                if rng.random() < 0.8}, errors="surrogatepass")
            return Wire("GET", f"{META_WEBHOOK}?{query}", [], family="meta_verify")
        if rng.random() < 0.1:
            body = raw_bytes(rng)
        else:
            delivery = meta_delivery(rng.choice(CUSTOMERS).removeprefix("whatsapp:+"), META_PHONE_NUMBER_ID,
                                     {"type": "text", "text": {"body": rng.choice(["hola", random_text(rng)])}})
            if rng.random() < 0.3:
                change = delivery["entry"][0]["changes"][0]["value"]
                change["statuses"] = [{"id": rng.choice(["wamid.x", random_text(rng)]), "status": rng.choice(STATUSES),
                                       "errors": [{"code": json_value(rng)}]}]
            if provider == "kapso" and rng.random() < 0.7:  # Kapso's own event, sometimes a batch
                event = kapso_event(rng.choice(CUSTOMERS).removeprefix("whatsapp:+"), META_PHONE_NUMBER_ID,
                                    rng.choice(["hola", random_text(rng)]))
                delivery = {"type": "whatsapp.message.received", "batch": True, "data": [event] * rng.randint(0, 3)} \
                    if rng.random() < 0.3 else event
            body = json.dumps(mutate_json(rng, delivery)).encode()
        signing = rng.choice(["right"] * 6 + ["none", "wrong secret", "garbage"])
        headers = [("Content-Type", b"application/json")]
        if provider == "kapso":
            event = rng.choice([b"whatsapp.message.received", b"whatsapp.message.read", random_header_value(rng)])
            headers.append(("X-Webhook-Event", event))
        if signing != "none":
            secret = CLOUD_API_SECRETS[provider] if signing == "right" else "not-the-secret"
            header, sign = CLOUD_API_SIGNING[provider]
            headers.append((header, sign(secret, body).encode() if signing != "garbage" else random_header_value(rng)))
        return Wire("POST", f"/api/v1/{provider}/webhook", headers, body, family=f"{provider}_delivery")

    def chatwoot(self, rng: random.Random) -> Wire:
        conversation = {"id": rng.choice([CHATWOOT_CONVERSATION, rng.randint(1, 10**6)]), "status": "open"}
        event = rng.choice([
            {"event": "message_created", "id": rng.randint(1, 10**6), "message_type": "outgoing", "private": False,
             "content": rng.choice(["Hola, soy Ana", random_text(rng)]), "conversation": conversation},
            dict(conversation, event="conversation_status_changed", status=rng.choice(["resolved", "pending", "open"])),
        ])
        body = raw_bytes(rng) if rng.random() < 0.1 else json.dumps(mutate_json(rng, event)).encode()
        stamp = str(int(time.time()) - rng.choice([0, 0, 0, 3600])).encode()  # sometimes stale
        signing = rng.choice(["right"] * 6 + ["none", "wrong secret", "garbage"])
        secret = CHATWOOT_SECRET if signing == "right" else "not-the-secret"
        signature = b"sha256=" + hmac.new(secret.encode(), stamp + b"." + body, hashlib.sha256).hexdigest().encode()
        headers = [("Content-Type", b"application/json"), ("X-Chatwoot-Timestamp", stamp)]
        if signing != "none":
            headers.append(("X-Chatwoot-Signature", signature if signing != "garbage" else random_header_value(rng)))
        if rng.random() < 0.9:
            delivery = f"fuzz-{rng.randint(1, 50)}" if rng.random() < 0.2 else secrets.token_hex(8)  # replays
            headers.append(("X-Chatwoot-Delivery", delivery.encode()))
        return Wire("POST", CHATWOOT_WEBHOOK, headers, body, family="chatwoot_delivery")

    def console(self, rng: random.Random) -> Wire:
        method, route = rng.choice(CONSOLE_ROUTES)
        method = method if rng.random() < 0.85 else rng.choice(METHODS)
        segment = rng.choice([FUZZ_CONVERSATION, secrets_hex(rng, 24), secrets_hex(rng, 32), "console.css", "en",
                              random_text(rng)])
        path = route.format(quote(segment, safe="", errors="surrogatepass"))
        if rng.random() < 0.5:
            path += "?" + urlencode([(rng.choice(CONSOLE_FIELDS), self.console_value(rng))
                                     for _ in range(rng.randint(1, 3))], errors="surrogatepass")
        session = self.console_session
        # Signing out with the fuzz session would end it for every request after this one.
        cookie = rng.choice([session.secret] * 4 + ["", random_text(rng)]) if "sign-out" not in route else "x"
        headers = [("Cookie", f"console_session={quote(cookie, errors='surrogatepass')}; "
                              f"console_sign_in={session.csrf}".encode())]
        fields = [(name, self.console_value(rng)) for name in rng.sample(CONSOLE_FIELDS, k=rng.randint(0, 6))]
        if rng.random() < 0.7:
            fields.append(("csrf_token", session.csrf if rng.random() < 0.8 else random_text(rng)))
        body = urlencode(fields, errors="surrogatepass").encode() if rng.random() < 0.9 else raw_bytes(rng)
        headers.append(("Content-Type", FORM.encode() if rng.random() < 0.9 else rng.choice(CONTENT_TYPES).encode()))
        return Wire(method, path, headers, body)

    def console_value(self, rng: random.Random) -> str:
        return rng.choice([rng.choice(ODD_TEXT), number(rng), random_text(rng), self.admin_token, "0.5", "1200",
                           "09:00-18:00", "Europe/Madrid", "/console/inbox", "//evil.example", "handoff", "twilio"])

    def any_path(self, rng: random.Random) -> Wire:
        method = rng.choice(METHODS) if rng.random() < 0.8 else "".join(
            rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=rng.randint(1, 12)))
        path = API_PREFIX + "/" + "".join(rng.choices(PATH_PIECES, k=rng.randint(0, 15)))
        if rng.random() < 0.3:
            path += "?" + random_query(rng)
        headers = [("Authorization", f"Bearer {self.admin_token}".encode())] if rng.random() < 0.5 else []
        if rng.random() < 0.5:
            body = urlencode(mutate(rng, {"Body": "hola", "From": rng.choice(CUSTOMERS)}, {})).encode()
            headers += [("Content-Type", FORM.encode()), ("X-Twilio-Signature", random_header_value(rng))]
        else:
            body = b""
        return Wire(method, path, headers, body)

    def raw_body(self, rng: random.Random) -> Wire:
        route = rng.choice(["/webhook", "/status", "/send-test"])
        body = raw_bytes(rng)
        headers = [("Content-Type", rng.choice(CONTENT_TYPES).encode()),
                   ("Authorization", f"Bearer {self.admin_token}".encode()),
                   ("X-Twilio-Signature", random_header_value(rng))]
        return Wire("POST", f"{API_PREFIX}{route}", headers, body)

    def odd_headers(self, rng: random.Random) -> Wire:
        wire = rng.choice([self.webhook, self.status, self.admin])(rng)
        for name in rng.sample(sorted(ODD_HEADERS), k=rng.randint(1, 3)):
            value = rng.choice(ODD_HEADERS[name]).encode("latin-1", "replace") if rng.random() < 0.7 else \
                random_header_value(rng)
            wire.headers = [(n, v) for n, v in wire.headers if n.lower() != name.lower()] + [(name, value)]
        for _ in range(rng.randint(0, 3)):
            wire.headers.append(("X-" + "".join(rng.choices("abcdefgh-", k=rng.randint(1, 20))),
                                 random_header_value(rng)))
        return wire

    def oversized(self, rng: random.Random) -> Wire:
        route = rng.choice(["/webhook", "/status", "/send-test"])
        size = rng.randint(MAX_REQUEST_BYTES + 1, 4 * MAX_REQUEST_BYTES)
        filler = rng.choice([b"a", b"%", b"\xff", b"Body=x&"])
        content_type = "application/json" if route == "/send-test" and rng.random() < 0.5 else FORM
        headers = [("Content-Type", content_type.encode()), ("Authorization", f"Bearer {self.admin_token}".encode()),
                   ("X-Twilio-Signature", secrets_hex(rng, 28).encode())]  # one gunicorn lets through
        chunked = rng.random() < 0.4
        if chunked:
            headers.append(("Transfer-Encoding", b"chunked"))
        return Wire("POST", f"{API_PREFIX}{route}", headers, (filler * size)[:size], chunked,
                    "oversized_chunked" if chunked else "oversized")

    # parts

    def signed_form(self, rng: random.Random, path: str, query: str, pairs: list[tuple[str, str]]) -> Wire:
        """A form POST, signed as Twilio signs it over the URL the app will rebuild (mostly), else
        unsigned or wrongly signed."""
        body = urlencode(pairs).encode()
        headers = [("Host", self.host.encode()), ("Content-Type", FORM.encode())]
        signing = rng.choice(["right"] * 6 + ["none", "wrong token", "other url", "garbage"])
        url = f"http://{self.host}{path}" + (f"?{query}" if query else "")  # as on the wire
        form = multi_form(pairs)
        if signing == "right":
            headers.append(("X-Twilio-Signature", self.validator.compute_signature(url, form).encode()))
        elif signing == "wrong token":
            headers.append(("X-Twilio-Signature", RequestValidator("x").compute_signature(url, form).encode()))
        elif signing == "other url":
            headers.append(("X-Twilio-Signature", self.validator.compute_signature(url + "x", form).encode()))
        elif signing == "garbage":
            headers.append(("X-Twilio-Signature", random_header_value(rng)))
        return Wire("POST", path + (f"?{query}" if query else ""), headers, body)

    def status_query(self, rng: random.Random) -> str:
        ref = rng.choice([rng.choice(self.our_ids), secrets_hex(rng, 24), random_text(rng), ""])
        shape = rng.random()
        if shape < 0.7:
            return urlencode({"ref": ref})
        if shape < 0.85:
            return urlencode([("ref", ref), (rng.choice(["ref", "x", ""]), random_text(rng))])
        return random_query(rng)

    def authorization(self, rng: random.Random) -> bytes:
        return rng.choice([
            f"Bearer {self.admin_token}", f"Bearer {self.admin_token}", f"bearer  {self.admin_token}\t",
            f"Bearer {self.admin_token}x", f"Bearer {self.admin_token[:-1]}", "Bearer ", self.admin_token,
            f"Basic {self.admin_token}",
        ]).encode() if rng.random() < 0.8 else random_header_value(rng)

    def send_test_fields(self, rng: random.Random) -> dict:
        return {"to": rng.choice([rng.choice(CUSTOMERS), whatsapp_address(rng), json_value(rng)]),
                "text": rng.choice(["prueba", random_text(rng), random_text(rng, surrogates=True), json_value(rng)])}

    def admin_body(self, rng: random.Random) -> tuple[str, bytes]:
        kind = rng.choice(["none", "form", "json", "json", "raw"])
        if kind == "form":
            fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.send_test_fields(rng).items()}
            return FORM, urlencode(fields, errors="surrogatepass").encode()
        if kind == "json":
            value = self.send_test_fields(rng) if rng.random() < 0.7 else json_value(rng)
            return "application/json", json.dumps(value).encode()
        if kind == "raw":
            return rng.choice(CONTENT_TYPES), raw_bytes(rng)
        return "", b""


def mutate(rng: random.Random, base: dict[str, str], values: dict) -> list[tuple[str, str]]:
    """`base` with each field kept, dropped, replaced or sent twice, unknown fields added, shuffled."""
    pairs: list[tuple[str, str]] = []
    for name, value in base.items():
        action = rng.choices(["keep", "drop", "replace", "twice"], weights=[6, 1, 2, 1])[0]
        replacement = values.get(name, field_value)
        if action == "keep":
            pairs.append((name, value))
        elif action == "replace":
            pairs.append((name, replacement(rng)))
        elif action == "twice":
            pairs += [(name, value), (name, replacement(rng))]
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(["Body", "From", "MessageSid", "NumMedia", "MediaUrl0", "MediaUrl10", "ButtonText",
                           "ProfileName", "MessageStatus", "ErrorCode", "ref", "", random_text(rng, 12)])
        pairs.append((name, field_value(rng)))
    if rng.random() < 0.5:
        rng.shuffle(pairs)
    return pairs


def multi_form(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """The form as the app reads it, for signing: every value of every name."""
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return _MultiValues(form)


class _MultiValues(dict):
    """What RequestValidator expects of a form with repeated names (it calls getlist)."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def random_text(rng: random.Random, max_length: int = 40, surrogates: bool = False) -> str:
    """Any characters: controls and NUL, Latin-1, the BMP and beyond; lone surrogates only if asked."""
    chars = []
    for _ in range(rng.randint(0, max_length)):
        pool = rng.random()
        if pool < 0.4:
            code = rng.randint(0x20, 0x7E)
        elif pool < 0.55:
            code = rng.choice([*range(0x00, 0x20), 0x7F, 0x85, 0xA0])
        elif pool < 0.7:
            code = rng.randint(0xA0, 0xFF)
        elif pool < 0.9:
            code = rng.randint(0x100, 0xFFFF)
        else:
            code = rng.randint(0x10000, 0x10FFFF)
        if 0xD800 <= code <= 0xDFFF and not surrogates:
            code = 0xFFFD
        chars.append(chr(code))
    if rng.random() < 0.2:
        chars.insert(rng.randint(0, len(chars)), rng.choice(ODD_TEXT))
    return "".join(chars)


def field_value(rng: random.Random) -> str:
    return rng.choice([random_text, random_text, number, lambda r: r.choice(ODD_TEXT)])(rng)


def number(rng: random.Random) -> str:
    return rng.choice(NUMBERS) if rng.random() < 0.7 else str(rng.randint(-5, 99_999))


def whatsapp_address(rng: random.Random) -> str:
    digits = "".join(rng.choices("0123456789", k=rng.randint(5, 16)))
    return rng.choice([f"whatsapp:+{digits}", "whatsapp:+3٤٥٦٧٨٩٠١٢", f"whatsapp:{digits}", f"+{digits}",
                       f" whatsapp:+{digits}\n", random_text(rng)])


def message_sid(rng: random.Random) -> str:
    return rng.choice(["SM" + secrets_hex(rng, 32)] * 4 + [
        "MM" + secrets_hex(rng, 32).upper(), "SM" + secrets_hex(rng, 31), "SM" + secrets_hex(rng, 32) + "\n",
        random_text(rng)])


def secrets_hex(rng: random.Random, length: int) -> str:
    return "".join(rng.choices("0123456789abcdef", k=length))


def json_value(rng: random.Random, depth: int = 0):
    kind = rng.randint(0, 6 if depth < 2 else 4)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, 10**400 if rng.random() < 0.1 else 7, 1.5, 1e308])
    if kind in (3, 4):
        return random_text(rng, 20, surrogates=True)
    if kind == 5:
        return [json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {random_text(rng, 8, surrogates=True): json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def mutate_json(rng: random.Random, value, depth: int = 0):
    """`value` with now and then a field replaced by any JSON value, dropped, or one added."""
    if isinstance(value, dict):
        mutated = {}
        for key, item in value.items():
            roll = rng.random()
            if roll < 0.05:
                continue
            mutated[key] = json_value(rng) if roll < 0.12 else mutate_json(rng, item, depth + 1)
        if rng.random() < 0.1:
            mutated[random_text(rng, 10)] = json_value(rng)
        return mutated
    if isinstance(value, list):
        items = [mutate_json(rng, item, depth + 1) for item in value]
        return items + [json_value(rng)] if rng.random() < 0.1 else items
    return value


def deep_json(rng: random.Random, field_name: str) -> bytes:
    """JSON nested 1,000 to ~30,000 deep (Python's parser gives up near 1,000), as a whole body or
    as one field's value, sometimes left unclosed; never over the app's body cap."""
    opening, closing = rng.choice([("[", "]"), ('{"a": ', "}"), ('[{"a": ', "}]")])
    depth = rng.randint(1_000, (MAX_REQUEST_BYTES - 100) // (len(opening) + len(closing)))
    nested = opening * depth + "1" + closing * (depth if rng.random() < 0.8 else rng.randint(0, depth))
    return (nested if rng.random() < 0.5 else json.dumps({field_name: None}).replace("null", nested)).encode()


def random_query(rng: random.Random) -> str:
    """Raw, half percent-encoded query text (ASCII, as on the wire)."""
    return quote(random_text(rng), safe="%&=+;/?:@$,") if rng.random() < 0.6 else \
        "".join(rng.choices(list("ref=&%0123456789abcdefzZ+;/") + ["%ff", "%00", "%C3%B1", "%ED%A0%80"],
                            k=rng.randint(0, 30)))


def random_header_value(rng: random.Random) -> bytes:
    """Latin-1 bytes without line breaks (what http.client lets through); control characters only
    now and then, since gunicorn refuses them before the app sees the request."""
    alphabet = [*range(0x20, 0x7F), *range(0xA0, 0x100), 0x09]
    if rng.random() < 0.1:
        alphabet += [0x00, 0x01, 0x1B, 0x7F, 0x85]
    return bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))


def raw_bytes(rng: random.Random) -> bytes:
    return rng.choice([
        lambda: rng.randbytes(rng.randint(0, 300)),
        lambda: rng.choice([b"\xff\xfe\xfd", b"Body=\xc3\x28", b"Body=%ED%A0%80", b"Body=%zz%f%", b"%", b"=&=&&==",
                            b"Body=%00%01&From=whatsapp:%2B34600111222", b"\x00" * 64, b"--x\r\n\r\n--x--",
                            b'{"to": "whatsapp:+34600111222", "text": "\\ud800"}', b"[1]", b"\"x\"", b"1e999"]),
        lambda: "".join(rng.choices(list("Body=From&MessageSid%0123456789abcdefXYZ+;\x00ñ"), k=rng.randint(0, 80)))
        .encode(),
    ])()


# -- sending ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    index: int
    family: str
    status: int | None  # None: no answer
    error: str = ""
    json_error: bool = False


class Sender:
    """One keep-alive connection per thread; a connection the server closed is reopened."""

    def __init__(self, port: int):
        self.port = port
        self.local = threading.local()

    def send(self, index: int, wire: Wire) -> Outcome:
        try:
            return self._exchange(index, wire)
        except (OSError, http.client.HTTPException) as exc:
            self._close()
            return Outcome(index, wire.family, None, f"{type(exc).__name__}: {exc}")

    def _exchange(self, index: int, wire: Wire) -> Outcome:
        connection = self._connection()
        connection.putrequest(wire.method, wire.path, skip_host=True, skip_accept_encoding=True)
        if not any(name.lower() == "host" for name, _ in wire.headers):
            connection.putheader("Host", f"127.0.0.1:{self.port}")
        for name, value in wire.headers:
            connection.putheader(name, value)
        if not wire.chunked and (wire.body or wire.method in ("POST", "PUT", "PATCH")):
            connection.putheader("Content-Length", str(len(wire.body)))
        connection.endheaders()
        sent_all = _send_body(connection.sock, wire)
        response = connection.getresponse()
        body = response.read()
        if response.will_close or not sent_all or len(wire.body) > MAX_REQUEST_BYTES:
            self._close()  # gunicorn drops a connection whose oversized body the app left unread
        json_error = _has_json_error(response, body) or (wire.method == "HEAD" and _is_json(response))
        return Outcome(index, wire.family, response.status, json_error=json_error)

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self.local, "connection", None)
        if connection is not None and connection.sock is not None and _readable(connection.sock):
            self._close()  # closed by the server while idle (keep-alive timeout)
            connection = None
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_SECONDS)
            self.local.connection = connection
        return connection

    def _close(self) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is not None:
            connection.close()
        self.local.connection = None


def _send_body(sock: socket.socket, wire: Wire, piece: int = 16_384) -> bool:
    """Send the body piece by piece; one over the cap only until the server has answered (a 413
    before reading it), as curl does: the answer would otherwise be lost to the reset that closing
    a socket with unread data causes. False if stopped early."""
    pieces = [wire.body[start:start + piece] for start in range(0, len(wire.body), piece)]
    if wire.chunked:
        pieces = [b"%X\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]
    watch = len(wire.body) > MAX_REQUEST_BYTES  # smaller ones may get a "100 Continue" first
    for data in pieces:
        if watch and _readable(sock):
            return False
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
    return True


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def _is_json(response: http.client.HTTPResponse) -> bool:
    return response.getheader("Content-Type", "").startswith("application/json")


def _has_json_error(response: http.client.HTTPResponse, body: bytes) -> bool:
    if not _is_json(response):
        return False
    try:
        return bool(json.loads(body).get("error"))
    except (ValueError, AttributeError):
        return False


def run(generator: Generator, sender: Sender, indices: list[int], concurrency: int, deadline: float,
        stop: threading.Event) -> list[Outcome]:
    """Send the requests at `indices` from `concurrency` threads until done, the deadline or `stop`."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    todo = iter(indices)

    def work() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                index = next(todo, None)
            if index is None:
                return
            try:
                outcome = sender.send(index, generator.request(index))
            except Exception as exc:  # a request this script cannot even put on the wire: its own bug, reported
                outcome = Outcome(index, "unsent", None, f"{type(exc).__name__}: {exc}")
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=work, name=f"fuzz-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    return sorted(outcomes, key=lambda o: o.index)


# -- the stack ----------------------------------------------------------------------------------


@dataclass
class ConsoleSession:
    """A console session signed in with the admin token: its cookie's secret and its form token."""

    secret: str
    csrf: str


def prepare_database(mongodb_uri: str, admin_token: str) -> tuple[list[str], ConsoleSession]:
    """Outbound messages waiting for Twilio's reports, for status callbacks to find (their ids),
    a worker's heartbeat (kept fresh by WORKER_STALE_SECONDS), so /readyz answers 200, and a
    console session, so the console's requests reach its pages."""
    store = open_store(mongodb_uri)
    now = datetime.now(timezone.utc)
    try:
        secret, session = store.console_sessions.start(token_fingerprint(admin_token), now, timedelta(days=1))
        console = ConsoleSession(secret, session["csrf"])
        store.heartbeats.beat("fuzz-worker", now, index_chunks=100)
        store.conversations.start(FUZZ_CONVERSATION, "34600111222", "twilio", now)
        store.chatwoot_sync.collection.insert_one({"_id": FUZZ_CONVERSATION, "wa_id": "34600111222", "events": [],
                                                   "pending": False, "chatwoot": {"conversation_id": CHATWOOT_CONVERSATION}})
        return [str(store.messages.insert_outbound({
            "dedup_key": f"fuzz:{n}", "kind": "test", "wa_id": "34600111222", "body": "hola",
            "status": "submitting", "external_id": None, "created_at": now, "updated_at": now}))
            for n in range(OUR_MESSAGES)], console
    finally:
        store.close()


# -- report -------------------------------------------------------------------------------------


def describe(wire: Wire) -> str:
    headers = {name: value.decode("latin-1")[:200] for name, value in wire.headers}
    chunked = ", chunked" if wire.chunked else ""
    return (f"{wire.method} {wire.path[:300]}\n      headers {headers}\n"
            f"      body ({len(wire.body)} bytes{chunked}) {wire.body[:200]!r}")


def server_exceptions(log_file: Path) -> Counter:
    """The exception line that ends each traceback in the server log."""
    lines = log_file.read_text(errors="replace").splitlines() if log_file.exists() else []
    found: Counter = Counter()
    in_traceback = False
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
        elif in_traceback and line and not line.startswith((" ", "\t")):
            found[line[:300]] += 1
            in_traceback = False
    return found


def print_report(outcomes: list[Outcome], generator: Generator, seconds: float, log_file: Path) -> None:
    statuses = Counter(str(o.status) if o.status is not None else "no answer" for o in outcomes)
    server_errors = [o for o in outcomes if o.status is not None and o.status >= 500]
    unanswered = [o for o in outcomes if o.status is None]
    oversized = {family: Counter(str(o.status) for o in outcomes if o.family == family)
                 for family in ("oversized", "oversized_chunked")}
    bare_4xx = Counter(o.status for o in outcomes
                       if o.status and 400 <= o.status < 500 and not o.json_error and o.family != "console")
    console = Counter(str(o.status) for o in outcomes if o.family == "console")
    families = Counter(o.family for o in outcomes)
    print(f"requests sent            {len(outcomes)}  (seed {generator.seed}; {dict(sorted(families.items()))})")
    print(f"by status                {dict(sorted(statuses.items()))}")
    print(f"5xx                      {len(server_errors)}  (must be 0)")
    print(f"no answer                {len(unanswered)}")
    print(f"requests/s               {len(outcomes) / seconds:.1f}  ({seconds:.1f} s)")
    print("oversized bodies -> 413  " + "; ".join(
        f"{label} {counts['413']} of {sum(counts.values())} {dict(counts)}"
        for label, counts in zip(("with Content-Length", "chunked"), oversized.values())))
    print("JSON bodies (right token)  " + "; ".join(
        f"{label} {dict(sorted(Counter(str(o.status) for o in outcomes if o.family == family).items()))}"
        for label, family in (("nested too deeply", "deep_json"), ("fields of any JSON type", "wrong_types"))))
    print(f"console pages            {dict(sorted(console.items()))} (HTML pages: 303 to the sign-in page "
          "without a session, 403 without the form's token)")
    print(f"4xx without a JSON error {sum(bare_4xx.values())}  {dict(bare_4xx)} (gunicorn's own refusals "
          "of malformed HTTP, or a HEAD)")
    for title, bad in (("5xx", server_errors), ("no answer", unanswered)):
        for outcome in bad[:REPRODUCERS]:
            print(f"  {title} #{outcome.index} ({outcome.status or outcome.error}): "
                  f"{describe(generator.request(outcome.index))}")
    if server_errors:
        print("exceptions in the server log:")
        for line, count in server_exceptions(log_file).most_common():
            print(f"  {count:>5} x {line}")


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop sending after this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8, help="connections sending at once")
    parser.add_argument("--replay", type=int, default=None, metavar="INDEX", help="send only request INDEX")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, data) and print its path")
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency) < 1 or args.max_seconds <= 0:
        parser.error("--requests, --concurrency and --max-seconds must be positive")

    run_local.interrupt_on_signals()
    scratch = Path(tempfile.mkdtemp(prefix="fuzz_http_"))
    database, gunicorn, fakes, stop = None, None, [], threading.Event()
    try:
        def note(text: str) -> None:
            print(text, file=sys.stderr, flush=True)

        mongo_port = free_port()
        mongodb_uri = database_uri(embedded_mongo.client_uri(mongo_port), f"fuzz_{secrets.token_hex(4)}")
        note(f"starting SecantusDB on 127.0.0.1:{mongo_port}")
        database = embedded_mongo.start(mongo_port, scratch / "mongo", scratch / "mongo.log")
        embedded_mongo.wait_until_up(mongodb_uri, database)
        auth_token, admin_token = secrets.token_hex(16), secrets.token_hex(16)
        our_ids, console = prepare_database(mongodb_uri, admin_token)
        twilio = FakeTwilio(ACCOUNT_SID, auth_token).start()
        graph, kapso, d360 = (FakeGraph(META_ACCESS_TOKEN, flavor=flavor).start()
                              for flavor in ("meta", "kapso", "360dialog"))
        fakes += [twilio, graph, kapso, d360]
        port = free_port()
        log_file = scratch / "gunicorn.log"
        note(f"starting gunicorn ({WEB_WORKERS} workers) on 127.0.0.1:{port}")
        env = app_env(mongodb_uri, scratch / "chroma", twilio.base_url, ACCOUNT_SID, auth_token, SENDER,
                      ADMIN_TOKEN=admin_token, BIND=f"127.0.0.1:{port}", PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                      RATE_LIMIT_ADMIN_PER_IP="1000000 per minute",
                      RATE_LIMIT_ADMIN_FAILURES_PER_IP="1000000 per minute", WORKER_STALE_SECONDS="3600",
                      META_APP_SECRET=META_APP_SECRET, META_VERIFY_TOKEN=META_VERIFY_TOKEN,
                      META_ACCESS_TOKEN=META_ACCESS_TOKEN, META_PHONE_NUMBER_ID=META_PHONE_NUMBER_ID,
                      META_GRAPH_API_BASE=graph.base_url, KAPSO_WEBHOOK_SECRET=CLOUD_API_SECRETS["kapso"],
                      KAPSO_API_KEY=META_ACCESS_TOKEN, KAPSO_PHONE_NUMBER_ID=META_PHONE_NUMBER_ID,
                      KAPSO_API_BASE=kapso.base_url + "/meta/whatsapp/v24.0",
                      D360_WEBHOOK_SECRET=CLOUD_API_SECRETS["360dialog"], D360_API_KEY=META_ACCESS_TOKEN,
                      D360_API_BASE=d360.base_url, CHATWOOT_BASE_URL="http://127.0.0.1:9", CHATWOOT_ACCOUNT_ID="1",
                      CHATWOOT_INBOX_ID="1", CHATWOOT_API_TOKEN="fuzz-chatwoot-token",
                      CHATWOOT_WEBHOOK_SECRET=CHATWOOT_SECRET)  # no worker runs: nothing is told to Chatwoot
        gunicorn = start_gunicorn(env, scratch, log_file, WEB_WORKERS, START_TIMEOUT_SECONDS)

        generator = Generator(args.seed, f"127.0.0.1:{port}", auth_token, admin_token, our_ids, console)
        indices = [args.replay] if args.replay is not None else list(range(args.requests))
        note(f"sending {len(indices)} requests over {args.concurrency} connections (at most {args.max_seconds:.0f} s)")
        started = time.monotonic()
        outcomes = run(generator, Sender(port), indices, args.concurrency, started + args.max_seconds, stop)
        seconds = max(time.monotonic() - started, 1e-3)
        time.sleep(0.5)  # the server log catches up
        print_report(outcomes, generator, seconds, log_file)
        if args.keep:
            print(f"logs and data kept in {scratch}")
        failed = any(o.status is None or o.status >= 500 for o in outcomes)
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        stop.set()
        run_local.ignore_signals()
        for process in (gunicorn, database):  # the app first: its workers close their database clients
            if process is not None:
                run_local.stop_all([process])
        for fake in fakes:
            fake.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
