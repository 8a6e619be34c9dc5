"""Every route with a JSON body reads it in one way: JSON nested too deeply for Python's parser is a
400 like any malformed body (never a 500 and a traceback), and every field has exactly its type
(a JSON object or number where text belongs is refused naming the field, and nothing is sent or
saved)."""
from __future__ import annotations

import logging

import pytest

from tests.conftest import ADMIN_TOKEN, inbound_form, signed_post

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
W = "/api/v1/whatsapp"
CONFIG = "/api/v1/bot/config"
DEEP = "[" * 5_000 + "]" * 5_000
CUSTOMER = "whatsapp:+34600111222"


@pytest.fixture
def conversation_id(client, store, worker):
    assert signed_post(client, inbound_form("hola", sender=CUSTOMER)).status_code == 200
    worker.run_until_idle()
    return store.db.conversations.find_one()["_id"]


def json_routes(conversation_id: str) -> list[tuple[str, str]]:
    return [("PUT", CONFIG), ("POST", f"{W}/send-test"), ("POST", f"{W}/conversations/{conversation_id}/reply")]


@pytest.mark.parametrize("body", [DEEP, '{"text": ' + DEEP + "}", '{"text": "hola"' + " " * 10, b'{"text": "\xff"}'],
                         ids=["nested 5,000 deep", "a field nested 5,000 deep", "unterminated", "invalid UTF-8"])
def test_a_body_that_does_not_parse_is_400_on_every_json_route(client, store, fake_twilio, conversation_id, caplog,
                                                                body):
    sent_before = len(fake_twilio.sent_messages())
    for method, path in json_routes(conversation_id):
        with caplog.at_level(logging.WARNING):
            response = client.open(path, method=method, data=body, content_type="application/json", headers=ADMIN)
        assert response.status_code == 400, (path, response.get_data(as_text=True)[:200])
        assert "not valid JSON" in response.get_json()["error"], path
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert len(fake_twilio.sent_messages()) == sent_before
    assert store.bot_config.meta()["version"] == 0


@pytest.mark.parametrize("text", [{"$gt": ""}, ["hola"], 5, 1.5, True, None])
def test_send_test_refuses_a_text_that_is_not_text(client, store, fake_twilio, text):
    response = client.post(f"{W}/send-test", json={"to": CUSTOMER, "text": text}, headers=ADMIN)

    assert response.status_code == 400
    assert response.get_json()["field"] == "text"
    assert fake_twilio.requests == [] and store.db.messages.count_documents({}) == 0


@pytest.mark.parametrize("to", [{"$ne": None}, [CUSTOMER], 34600111222])
def test_send_test_refuses_a_number_that_is_not_text(client, fake_twilio, to):
    response = client.post(f"{W}/send-test", json={"to": to, "text": "hola"}, headers=ADMIN)
    assert response.status_code == 400 and response.get_json()["field"] == "to"
    assert fake_twilio.requests == []


@pytest.mark.parametrize("text", [{"$gt": ""}, ["hola"], 5, None])
def test_a_person_s_reply_that_is_not_text_is_refused(client, store, conversation_id, text):
    before = store.db.messages.count_documents({})
    response = client.post(f"{W}/conversations/{conversation_id}/reply", json={"text": text}, headers=ADMIN)
    assert response.status_code == 400 and response.get_json()["field"] == "text"
    assert store.db.messages.count_documents({}) == before


@pytest.mark.parametrize(("changes", "field"), [
    ({"temperature": "0.5"}, "temperature"),
    ({"max_answer_chars": "300"}, "max_answer_chars"),
    ({"max_answer_chars": 300.0}, "max_answer_chars"),
    ({"max_answer_chars": True}, "max_answer_chars"),
    ({"company_name": 5}, "company_name"),
    ({"tone": {"$set": "x"}}, "tone"),
    ({"business_hours": {"timezone": "Europe/Madrid", "days": {"mon": 9}}}, "business_hours.days.mon"),
    ({"business_hours": "always"}, "business_hours"),
])
def test_bot_settings_of_the_wrong_type_are_refused_and_nothing_is_saved(client, store, changes, field):
    response = client.put(CONFIG, json=changes, headers=ADMIN)

    assert response.status_code == 400
    assert field in [problem["field"] for problem in response.get_json()["problems"]]
    assert store.bot_config.meta()["version"] == 0


def test_well_typed_fields_still_pass(client, store, fake_twilio, conversation_id):
    assert client.put(CONFIG, json={"temperature": 1, "max_answer_chars": 300}, headers=ADMIN).status_code == 200
    assert client.post(f"{W}/send-test", json={"to": CUSTOMER, "text": "hola"}, headers=ADMIN).status_code == 200
    assert client.post(f"{W}/send-test", data={"to": CUSTOMER, "text": "hola"}, headers=ADMIN).status_code == 200
    reply = client.post(f"{W}/conversations/{conversation_id}/reply", data={"text": "hola"}, headers=ADMIN)
    assert reply.status_code == 202
