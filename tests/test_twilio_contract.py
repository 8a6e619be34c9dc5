"""Contract check: the requests our real send path makes (format_reply -> TwilioChannel -> twilio SDK)
are valid against Twilio's own OpenAPI spec, served by Stoplight Prism, which validates every
request (a rejected one answers 422, which our sender turns into SendError) and answers with the
spec's fixed examples. Prism is installed into .prism/ by `make install` / `make test`.

What this does not check: behaviour (the mock ignores what is sent), Twilio's 1,600-character body
limit (the spec states it only in prose, so the part length is asserted here directly), and the
`phone-number` format of To/From (Prism does not enforce it)."""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import time
from urllib.parse import parse_qs

import pytest
import requests

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, ROOT, SENDER
from tests.processes import free_port
from webapp.config import load_settings
from webapp.channels import twilio
from webapp.channels.base import SendError, SendResult
from webapp.channels.twilio.outbound import TwilioChannel
from webapp.formatting import format_reply

SPEC = ROOT.parent / "shared" / "twilio" / "twilio_api_v2010.json"
PRISM = ROOT / ".prism" / "node_modules" / ".bin" / "prism"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
CUSTOMER = "whatsapp:+34600111222"
START_SECONDS = 60

LONG_ANSWER = "\n\n".join([
    "## Tarifas de fibra óptica 🚀",
    "Gracias por escribirnos, **Begoña**. Estas son nuestras tarifas actuales de *fibra simétrica*:",
    "- Fibra 300 Mb — 25 €/mes, sin permanencia 😊\n- Fibra 600 Mb — 32 €/mes, router Wi‑Fi 6 incluido\n"
    "- Fibra 1 Gb — 39 €/mes, con instalación gratuita ✅",
    "Más información en https://fibraclara.example/tarifas?plan=600&utm_source=whatsapp — ¡gracias! 💚<br>"
    "Atentamente, ~~Luis~~ **Ana** & el equipo de *Fibra Clara*",
    *[f"**Paso {n}.** Compruebe la cobertura en su dirección: la instalación la hace un técnico en "
      f"un plazo de {n + 2} días laborables; él le llamará el día anterior para confirmar la franja "
      f"horaria (mañana o tarde). Si el edificio aún no tiene fibra, la comunidad de vecinos debe "
      f"autorizar el tendido; nosotros nos ocupamos del trámite sin coste añadido. ¿Necesita ayuda? "
      f"Escríbanos «ayuda» 🙋‍♀️ y le atenderá una persona del equipo de atención al cliente."
      for n in range(1, 11)],
])
SHORT_ANSWER = "¡Hola! Nuestra tienda abre de *lunes a sábado*, de 9:00 a 20:30 h. 🕘"


@functools.cache
def _spec() -> dict:
    return json.loads(SPEC.read_text(encoding="utf-8"))


def _first_example(path: str, method: str, status: str) -> dict:
    examples = _spec()["paths"][path][method]["responses"][status]["content"]["application/json"]["examples"]
    return next(iter(examples.values()))["value"]  # Prism answers with the first example


@pytest.fixture(scope="module")
def prism(tmp_path_factory):
    """Prism mocking Twilio's 2010-04-01 API on a free loopback port; yields its base URL."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: install Node.js and npm, then `make install` (installs Prism)")
    if not SPEC.is_file():
        pytest.skip(f"Twilio's OpenAPI spec is missing: {SPEC}")
    if not PRISM.exists():
        pytest.fail(f"Prism is not installed ({PRISM} is missing): run `make install`", pytrace=False)
    port = free_port()
    log_path = tmp_path_factory.mktemp("prism") / "prism.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(PRISM), "mock", str(SPEC), "-h", "127.0.0.1", "-p", str(port), "-v", "warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, base_url, log_path)
        yield base_url
    finally:
        _stop(process)


def _wait_until_up(process: subprocess.Popen, base_url: str, log_path) -> None:
    deadline = time.monotonic() + START_SECONDS
    for _ in range(START_SECONDS * 5):  # one attempt per 0.2 s at most, never past the deadline
        if process.poll() is not None:
            pytest.fail(f"Prism exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            requests.get(base_url + "/", timeout=1)  # any answer (404 on /) means it is serving
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    pytest.fail(f"Prism did not answer within {START_SECONDS} s:\n{log_path.read_text(errors='replace')}")


def _stop(process: subprocess.Popen) -> None:
    """Stop Prism, then anything left in its process group (it was started in a group of its own)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=5)


def recording(sender: TwilioChannel) -> list[requests.Response]:
    """Every HTTP response the sender's SDK client receives, with the request that caused it."""
    seen: list[requests.Response] = []
    sender.client.http_client.request_hooks["response"].append(lambda response, **_: seen.append(response))
    return seen


def send_all(sender: TwilioChannel, parts: list[str], reference: str):
    """Send every part as the worker does (reference = our message id); fail on any rejection,
    showing Prism's validation report. Returns the results and the HTTP responses."""
    responses = recording(sender)
    results = []
    for index, part in enumerate(parts):
        try:
            results.append(sender.send_text("", CUSTOMER.removeprefix("whatsapp:+"), part, reference=f"{reference}-{index}"))
            continue
        except SendError as exc:
            error = f"HTTP {exc.http_status} {exc.message}"
        report = responses[-1].text if responses else ""
        pytest.fail(f"Prism rejected part {index + 1}/{len(parts)}: {error}\n{report}", pytrace=False)
    return results, responses


def sent_form(response: requests.Response) -> dict[str, str]:
    body = response.request.body
    form = parse_qs(body if isinstance(body, str) else body.decode("ascii"), strict_parsing=True)
    assert all(len(values) == 1 for values in form.values()), form
    return {name: values[0] for name, values in form.items()}


STATUS_URL = "https://bot.example.com/api/v1/whatsapp/status"


def twilio_settings(prism: str, **extra):
    settings = dict(twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, twilio_whatsapp_from=SENDER,
                    twilio_api_base=prism, twilio_timeout_seconds=10, public_base_url="https://bot.example.com")
    return load_settings(_env_file=None, **{**settings, **extra})


def assert_like_spec_example(result: SendResult) -> None:
    example = _first_example("/2010-04-01/Accounts/{AccountSid}/Messages.json", "post", "201")
    assert re.fullmatch(r"SM[0-9a-fA-F]{32}", result.external_id)
    assert (result.external_id, result.status) == (example["sid"], example["status"]) == ("SM" + "a" * 32, "queued")


def test_prism_really_validates(prism):
    """Negative controls, so the checks below cannot pass vacuously."""
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    missing_to = requests.post(prism + MESSAGES, data={"From": SENDER, "Body": "hola"}, auth=auth, timeout=10)
    assert missing_to.status_code == 422, missing_to.text
    assert any(v["code"] == "required" and "'To'" in v["message"] for v in missing_to.json()["validation"])

    no_auth = requests.post(prism + MESSAGES, data={"To": CUSTOMER, "From": SENDER, "Body": "hola"}, timeout=10)
    assert no_auth.status_code == 401

    ok = requests.post(prism + MESSAGES, data={"To": CUSTOMER, "From": SENDER, "Body": "hola"}, auth=auth, timeout=10)
    assert ok.status_code == 201, ok.text

    # Through our sender: a status callback that is not a URL is refused, and surfaces as SendError.
    sender = TwilioChannel(ACCOUNT_SID, AUTH_TOKEN, SENDER, prism, 10, status_callback="bot.example.com/status")
    with pytest.raises(SendError) as refused:
        sender.send_text("", CUSTOMER.removeprefix("whatsapp:+"), "hola", reference="r1")
    assert refused.value.http_status == 422
    assert not refused.value.retryable


def test_long_reply_every_part_is_accepted(prism):
    parts = format_reply(LONG_ANSWER, TwilioChannel.max_part_chars)
    assert len(LONG_ANSWER) > 4000 and len(parts) >= 2
    assert 3000 < sum(map(len, parts)) <= 4000 and all(len(part) <= 1600 for part in parts)
    assert "*Paso 1.*" in parts[0] and "€" in parts[0] and "🚀" in parts[0] and "\n" in parts[0]
    assert "https://fibraclara.example/tarifas?plan=600&utm_source=whatsapp" in parts[0]

    sender = twilio.channel(twilio_settings(prism))
    assert isinstance(sender, TwilioChannel)
    results, responses = send_all(sender, parts, reference="665f1c2e9b1d4a0012345678")

    assert len(results) == len(parts) == len(responses)
    for result in results:
        assert_like_spec_example(result)
    for index, (part, response) in enumerate(zip(parts, responses)):
        assert response.status_code == 201
        assert response.request.method == "POST" and response.request.url == prism + MESSAGES
        assert sent_form(response) == {"To": CUSTOMER, "From": SENDER, "Body": part,  # UTF-8 intact
                                       "StatusCallback": f"{STATUS_URL}?ref=665f1c2e9b1d4a0012345678-{index}"}


def test_short_reply_is_accepted(prism):
    (part,) = format_reply(SHORT_ANSWER, TwilioChannel.max_part_chars)
    sender = twilio.channel(twilio_settings(prism))

    (result,), responses = send_all(sender, [part], reference="665f1c2e9b1d4a0012345679")

    assert_like_spec_example(result)
    assert sent_form(responses[0]) == {"To": CUSTOMER, "From": SENDER, "Body": part,
                                       "StatusCallback": f"{STATUS_URL}?ref=665f1c2e9b1d4a0012345679-0"}


def test_reply_with_status_callback_is_accepted(prism):
    settings = twilio_settings(prism)
    sender = twilio.channel(settings)
    assert sender.status_callback == STATUS_URL
    parts = format_reply(LONG_ANSWER, TwilioChannel.max_part_chars)

    results, responses = send_all(sender, parts, reference="665f1c2e9b1d4a001234567a")

    assert len(results) == len(parts) == len(responses) >= 2
    for result in results:
        assert_like_spec_example(result)
    for index, response in enumerate(responses):
        form = sent_form(response)
        assert form["StatusCallback"] == f"{settings.status_callback_url}?ref=665f1c2e9b1d4a001234567a-{index}"
        assert form["Body"] == parts[index]


def test_check_credentials_fetches_the_account(prism):
    sender = twilio.channel(twilio_settings(prism))
    responses = recording(sender)
    example = _first_example("/2010-04-01/Accounts/{Sid}.json", "get", "200")

    assert sender.check() == {
        "status": "ok", "account": {"friendly_name": example["friendly_name"], "status": example["status"]}}
    (response,) = responses
    assert response.status_code == 200
    assert response.request.method == "GET"
    assert response.request.url == f"{prism}/2010-04-01/Accounts/{ACCOUNT_SID}.json"


def test_check_credentials_reports_a_refusal(prism):
    """A malformed account SID is refused by the spec's path pattern: reported, not raised."""
    sender = TwilioChannel("AC123", AUTH_TOKEN, SENDER, prism, 10)
    result = sender.check()
    assert result["status"] == "error" and result["message"] == "HTTP 422"
