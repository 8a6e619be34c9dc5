"""No input makes the app answer 5xx (issue 5): property-based tests over the form fields, query
strings, headers, paths, methods and raw bodies of every route: Twilio's, the ops routes, the admin
API and the health, metrics and OpenAPI routes.

Every answer must be below 500 and say what is wrong: a 4xx is JSON with an "error"; a 2xx is
TwiML (XML), JSON or empty. The database is up here, so even a 503 is a failure. Signed requests
are signed as Twilio signs them, so the fields reach the parsers behind the signature check.
scripts/fuzz_http.py sends the same families of requests, 10,000 at a time, through gunicorn.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from io import BytesIO
from urllib.parse import quote, urlencode

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.test import EnvironBuilder, TestResponse, run_wsgi_app
from werkzeug.wrappers import Request

from scripts.fuzz_http import ADMIN_API_ROUTES, CONSOLE_FIELDS, OTHER_ROUTES
from scripts.fuzz_http import CONSOLE_ROUTES as CONSOLE_PAGES
from tests.conftest import ADMIN_TOKEN, AUTH_TOKEN, SENDER, WEBHOOK, inbound_form
from webapp.request_body import MAX_REQUEST_BYTES
from webapp.config import WHATSAPP_ADDRESS

PREFIX = "/api/v1/whatsapp"
STATUS = PREFIX + "/status"
ADMIN_ROUTES = ["/test", "/diag", "/send-test"]
LOCAL = "http://localhost"  # where the test client sends, hence the URL signed without PUBLIC_BASE_URL
PUBLIC = "https://bot.example.com"
OURS = ObjectId("65a0f0000000000000000001")  # an outbound message of ours, for status reports to find
FORM = "application/x-www-form-urlencoded"
NO_ADMIN_LIMITS = {"rate_limit_admin_per_ip": "100000 per minute",
                   "rate_limit_admin_failures_per_ip": "100000 per minute"}


def fuzz(examples: int) -> hypothesis_settings:
    """Bounded: `examples` requests per property. The fixtures are built once per test and shared
    by its examples on purpose (one app, one database); no example database left in the repo."""
    return hypothesis_settings(max_examples=examples, deadline=None, database=None,
                               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def settings_overrides(settings_overrides, request):
    return dict(settings_overrides, **getattr(request, "param", {}))


@pytest.fixture(autouse=True)
def close_rate_limit_storage(app):
    """Close the limiter's MongoDB client while the database still runs: left to the garbage
    collector at exit, each one waits out server selection against the stopped server (30 s)."""
    yield
    app.extensions["whatsapp_assistant"].limiter.storage.storage.close()


@pytest.fixture
def ours(store) -> ObjectId:
    """An outbound message waiting for Twilio's reports (no SID yet, so any SID matches it once)."""
    now = datetime.now(timezone.utc)
    store.messages.insert_outbound({"_id": OURS, "dedup_key": "fuzz:ours", "kind": "test", "wa_id": "34600111222",
                                    "body": "hola", "status": "submitting", "external_id": None,
                                    "created_at": now, "updated_at": now})
    return OURS


# -- strategies ---------------------------------------------------------------------------------

# What a form can carry: control characters and NUL, any plane. No lone surrogates: a form is
# UTF-8 on the wire (the app decodes what is not with U+FFFD).
any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
# JSON can carry lone surrogates ("\ud800"), so the JSON bodies of send-test get them too.
surrogate_text = st.text(st.characters(categories=["Cs"]) | st.characters(exclude_categories=["Cs"]), max_size=20)
# Long, but the whole form stays under MAX_REQUEST_BYTES (12 bytes for "😀" percent-encoded).
long_text = st.one_of(
    st.builds(lambda char, n: char * n, st.sampled_from(["a", "ñ", "€", "😀", "\x00", " ", "\u202e", "%"]),
              st.integers(1_000, 4_500)),
    st.sampled_from([1_600, 1_601, 4_096, 4_097]).map(lambda n: "a" * n),
)
numbers = st.one_of(
    st.integers(-3, 15).map(str),
    st.sampled_from(["", " 2 ", "1_0", "٣", "²", "1e3", "0x5", "-0", "9" * 30, "9" * 5_000]),
)
field_values = st.one_of(any_text, numbers, long_text)
field_names = st.one_of(
    st.sampled_from(["Body", "From", "MessageSid", "NumMedia", "MediaUrl0", "MediaUrl9", "MediaUrl10",
                     "MediaContentType0", "ButtonText", "ProfileName", "MessageStatus", "ErrorCode", "WaId", "ref",
                     ""]),
    any_text,
)
whatsapp_addresses = st.one_of(
    st.sampled_from(["whatsapp:+34600111222", "whatsapp:+34600111333", SENDER]),
    st.from_regex(WHATSAPP_ADDRESS),  # \d: other scripts' digits too
    any_text,
)
message_sids = st.one_of(st.from_regex(r"SM[0-9a-f]{32}", fullmatch=True),
                         st.from_regex(r"[A-Z]{2}[0-9a-fA-F]{32}\n?", fullmatch=True), any_text)
bodies = st.one_of(st.sampled_from(["hola", "cuánto cuesta la fibra?", ""]), any_text, long_text)
# The header value as a server hands it over: latin-1 text without line breaks.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF) | st.just("\t"), max_size=60)
# 'right' signs as Twilio does; the other words sign wrongly; anything else is sent as the header.
signings = st.one_of(st.just("right"), st.just("right"), st.sampled_from(["none", "wrong token", "other url"]),
                     header_text)
methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"]),
                    st.from_regex(r"[A-Z]{1,12}", fullmatch=True))


@st.composite
def mutated(draw, base: dict[str, str], values: dict[str, st.SearchStrategy] | None = None) -> MultiDict:
    """`base` with each field kept, dropped, replaced or sent twice, unknown fields added, in any order."""
    values = values or {}
    pairs = []
    for name, value in base.items():
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "replace", "twice"]))
        if action == "keep":
            pairs.append((name, value))
        elif action == "replace":
            pairs.append((name, draw(values.get(name, field_values))))
        elif action == "twice":
            pairs += [(name, value), (name, draw(values.get(name, field_values)))]
    pairs += draw(st.lists(st.tuples(field_names, field_values), max_size=4))
    return MultiDict(draw(st.permutations(pairs)))


@st.composite
def webhook_forms(draw) -> MultiDict:
    sid = draw(message_sids)
    base = inbound_form(draw(bodies), draw(whatsapp_addresses), MessageSid=sid, SmsMessageSid=sid, SmsSid=sid)
    media_count = draw(st.integers(0, 12))
    base["NumMedia"] = draw(st.one_of(st.just(str(media_count)), numbers))
    for i in range(media_count):
        base[f"MediaUrl{i}"] = draw(st.one_of(st.just(f"https://api.twilio.com/media/{i}"), any_text))
        base[f"MediaContentType{i}"] = draw(st.one_of(st.just("image/jpeg"), any_text))
    return draw(mutated(base, {"From": whatsapp_addresses, "MessageSid": message_sids, "Body": bodies,
                               "NumMedia": numbers}))


refs = st.one_of(st.just(str(OURS)), st.just(str(OURS)), st.from_regex(r"[0-9a-f]{24}", fullmatch=True), any_text)
status_queries = st.one_of(
    refs.map(lambda ref: urlencode({"ref": ref})),
    st.lists(st.tuples(st.sampled_from(["ref", "REF", "", "x"]) | any_text, refs), max_size=3).map(urlencode),
    st.text(st.sampled_from(list("ref=&%0123456789abcdefzZ+;/ ñ\x00")), max_size=40),  # raw, half-encoded
)
error_codes = st.one_of(st.integers(0, 99_999).map(str), numbers, any_text, st.just(""))


@st.composite
def status_forms(draw) -> MultiDict:
    sid = draw(message_sids)
    base = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": draw(st.sampled_from(
        ["queued", "sent", "delivered", "read", "undelivered", "failed", "dry_run", "x" * 33])),
        "ErrorCode": draw(error_codes), "AccountSid": "AC" + "1" * 32, "To": "whatsapp:+34600111222",
        "From": SENDER, "ApiVersion": "2010-04-01"}
    return draw(mutated(base, {"MessageSid": message_sids, "ErrorCode": error_codes,
                               "MessageStatus": st.from_regex(r"[a-z_]{1,32}", fullmatch=True) | any_text}))


authorizations = st.one_of(
    st.sampled_from([f"Bearer {ADMIN_TOKEN}", f"bearer  {ADMIN_TOKEN}\t", f"Bearer {ADMIN_TOKEN}x", "Bearer ",
                     "Bearer", ADMIN_TOKEN, f"Basic {ADMIN_TOKEN}", "none"]),
    header_text,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | surrogate_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(surrogate_text, inner, max_size=3),
    max_leaves=8,
)
send_test_fields = st.fixed_dictionaries({
    "to": st.one_of(st.just("whatsapp:+34600111222"), whatsapp_addresses, json_values),
    "text": st.one_of(st.just("prueba"), bodies, surrogate_text, json_values),
})
send_test_queries = send_test_fields.map(lambda fields: urlencode({k: str(v) for k, v in fields.items()},
                                                                  errors="surrogatepass"))


@st.composite
def admin_bodies(draw) -> tuple[str, bytes]:
    """(content type, body): a form, JSON of any shape, or raw bytes."""
    kind = draw(st.sampled_from(["none", "form", "json", "json", "raw"]))
    if kind == "form":
        fields = draw(send_test_fields)
        return FORM, urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()},
                               errors="surrogatepass").encode()
    if kind == "json":
        return "application/json", json.dumps(draw(send_test_fields | json_values)).encode()
    if kind == "raw":
        return draw(content_types), draw(raw_bodies)
    return "", b""


raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"\xff\xfe\xfd", b"Body=\xc3\x28", b"Body=%ED%A0%80", b"Body=%zz%f%", b"%", b"=&=&&==",
                     b"Body=%00%01&From=whatsapp:%2B34600111222", b"\x00" * 64, b"--x\r\n\r\n--x--"]),
    st.text(st.sampled_from(list("Body=From&MessageSid%0123456789abcdefXYZ+;\x00ñ")), max_size=80).map(
        lambda text: text.encode("utf-8")),
)
content_types = st.sampled_from([
    FORM, FORM + "; charset=latin-1", FORM + "; charset=utf-16", "multipart/form-data",
    "multipart/form-data; boundary=x", 'multipart/form-data; boundary="', "application/json", "text/plain", "",
    "application/x-www-form-urlencoded; boundary=x; charset=", "x/y; a=b; a=c",
])
paths = st.one_of(
    st.sampled_from(["/webhook", "/status", "/test", "/diag", "/send-test", "", "/", "/webhook/", "//webhook",
                     "/status/../webhook", "/WEBHOOK", "/webhook;x", "/webhook%00", "/%ff", "/send-test%2F"]),
    st.lists(st.sampled_from(list("abcdehikostw-_./%~;,=+@:") + ["%00", "%ff", "%2F", "..", "webhook", "ñ", "😀"]),
             max_size=20).map(lambda parts: "/" + "".join(parts)),
)
extra_headers = st.dictionaries(
    st.one_of(st.sampled_from(["Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port",
                               "X-Forwarded-Prefix", "Authorization", "X-Twilio-Webhooks-Signature-Settings",
                               "Accept", "Cookie", "Transfer-Encoding", "Expect"]),
              st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True).filter(
                  lambda name: name.lower() not in ("content-type", "content-length"))),
    st.one_of(header_text, st.sampled_from(["xn--", "xn--a.com", "a" * 64 + ".com", "localhost:0", "localhost:99999",
                                            "[::1]", "[", "https", "gopher", "1.2.3.4, 5.6.7.8", "/a%2Fb"])),
    max_size=4,
)


# -- checks -------------------------------------------------------------------------------------


def twilio_signature(signing: str, url: str, form) -> dict[str, str]:
    """The X-Twilio-Signature header for `signing` (see `signings`)."""
    if signing == "none":
        return {}
    if signing == "right":
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    elif signing == "wrong token":
        signature = RequestValidator("not-" + AUTH_TOKEN).compute_signature(url, form)
    elif signing == "other url":
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url + "/other", form)
    else:
        signature = signing
    return {"X-Twilio-Signature": signature}


def as_parsed(path: str, method: str = "POST", query: str = "", **body):
    """The request as werkzeug, hence the app, will parse it: its query string bytes and its form."""
    request = EnvironBuilder(path, method=method, query_string=query, **body).get_request()
    try:
        return request.query_string, request.form
    except HTTPException:  # the app refuses it too, before the signature matters
        return request.query_string, MultiDict()


def sent_bytes(response) -> int:
    return int(response.request.environ.get("CONTENT_LENGTH") or 0)


def assert_clear_answer(response) -> None:
    """Below 500, and an answer a client can act on."""
    request = response.request
    seen = (f"{request.method} {request.full_path} ({sent_bytes(response)} bytes) -> {response.status_code} "
            f"{response.get_data()[:300]!r}")
    assert response.status_code < 500, seen
    if 300 <= response.status_code < 400:
        assert response.headers.get("Location"), seen
    elif response.status_code >= 400:
        assert response.is_json, seen
        if request.method != "HEAD":
            assert response.get_json().get("error"), seen
    elif response.status_code != 204 and request.method not in ("HEAD", "OPTIONS"):
        # text: /metrics; CSV: leads.csv
        assert response.mimetype in ("application/json", "application/xml", "text/plain", "text/csv"), seen
        assert response.get_data(), seen


# -- (a) the webhook ----------------------------------------------------------------------------


@fuzz(150)
@given(form=webhook_forms(), signing=signings)
@example(form=MultiDict(inbound_form("hola", MessageSid="SM" + "a" * 32, NumMedia="9" * 5_000)), signing="right")
@example(form=MultiDict(inbound_form("", MessageSid="SM" + "b" * 32, NumMedia="٣")), signing="right")
def test_webhook_fields_never_cause_a_5xx(client, form, signing):
    response = client.post(WEBHOOK, data=form, headers=twilio_signature(signing, LOCAL + WEBHOOK, form))

    assert_clear_answer(response)
    if sent_bytes(response) > MAX_REQUEST_BYTES:
        assert response.status_code == 413


@pytest.mark.parametrize("settings_overrides", [{}, {"trusted_proxy_hops": 1}], indirect=True,
                         ids=["direct", "behind a proxy"])
@fuzz(60)
@given(route=st.sampled_from([WEBHOOK, STATUS]), form=webhook_forms(), headers=extra_headers, signing=signings)
@example(route=WEBHOOK, form=MultiDict({"Body": "hola"}), headers={"Host": "xn--"}, signing="bad")
def test_headers_never_cause_a_5xx(app, route, form, headers, signing):
    """Host and X-Forwarded-* make the URL the signature is checked against (no PUBLIC_BASE_URL).
    Straight to the WSGI app: Flask's test client itself fails on a Host such as `xn--`."""
    environ = EnvironBuilder(route, method="POST", data=form,
                             headers={**twilio_signature(signing, LOCAL + route, form), **headers}).get_environ()
    response = TestResponse(*run_wsgi_app(app, environ, buffered=True), request=Request(environ))

    assert_clear_answer(response)


# -- (b) the status callback --------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"public_base_url": PUBLIC}], indirect=True)
@fuzz(120)
@given(query=status_queries, form=status_forms(), signing=signings)
@example(query=f"ref={OURS}", form=MultiDict({"MessageSid": "SM" + "c" * 32, "MessageStatus": "failed",
                                              "ErrorCode": "²"}), signing="right")
@example(query=f"ref={OURS}", form=MultiDict({"MessageSid": "SM" + "c" * 32, "MessageStatus": "failed",
                                              "ErrorCode": "9" * 5_000}), signing="right")
@example(query=f"ref={OURS}", form=MultiDict({"MessageSid": "SM" + "c" * 32, "MessageStatus": "failed",
                                              "ErrorCode": "9" * 30}), signing="right")
def test_status_callback_fields_never_cause_a_5xx(client, ours, query, form, signing):
    query_bytes, _ = as_parsed(STATUS, query=query)
    signed_url = PUBLIC + STATUS + (f"?{query_bytes.decode('latin-1')}" if query_bytes else "")
    response = client.post(STATUS, query_string=query, data=form, headers=twilio_signature(signing, signed_url, form))

    assert_clear_answer(response)


# -- (c) the admin routes -----------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [NO_ADMIN_LIMITS], indirect=True)
@fuzz(100)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]), route=st.sampled_from(ADMIN_ROUTES),
       authorization=authorizations, query=st.one_of(st.just(""), status_queries, send_test_queries),
       body=admin_bodies())
def test_admin_routes_never_answer_5xx(client, fake_twilio, method, route, authorization, query, body):
    content_type, data = body
    headers = {} if authorization == "none" else {"Authorization": authorization}
    response = client.open(PREFIX + route, method=method, query_string=query, data=data,
                           content_type=content_type or None, headers=headers)

    assert_clear_answer(response)


@pytest.mark.parametrize("settings_overrides", [NO_ADMIN_LIMITS], indirect=True)
@fuzz(120)
@given(method=st.sampled_from(["GET", "POST"]), query=st.one_of(st.just(""), send_test_queries), body=admin_bodies())
@example(method="POST", query="", body=("application/json", b"[1]"))
@example(method="POST", query="", body=("application/json", b'{"to": "whatsapp:+34600111222", "text": "a\\ud800"}'))
def test_send_test_input_never_causes_a_5xx(client, fake_twilio, method, query, body):
    """With the right token: what send-test makes of its query, form or JSON (sent to the fake Twilio
    when valid, which answers at once)."""
    content_type, data = body
    response = client.open(PREFIX + "/send-test", method=method, query_string=query, data=data,
                           content_type=content_type or None, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    assert_clear_answer(response)
    if response.status_code == 200:
        assert response.get_json()["twilio"]["ok"] is True


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxy_hops": 1}], indirect=True)
@fuzz(60)
@given(route=st.sampled_from(ADMIN_ROUTES), authorization=authorizations,
       client_address=st.one_of(st.sampled_from(["192.0.2.1", "192.0.2.2"]), st.ip_addresses().map(str), header_text))
def test_admin_lockout_and_limits_never_answer_5xx(client, fake_twilio, route, authorization, client_address):
    """The default per-address limits: wrong tokens soon lock an address out (429)."""
    headers = {"X-Forwarded-For": client_address}
    if authorization != "none":
        headers["Authorization"] = authorization
    response = client.get(PREFIX + route, headers=headers)

    assert_clear_answer(response)
    if response.status_code == 429:
        assert int(response.headers["Retry-After"]) >= 1


# -- (c2) the admin API and the routes outside /api/v1/whatsapp/ ----------------------------------

path_segments = st.one_of(
    st.from_regex(r"[0-9a-f]{32}", fullmatch=True), st.from_regex(r"[0-9a-f]{24}", fullmatch=True), st.just(str(OURS)),
    st.sampled_from(["34600111222", "whatsapp:+34600111222", "+34600111222", "٣٤٦٠٠١١١٢٢٢", "0" * 16, "..", "%00"]),
    any_text.filter(bool).map(lambda text: quote(text, safe="")),
)
admin_api_queries = st.one_of(
    st.lists(st.tuples(st.sampled_from(["status", "page", "per_page", "x", ""]),
                       st.one_of(st.sampled_from(["open", "closed", "lost", "OPEN"]), numbers, any_text)),
             max_size=4).map(urlencode),
    status_queries,
)


@pytest.fixture
def ready_worker(store):
    """A worker's heartbeat, so /readyz answers 200 here too (a 503 would be a failure)."""
    store.heartbeats.beat("fuzz-worker", datetime.now(timezone.utc), 100)


@pytest.mark.parametrize("settings_overrides", [dict(NO_ADMIN_LIMITS, worker_stale_seconds=3600)], indirect=True)
@fuzz(150)
@given(method=st.sampled_from(["GET", "GET", "POST", "DELETE", "PUT", "HEAD", "OPTIONS"]),
       route=st.sampled_from(ADMIN_API_ROUTES + OTHER_ROUTES), segment=path_segments, query=admin_api_queries,
       authorization=authorizations, body=admin_bodies())
@example(method="POST", route=PREFIX + "/messages/{}/resend", segment=str(OURS), query="",
         authorization=f"Bearer {ADMIN_TOKEN}", body=("", b""))
def test_admin_api_and_other_routes_never_answer_5xx(client, ours, ready_worker, method, route, segment, query,
                                                     authorization, body):
    headers = {} if authorization == "none" else {"Authorization": authorization}
    content_type, data = body
    response = client.open(route.format(segment), method=method, query_string=query, headers=headers, data=data,
                           content_type=content_type or None)

    assert_clear_answer(response)


# -- (d) any path, any method -------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [NO_ADMIN_LIMITS], indirect=True)
@fuzz(120)
@given(method=methods, path=paths, form=st.one_of(st.none(), webhook_forms()), signing=signings,
       admin=st.booleans())
def test_any_path_and_method_never_answer_5xx(client, fake_twilio, method, path, form, signing, admin):
    headers = twilio_signature(signing, LOCAL + PREFIX + path, form or {})
    if admin:
        headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    response = client.open(PREFIX + path, method=method, data=form, headers=headers)

    assert_clear_answer(response)


# -- (d') the console's pages, signed in, with and without the forms' token -------------------------

CONSOLE_ROUTES = [(method, route) for method, route in CONSOLE_PAGES if "sign-out" not in route]  # keep the session
console_fields = st.dictionaries(st.one_of(st.sampled_from(CONSOLE_FIELDS), any_text), field_values, max_size=6)


@pytest.fixture
def signed_in_client(client):
    """The test client with a console session (the sign-in form posted as a browser posts it)."""
    form = client.get("/console/sign-in").get_data(as_text=True)
    csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/console/sign-in", data={"csrf_token": csrf, "token": ADMIN_TOKEN}).status_code == 303
    page = client.get("/console/settings").get_data(as_text=True)
    return client, page.split('name="csrf_token" value="')[1].split('"')[0]


@pytest.mark.parametrize("settings_overrides", [NO_ADMIN_LIMITS], indirect=True)
@fuzz(150)
@example(route=("GET", "/console/conversations/{}"), method="HEAD", segment=str(OURS), query="", fields={}, csrf="right")
@given(route=st.sampled_from(CONSOLE_ROUTES), method=st.one_of(st.just(None), methods), segment=path_segments,
       query=st.dictionaries(st.sampled_from(CONSOLE_FIELDS), field_values, max_size=3).map(urlencode),
       fields=console_fields, csrf=st.sampled_from(["right", "right", "none", "wrong"]))
def test_console_pages_never_answer_5xx(signed_in_client, route, method, segment, query, fields, csrf):
    client, token = signed_in_client
    form = dict(fields, **({"csrf_token": token} if csrf == "right" else {"csrf_token": "x"} if csrf == "wrong" else {}))
    response = client.open(route[1].format(segment), method=method or route[0], query_string=query, data=form)

    assert response.status_code < 500, (route, response.status_code, response.get_data()[:300])
    if response.status_code >= 400 and response.mimetype == "text/html":  # a console page says what is wrong
        assert response.request.method == "HEAD" or 'role="alert"' in response.get_data(as_text=True)
    elif response.status_code >= 400:
        assert_clear_answer(response)


# -- (e) raw bodies: invalid UTF-8, invalid percent-encoding, any content type; oversized ---------


@pytest.mark.parametrize("settings_overrides", [NO_ADMIN_LIMITS], indirect=True)
@fuzz(120)
@given(route=st.sampled_from([WEBHOOK, STATUS, PREFIX + "/send-test"]), content_type=content_types,
       body=raw_bodies, signing=signings)
@example(route=WEBHOOK, content_type=FORM, body=b"Body=%ED%A0%80&From=whatsapp:%2B34600111222", signing="right")
def test_raw_bodies_never_cause_a_5xx(client, fake_twilio, route, content_type, body, signing):
    _, form = as_parsed(route, data=body, content_type=content_type)
    headers = {**twilio_signature(signing, LOCAL + route, form), "Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = client.post(route, data=body, content_type=content_type, headers=headers)

    assert_clear_answer(response)


@pytest.mark.parametrize("settings_overrides", [NO_ADMIN_LIMITS], indirect=True)
@fuzz(25)
@given(route=st.sampled_from([WEBHOOK, STATUS, PREFIX + "/send-test"]),
       content_type=st.sampled_from([FORM, "multipart/form-data; boundary=x"]),
       size=st.integers(MAX_REQUEST_BYTES + 1, 4 * MAX_REQUEST_BYTES),
       filler=st.sampled_from([b"a", b"%", b"\xff", b"Body=x&"]),
       signing=signings)
def test_oversized_bodies_are_refused_with_413(client, route, content_type, size, filler, signing):
    """Every route that reads the body refuses one over MAX_REQUEST_BYTES, signed or not."""
    body = (filler * size)[:size]
    headers = {**twilio_signature(signing, LOCAL + route, {}), "Authorization": f"Bearer {ADMIN_TOKEN}"}
    if route.endswith("/send-test") and content_type != FORM:
        content_type = "application/json"
    response = client.post(route, data=body, content_type=content_type, headers=headers)

    assert_clear_answer(response)
    assert response.status_code == 413


@pytest.mark.parametrize("settings_overrides", [NO_ADMIN_LIMITS], indirect=True)
@pytest.mark.parametrize("route", [WEBHOOK, STATUS, PREFIX + "/send-test"])
@pytest.mark.parametrize("size", [MAX_REQUEST_BYTES + 1, 4 * MAX_REQUEST_BYTES])
def test_oversized_chunked_bodies_are_refused_with_413(client, route, size):
    """The same without a Content-Length, as gunicorn hands on a chunked body (wsgi.input_terminated):
    nothing past the cap may be read, nor what came before it parsed as if it were the whole form."""
    response = client.post(route, input_stream=BytesIO((b"Body=x&" * size)[:size]), content_type=FORM,
                           headers={"Transfer-Encoding": "chunked", "Authorization": f"Bearer {ADMIN_TOKEN}"},
                           environ_overrides={"wsgi.input_terminated": True})

    assert_clear_answer(response)
    assert response.status_code == 413


def test_a_chunked_webhook_under_the_cap_is_read_whole_and_stored(client, store):
    """A chunked body within the cap is read to its end, so its signature still matches."""
    form = inbound_form("hola, " + "ñ" * 3_000, MessageSid="SM" + "d" * 32)
    body = urlencode(form).encode()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(LOCAL + WEBHOOK, form)
    response = client.post(WEBHOOK, input_stream=BytesIO(body), content_type=FORM,
                           headers={"Transfer-Encoding": "chunked", "X-Twilio-Signature": signature},
                           environ_overrides={"wsgi.input_terminated": True})

    assert response.status_code == 200, response.get_data()
    assert store.messages.collection.find_one({"external_id": "SM" + "d" * 32})["body"] == form["Body"]


# -- (e) Meta's webhook: any JSON anywhere in a signed delivery --------------------------------------


def delivery_paths(value, path=()) -> list[tuple]:
    """Every place in a delivery a value sits."""
    found = [path]
    if isinstance(value, dict):
        found += [p for key, item in value.items() for p in delivery_paths(item, path + (key,))]
    elif isinstance(value, list):
        found += [p for index, item in enumerate(value) for p in delivery_paths(item, path + (index,))]
    return found


def replaced(value, path: tuple, new):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


@pytest.fixture
def meta_app(settings_overrides, fake_graph):
    """The app serving Meta's webhook too, built once for all of a property's examples."""
    from tests.conftest import meta_overrides
    from webapp import create_app
    from webapp.config import load_settings

    app = create_app(load_settings(**meta_overrides(settings_overrides, fake_graph)))
    yield app
    services = app.extensions["whatsapp_assistant"]
    services.store.client.drop_database(services.store.db.name)
    services.close()


@fuzz(200)
@given(data=st.data(), new=json_values)
def test_any_json_anywhere_in_a_signed_meta_delivery_never_causes_a_5xx(meta_app, data, new):
    from scripts.chat import meta_delivery
    from tests.conftest import META_PHONE_NUMBER_ID, meta_post

    delivery = meta_delivery("34600111222", META_PHONE_NUMBER_ID, {"type": "text", "text": {"body": "hola"}})
    delivery["entry"][0]["changes"][0]["value"]["statuses"] = [{"id": "wamid.x", "status": "read", "errors": []}]
    path = data.draw(st.sampled_from(delivery_paths(delivery)))
    response = meta_post(meta_app.test_client(), replaced(delivery, path, new))

    assert response.status_code in (200, 400), (path, new, response.get_data(as_text=True)[:300])
    assert response.is_json


@pytest.fixture
def kapso_app(settings_overrides):
    from webapp import create_app
    from webapp.config import load_settings

    app = create_app(load_settings(**dict(settings_overrides, kapso_webhook_secret="fuzz-kapso-secret")))
    yield app
    services = app.extensions["whatsapp_assistant"]
    services.store.client.drop_database(services.store.db.name)
    services.close()


@fuzz(150)
@given(data=st.data(), new=json_values, batch=st.booleans())
def test_any_json_anywhere_in_a_signed_kapso_event_never_causes_a_5xx(kapso_app, data, new, batch):
    from scripts.chat import kapso_event, kapso_signature

    event = kapso_event("34600111222", "106540352242922", "hola")
    payload = {"type": "whatsapp.message.received", "batch": True, "data": [event, event]} if batch else event
    path = data.draw(st.sampled_from(delivery_paths(payload)))
    body = json.dumps(replaced(payload, path, new)).encode()
    response = kapso_app.test_client().post("/api/v1/kapso/webhook", data=body, content_type="application/json",
                                            headers={"X-Webhook-Signature": kapso_signature("fuzz-kapso-secret", body),
                                                     "X-Webhook-Event": "whatsapp.message.received"})

    assert response.status_code in (200, 400), (path, new, response.get_data(as_text=True)[:300])
    assert response.is_json
