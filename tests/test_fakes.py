"""The test doubles, exercised through the real twilio and openai SDKs."""

from __future__ import annotations

import json
import math
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList

from tests.fakes.fake_openai import EMBEDDING_DIMENSIONS, FakeOpenAI, fake_embedding
from tests.fakes.fake_twilio import CONTRACT_ERROR_CODE, FakeTwilio, load_spec

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token"
TO = "whatsapp:+34600111222"
FROM = "whatsapp:+14155238886"
OPENAI_KEY = "k"
TWILIO_API = "https://api.twilio.com"
CONTENT_API = "https://content.twilio.com"
REPO_ROOT = Path(__file__).resolve().parents[1]


class FakeTwilioHttpClient(TwilioHttpClient):
    """Sends the SDK's requests to the fake instead of api.twilio.com and content.twilio.com."""

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url
        self.responses: list[Response] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        for official in (TWILIO_API, CONTENT_API):
            if url.startswith(official):
                url = self.base_url + url[len(official):]
        response = super().request(method, url, *args, **kwargs)
        self.responses.append(response)
        return response


def twilio_client(
    fake: FakeTwilio, token: str = AUTH_TOKEN, timeout: float | None = None
) -> tuple[Client, FakeTwilioHttpClient]:
    http_client = FakeTwilioHttpClient(fake.base_url, timeout)
    return Client(ACCOUNT_SID, token, http_client=http_client), http_client


def send(client: Client, body: str = "hola", to: str = TO) -> Any:
    return client.messages.create(to=to, from_=FROM, body=body)


def post_form(fake: FakeTwilio, form: dict[str, str]) -> requests.Response:
    url = f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    return requests.post(url, data=form, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)


def openai_client(fake: FakeOpenAI, api_key: str = OPENAI_KEY, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.api_base, api_key=api_key, max_retries=0, **options)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.hypot(*a) * math.hypot(*b))


@pytest.fixture
def twilio_fake() -> Iterator[FakeTwilio]:
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    def echo(messages: list[dict[str, Any]]) -> str:
        return "echo: " + messages[-1]["content"]

    with FakeOpenAI(reply=echo, api_key=OPENAI_KEY) as fake:
        yield fake


# -- FakeTwilio ---------------------------------------------------------------


def test_sdk_sends_whatsapp_message(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake)

    message = send(client)

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert (message.status, message.to, message.from_) == ("queued", TO, FROM)
    assert message.body == "hola"
    expected = {"to": TO, "from_": FROM, "body": "hola", "sid": message.sid}
    assert twilio_fake.sent_messages() == [expected]
    [recorded] = twilio_fake.requests
    assert (recorded.method, recorded.auth_ok, recorded.status_returned) == ("POST", True, 201)
    assert recorded.form == {"To": [TO], "From": [FROM], "Body": ["hola"]}
    assert twilio_fake.contract_violations == []


def test_sdk_optional_parameters_fit_the_contract(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake)

    client.messages.create(
        to=TO,
        from_=FROM,
        body="hola",
        status_callback="https://example.com/twilio/status",
        validity_period=60,
        provide_feedback=True,
        send_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        media_url=["https://example.com/a.png", "https://example.com/b.png"],
    )

    assert twilio_fake.contract_violations == []
    form = twilio_fake.requests[0].form
    assert form["ValidityPeriod"] == ["60"] and form["ProvideFeedback"] == ["true"]
    assert len(form["MediaUrl"]) == 2


def test_resources_have_exactly_the_spec_properties(twilio_fake: FakeTwilio) -> None:
    client, http_client = twilio_client(twilio_fake)
    schemas = load_spec()["components"]["schemas"]

    send(client)
    message_json = http_client.responses[-1].text
    client.api.v2010.accounts(ACCOUNT_SID).fetch()
    account_json = http_client.responses[-1].text

    assert set(json.loads(message_json)) == set(schemas["api.v2010.account.message"]["properties"])
    assert set(json.loads(account_json)) == set(schemas["api.v2010.account"]["properties"])


def test_wrong_token_is_rejected_with_20003(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake, token="wrong-token")

    with pytest.raises(TwilioRestException) as caught:
        send(client)

    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert [r.auth_ok for r in twilio_fake.requests] == [False]
    assert twilio_fake.sent_messages() == []


def test_body_of_1600_chars_is_accepted(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake)

    assert send(client, body="x" * 1600).status == "queued"


def test_body_over_1600_chars_fails_with_21617(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake)

    with pytest.raises(TwilioRestException) as caught:
        send(client, body="x" * 1601)

    assert (caught.value.status, caught.value.code) == (400, 21617)
    assert twilio_fake.sent_messages() == []


def test_to_must_be_a_whatsapp_address(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake)

    with pytest.raises(TwilioRestException) as caught:
        send(client, to="+34600111222")

    assert (caught.value.status, caught.value.code) == (400, 21211)


def test_injected_429_exposes_retry_after_then_recovers(twilio_fake: FakeTwilio) -> None:
    client, http_client = twilio_client(twilio_fake)
    twilio_fake.fail_next(429, retry_after=7)

    with pytest.raises(TwilioRestException) as caught:
        send(client)

    assert (caught.value.status, caught.value.code) == (429, 20429)
    assert http_client.responses[-1].headers["Retry-After"] == "7"
    assert send(client).status == "queued"


def test_injected_faults_are_consumed_in_order(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake)
    twilio_fake.fail_next(500, times=2)
    twilio_fake.fail_next(400, code=63016)

    codes = []
    for _ in range(3):
        with pytest.raises(TwilioRestException) as caught:
            send(client)
        codes.append((caught.value.status, caught.value.code))

    assert codes == [(500, 20500), (500, 20500), (400, 63016)]
    assert "outside the allowed window" in caught.value.msg
    assert send(client).status == "queued"
    assert [r.status_returned for r in twilio_fake.requests] == [500, 500, 400, 201]


def test_sdk_fetches_account(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake)

    account = client.api.v2010.accounts(ACCOUNT_SID).fetch()

    assert (account.sid, account.status, account.type) == (ACCOUNT_SID, "active", "Full")
    assert [(r.method, r.auth_ok) for r in twilio_fake.requests] == [("GET", True)]
    assert twilio_fake.contract_violations == []


def test_account_fetch_checks_auth(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake, token="wrong-token")

    with pytest.raises(TwilioRestException) as caught:
        client.api.v2010.accounts(ACCOUNT_SID).fetch()

    assert caught.value.code == 20003


def test_unknown_form_parameter_is_a_contract_violation(twilio_fake: FakeTwilio) -> None:
    response = post_form(twilio_fake, {"To": TO, "From": FROM, "Body": "hola", "Foo": "bar"})

    assert response.status_code == 400
    assert response.json()["code"] == CONTRACT_ERROR_CODE
    assert "contract" in response.json()["message"]
    [violation] = twilio_fake.contract_violations
    assert "unknown parameter 'Foo'" in violation
    assert twilio_fake.sent_messages() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ValidityPeriod", "soon"),  # integer
        ("ProvideFeedback", "maybe"),  # boolean
        ("ContentRetention", "forever"),  # enum via $ref
        ("StatusCallback", "not a url"),  # format: uri
        ("SendAt", "tomorrow"),  # format: date-time
        ("MessagingServiceSid", "MG123"),  # pattern and length
    ],
)
def test_ill_typed_parameter_is_a_contract_violation(
    twilio_fake: FakeTwilio, name: str, value: str
) -> None:
    response = post_form(twilio_fake, {"To": TO, "From": FROM, "Body": "hola", name: value})

    assert response.json()["code"] == CONTRACT_ERROR_CODE
    [violation] = twilio_fake.contract_violations
    assert f"{name!r}={value!r}" in violation


def test_missing_required_to_is_a_contract_violation(twilio_fake: FakeTwilio) -> None:
    response = post_form(twilio_fake, {"From": FROM, "Body": "hola"})

    assert response.status_code == 400
    [violation] = twilio_fake.contract_violations
    assert "missing required parameter 'To'" in violation


def test_delay_times_out_client_without_blocking_server(twilio_fake: FakeTwilio) -> None:
    slow_client, _ = twilio_client(twilio_fake, timeout=0.2)
    fast_client, _ = twilio_client(twilio_fake)
    twilio_fake.delay_next(5)

    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        send(slow_client)
    assert time.monotonic() - started < 2
    assert send(fast_client).status == "queued"  # served while the delayed handler sleeps

    started = time.monotonic()
    twilio_fake.stop()
    assert time.monotonic() - started < 1


def test_concurrent_sends_are_all_recorded(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake)
    threads = [threading.Thread(target=send, args=(client, f"msg {i}")) for i in range(8)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    bodies = sorted(m["body"] for m in twilio_fake.sent_messages())
    assert bodies == sorted(f"msg {i}" for i in range(8))
    twilio_fake.clear()
    assert (twilio_fake.requests, twilio_fake.sent_messages()) == ([], [])


QUICK_REPLY = {"friendly_name": "offer", "language": "es", "variables": {"1": "¿Te ayudo?", "2": "yes"},
               "types": {"twilio/quick-reply": {"body": "{{1}}", "actions": [
                   {"type": "QUICK_REPLY", "title": "Sí", "id": "{{2}}"}]}}}


def create_content(client: Client, request: dict[str, Any] = QUICK_REPLY) -> Any:
    return client.content.v1.contents.create(ContentList.ContentCreateRequest(request))


def test_sdk_creates_a_content_and_a_message_by_it_reads_as_the_customer_sees_it(twilio_fake: FakeTwilio) -> None:
    client, http_client = twilio_client(twilio_fake)

    content = create_content(client)
    content_json = json.loads(http_client.responses[-1].text)
    client.messages.create(to=TO, from_=FROM, content_sid=content.sid,
                           content_variables=json.dumps({"1": "¿Algo más?", "2": "more"}))

    assert re.fullmatch(r"HX[0-9a-f]{32}", content.sid) and content.types == QUICK_REPLY["types"]
    schemas = json.loads((REPO_ROOT.parent / "shared/twilio/twilio_content_v1.json").read_text())["components"]
    assert set(content_json) == set(schemas["schemas"]["content.v1.content"]["properties"])
    assert twilio_fake.contents() == [content_json]
    (sent,) = twilio_fake.sent_messages()
    assert (sent["body"], sent["content_sid"]) == ("¿Algo más?", content.sid)
    assert twilio_fake.contract_violations == []


def test_a_content_request_outside_twilios_document_is_refused_and_recorded(twilio_fake: FakeTwilio) -> None:
    no_language = {name: value for name, value in QUICK_REPLY.items() if name != "language"}

    response = requests.post(twilio_fake.base_url + "/v1/Content", json=no_language, auth=(ACCOUNT_SID, AUTH_TOKEN),
                             timeout=5)

    assert (response.status_code, response.json()["code"]) == (400, CONTRACT_ERROR_CODE)
    [violation] = twilio_fake.contract_violations
    assert "POST /v1/Content" in violation and "'language' is a required property" in violation
    assert twilio_fake.contents() == []


def test_a_message_by_a_content_the_account_lacks_or_with_bad_variables_is_refused(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake)
    approved = twilio_fake.add_content(types={"twilio/text": {"body": "Hola {{1}}"}})

    codes = []
    for content_sid, variables in (("HX" + "0" * 32, {"1": "Ana"}), (approved, {"1": "Ana\nPérez"})):
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(to=TO, from_=FROM, content_sid=content_sid, content_variables=json.dumps(variables))
        codes.append(caught.value.code)
    client.messages.create(to=TO, from_=FROM, content_sid=approved, content_variables=json.dumps({"1": "Ana"}))

    assert codes == [21655, 21656]
    assert [m["body"] for m in twilio_fake.sent_messages()] == ["Hola Ana"]
    assert twilio_fake.contract_violations == []


def test_content_faults_are_apart_from_message_faults(twilio_fake: FakeTwilio) -> None:
    client, _ = twilio_client(twilio_fake)
    twilio_fake.fail_next(503, on="content")

    send(client)
    with pytest.raises(TwilioRestException) as caught:
        create_content(client)
    create_content(client)

    assert caught.value.status == 503
    assert [(r.path, r.status_returned) for r in twilio_fake.requests] == [
        (f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", 201), ("/v1/Content", 503), ("/v1/Content", 201)]
    assert len(twilio_fake.contents()) == 1


def test_command_line_entry_point_serves_until_sigterm() -> None:
    command = [sys.executable, "-m", "tests.fakes.fake_twilio", "--port", "0",
               "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        try:
            ready, _, _ = select.select([process.stdout], [], [], 10)
            assert ready, "the fake printed no base URL within 10 s"
            base_url = process.stdout.readline().strip()
            url = f"{base_url}/2010-04-01/Accounts/{ACCOUNT_SID}.json"
            response = requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
            assert response.json()["status"] == "active"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
        finally:
            if process.poll() is None:
                process.kill()


# -- FakeOpenAI ---------------------------------------------------------------


def test_sdk_chat_completion(openai_fake: FakeOpenAI) -> None:
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "hola"},
    ]
    with openai_client(openai_fake) as client:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content) == ("assistant", "echo: hola")
    assert choice.finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.usage.total_tokens > 0
    assert openai_fake.chat_requests() == [messages]


def test_fixed_reply_without_key_check() -> None:
    with FakeOpenAI(reply="fixed") as fake, openai_client(fake, api_key="anything") as client:
        completion = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "?"}]
        )

    assert completion.choices[0].message.content == "fixed"


def test_sdk_embeddings_default_base64_encoding(openai_fake: FakeOpenAI) -> None:
    texts = ["hola mundo", "adiós"]
    with openai_client(openai_fake) as client:
        response = client.embeddings.create(model="text-embedding-3-small", input=texts)

    vectors = [item.embedding for item in response.data]
    assert [len(v) for v in vectors] == [EMBEDDING_DIMENSIONS] * 2
    for text, vector in zip(texts, vectors):
        assert vector == pytest.approx(fake_embedding(text), abs=1e-6)
        assert math.hypot(*vector) == pytest.approx(1.0, abs=1e-5)
    assert openai_fake.embedding_requests() == [texts]
    assert openai_fake.requests[0]["encoding_format"] == "base64"


def test_sdk_embeddings_float_encoding_is_deterministic(openai_fake: FakeOpenAI) -> None:
    with openai_client(openai_fake) as client:
        first, second = (
            client.embeddings.create(model="m", input="hola", encoding_format="float")
            for _ in range(2)
        )

    assert first.data[0].embedding == second.data[0].embedding == fake_embedding("hola")


def test_fake_embeddings_rank_shared_words_closer() -> None:
    query = fake_embedding("how do I reset my password")

    related = cosine(query, fake_embedding("Password reset instructions"))
    unrelated = cosine(query, fake_embedding("Opening hours of the office"))

    assert related > unrelated


def test_wrong_api_key_is_rejected(openai_fake: FakeOpenAI) -> None:
    with openai_client(openai_fake, api_key="wrong") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.embeddings.create(model="m", input="hola")

    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_injected_errors_then_recovery(openai_fake: FakeOpenAI) -> None:
    openai_fake.fail_next(429, retry_after=3)
    openai_fake.fail_next(500)
    messages = [{"role": "user", "content": "hola"}]

    with openai_client(openai_fake) as client:
        with pytest.raises(openai.RateLimitError) as rate_limited:
            client.chat.completions.create(model="m", messages=messages)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=messages)
        completion = client.chat.completions.create(model="m", messages=messages)

    assert rate_limited.value.response.headers["retry-after"] == "3"
    assert completion.choices[0].message.content == "echo: hola"
    assert len(openai_fake.chat_requests()) == 3


def test_delay_times_out_openai_client(openai_fake: FakeOpenAI) -> None:
    openai_fake.delay_next(5)

    started = time.monotonic()
    with openai_client(openai_fake, timeout=0.2) as client:
        with pytest.raises(openai.APITimeoutError):
            client.embeddings.create(model="m", input="hola")
    assert time.monotonic() - started < 2

    started = time.monotonic()
    openai_fake.stop()
    assert time.monotonic() - started < 1
