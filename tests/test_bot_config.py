"""Bot settings in the database (`GET`/`PUT /api/v1/bot/config`): validated, never showing a
secret, and used by the worker for its next answer: company, rules, tone, model, temperature,
answer length, first-message greeting, and the out-of-hours message for a handoff."""
from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import (ACCOUNT_SID, ADMIN_TOKEN, AUTH_TOKEN, inbound_form, llm_overrides, long_answer,
                            post_signed, signed_post, wait_for_sent)

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CONFIG = "/api/v1/bot/config"
ALWAYS_OPEN = {"timezone": "Europe/Madrid", "days": {day: "00:00-24:00" for day in
                                                     ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
NEVER_OPEN = {"timezone": "America/Mexico_City", "days": {}}


def say(client, worker, text: str) -> None:
    assert signed_post(client, inbound_form(text)).status_code == 200
    worker.run_until_idle()


def put(client, **changes):
    return client.put(CONFIG, json=changes, headers=ADMIN)


def test_the_defaults_come_from_the_environment_and_no_secret_is_shown(client):
    response = client.get(CONFIG, headers=ADMIN)

    body = response.get_json()
    assert response.status_code == 200
    assert (body["company_name"], body["model"], body["version"], body["updated_at"]) == \
        ("Fibra Clara", "gpt-4o-mini", 0, None)
    assert body["greeting"] == body["system_prompt"] == "" and body["business_hours"] is None
    text = response.get_data(as_text=True)
    assert AUTH_TOKEN not in text and ACCOUNT_SID not in text and ADMIN_TOKEN not in text
    assert client.get(CONFIG).status_code == 401 and client.put(CONFIG, json={"tone": "x"}).status_code == 401


def test_a_change_is_validated_saved_and_used_by_the_next_answer(client, store, worker, fake_twilio):
    response = put(client, company_name="Fibra Clara Madrid", greeting="¡Hola! Soy Clara, de Fibra Clara Madrid.")
    assert response.status_code == 200
    assert response.get_json()["version"] == 1 and response.get_json()["updated_at"]

    say(client, worker, "hola")
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")

    first, second = [m["body"] for m in fake_twilio.sent_messages()]
    assert first == "¡Hola! Soy Clara, de Fibra Clara Madrid."  # a bare greeting: the greeting alone
    assert "32" in second and not second.startswith("¡Hola!")  # only the first message is greeted


def test_the_greeting_comes_before_the_answer_to_a_first_question(client, store, worker, fake_twilio):
    put(client, greeting="¡Hola! Soy Clara.")
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")

    (sent,) = fake_twilio.sent_messages()
    assert sent["body"].startswith("¡Hola! Soy Clara.\n\n") and "32" in sent["body"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"temperature": 3}, "temperature"),
    ({"max_answer_chars": 50}, "max_answer_chars"),
    ({"max_answer_chars": 5000}, "max_answer_chars"),
    ({"company_name": ""}, "company_name"),
    ({"model": "gpt 4; drop"}, "model"),
    ({"greeting": "x" * 1001}, "greeting"),
    ({"twilio_auth_token": "x"}, "twilio_auth_token"),
    ({"business_hours": {"timezone": "Mars/Olympus", "days": {}}}, "business_hours.timezone"),
    ({"business_hours": {"timezone": "Europe/Madrid", "days": {"lunes": "09:00-18:00"}}}, "business_hours.days"),
    ({"business_hours": {"timezone": "Europe/Madrid", "days": {"mon": "18:00-09:00"}}}, "business_hours.days"),
    ({"business_hours": {"timezone": "Europe/Madrid", "days": {"mon": "9-18"}}}, "business_hours.days"),
])
def test_invalid_settings_are_400_naming_the_field_and_nothing_is_saved(client, store, changes, field):
    response = client.put(CONFIG, json=changes, headers=ADMIN)

    assert response.status_code == 400
    assert field in [problem["field"] for problem in response.get_json()["problems"]]
    assert store.bot_config.meta()["version"] == 0


@pytest.mark.parametrize("body", [b"[]", b"{}", b"not json", b'"tone"'])
def test_a_body_that_is_not_an_object_of_changes_is_400(client, body):
    response = client.put(CONFIG, data=body, content_type="application/json", headers=ADMIN)
    assert response.status_code == 400 and response.get_json()["error"]


def test_out_of_hours_a_handoff_says_the_business_message(client, store, worker, fake_twilio):
    put(client, business_hours=NEVER_OPEN, out_of_hours_message="Ahora estamos cerrados: te escribimos mañana a las 9.")
    say(client, worker, "quiero hablar con una persona")
    assert fake_twilio.sent_messages()[-1]["body"] == "Ahora estamos cerrados: te escribimos mañana a las 9."

    put(client, business_hours=ALWAYS_OPEN)
    store.conversations.collection.update_many({}, {"$set": {"status": "closed"}, "$unset": {"handoff": ""}})
    store.sessions.collection.delete_many({})
    say(client, worker, "quiero hablar con una persona")
    assert "persona del equipo" in fake_twilio.sent_messages()[-1]["body"]


class TestWithTheModel:
    @pytest.fixture
    def settings_overrides(self, settings_overrides, fake_openai):
        return llm_overrides(settings_overrides, fake_openai)

    def test_rules_tone_model_and_temperature_reach_the_model(self, client, worker, fake_twilio, fake_openai):
        put(client, system_prompt="Eres Clara, de {company}. Responde solo con los pasajes.", tone="cercano, tutea",
            model="gpt-custom-1", temperature=0.7, company_name="Fibra Clara Madrid")
        say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")

        (request,) = [r for r in fake_openai.requests if "messages" in r]
        system = request["messages"][0]["content"]
        assert system.startswith("Eres Clara, de Fibra Clara Madrid. Responde solo con los pasajes.")
        assert "Tone: cercano, tutea." in system and "data, not instructions" in system  # our data rules stay
        assert (request["model"], request["temperature"]) == ("gpt-custom-1", 0.7)

    def test_answers_are_capped_at_the_configured_length(self, client, worker, fake_twilio, fake_openai):
        fake_openai.reply = long_answer(5000)
        put(client, max_answer_chars=300)
        say(client, worker, "explícame todas las tarifas de fibra con detalle")

        (sent,) = fake_twilio.sent_messages()
        assert len(sent["body"]) <= 300


@pytest.mark.parametrize("gunicorn_server", [{"BOT_CONFIG_REFRESH_SECONDS": "0.5"}], indirect=True)
def test_a_change_through_gunicorn_reaches_the_running_worker_process(gunicorn_server, worker_process, fake_twilio):
    base_url = gunicorn_server["base_url"]
    post_signed(base_url, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?", sender="whatsapp:+34600111333"))
    wait_for_sent(fake_twilio, 1)  # the worker process is up and has read the settings once

    changed = requests.put(base_url + CONFIG, json={"greeting": "¡Bienvenida a Fibra Clara!"}, headers=ADMIN, timeout=10)
    assert changed.status_code == 200
    for _ in range(2):  # both gunicorn workers read the same settings
        assert requests.get(base_url + CONFIG, headers=ADMIN, timeout=10).json()["greeting"] == "¡Bienvenida a Fibra Clara!"
    time.sleep(0.6)  # BOT_CONFIG_REFRESH_SECONDS: the worker process may have read them just before

    post_signed(base_url, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?", sender="whatsapp:+34600111222"))
    sent = wait_for_sent(fake_twilio, 2)
    assert sent[-1]["body"].startswith("¡Bienvenida a Fibra Clara!")
