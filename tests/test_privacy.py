"""What reaches the logs: never a full phone number, a secret, or (at INFO) a message's text.
Checked on everything logged during whole conversations, in-process at DEBUG with the LLM path,
and through gunicorn and the worker process with the production log and access-log formats."""
from __future__ import annotations

import logging

import pytest
import requests

from tests.conftest import ADMIN_TOKEN, AUTH_TOKEN, inbound_form, post_signed, signed_post, stop, wait_for_sent
from tests.fakes.fake_openai import FakeOpenAI
from tests.processes import json_lines

OPS = "/api/v1/whatsapp"
OPENAI_KEY = "sk-test-0123456789abcdefghij"
CUSTOMER = "whatsapp:+34600111222"
NUMBERS = ["34600111222", "600111222", "34600999888", "600999888"]
SECRETS = [AUTH_TOKEN, ADMIN_TOKEN, OPENAI_KEY]
QUESTION = "soy Ana Pérez, DNI 12345678Z, cuánto cuesta la fibra de 600?"
REPLY = "La fibra de 600 Mb cuesta 32 € al mes."
PRIVATE_TEXT = ["12345678Z", "Ana Pérez", "cuánto cuesta", "32 € al mes", "prueba privada"]


@pytest.fixture
def fake_openai():
    with FakeOpenAI(reply=REPLY, api_key=OPENAI_KEY) as server:
        yield server


@pytest.fixture
def settings_overrides(settings_overrides, fake_openai):
    return dict(settings_overrides, openai_api_key=OPENAI_KEY, openai_base_url=fake_openai.api_base,
                openai_model="gpt-test", openai_timeout_seconds=3, log_level="DEBUG")


def assert_private(logged: str, info_and_above: str) -> None:
    for secret in SECRETS:
        assert secret not in logged, "a secret was logged"
    for number in NUMBERS:
        assert number not in logged, f"a phone number was logged in clear: {number}"
    for text in PRIVATE_TEXT:
        assert text not in info_and_above, f"message text logged at INFO or above: {text!r}"


def test_a_whole_conversation_logs_no_number_secret_or_text_even_at_debug(client, worker, fake_twilio, caplog):
    caplog.set_level(logging.DEBUG)
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    signed_post(client, inbound_form(QUESTION, sender=CUSTOMER, ProfileName="Ana Pérez"))
    worker.run_until_idle()
    signed_post(client, inbound_form("y la instalación?", sender=CUSTOMER))
    worker.run_until_idle()
    client.get(OPS + "/diag", headers=bearer)
    client.post(OPS + "/send-test", headers=bearer, data={"to": "whatsapp:+34600999888", "text": "prueba privada"})
    client.get(OPS + "/diag", headers={"Authorization": f"Bearer {AUTH_TOKEN}"})  # a secret as a wrong token

    assert len(fake_twilio.sent_messages()) == 3
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert_private(logged, "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO))
    assert "+34*****1222" in logged  # masked, still useful to support staff


@pytest.mark.parametrize("gunicorn_server", [{"LOG_LEVEL": "INFO"}], indirect=True)
def test_gunicorn_and_worker_output_hold_no_number_secret_or_text(gunicorn_server, worker_process, fake_twilio):
    base_url = gunicorn_server["base_url"]
    post_signed(base_url, inbound_form(QUESTION, sender=CUSTOMER, ProfileName="Ana Pérez"))
    wait_for_sent(fake_twilio, 1)
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    requests.post(f"{base_url}{OPS}/send-test", headers=bearer, timeout=10,
                  params={"to": "whatsapp:+34600999888", "text": "prueba privada"})  # number in the query string
    wait_for_sent(fake_twilio, 2)

    output = stop(gunicorn_server["process"], gunicorn_server["log"]) + stop(worker_process)
    requested = {(line["method"], line["path"]) for line in json_lines(output) if line["logger"] == "gunicorn.access"}
    assert {("POST", "/api/v1/whatsapp/webhook"), ("POST", "/api/v1/whatsapp/send-test")} <= requested
    assert_private(output, output)
