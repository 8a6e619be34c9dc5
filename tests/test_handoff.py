"""Human handoff, end to end through the webhook, the worker and the fake Twilio: the customer
asks for a person (or the bot could not answer twice in a row), is told a person will answer, the
business's webhook gets a signed notice, and the bot stays silent until an admin releases the
conversation or its time runs out; a person answers through the admin API, inside the 24-hour
window only."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import pytest

from rag.language import says_yes, wants_person
from tests.conftest import ADMIN_TOKEN, inbound_form, signed_post
from tests.fakes.fake_receiver import FakeReceiver

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
W = "/api/v1/whatsapp"
SECRET = "handoff-secret-0123456789"


@pytest.fixture
def receiver():
    with FakeReceiver() as server:
        yield server


@pytest.fixture
def settings_overrides(settings_overrides, receiver):
    return dict(settings_overrides, handoff_webhook_url=receiver.base_url + "/hooks/handoff",
                handoff_webhook_secret=SECRET)


def say(client, worker, text: str, sender: str = "whatsapp:+34600111222") -> None:
    assert signed_post(client, inbound_form(text, sender=sender)).status_code == 200
    worker.run_until_idle()


def conversation(store) -> dict:
    (found,) = store.conversations.collection.find()
    return found


def bodies(fake_twilio) -> list[str]:
    return [m["body"] for m in fake_twilio.sent_messages()]


def test_asking_for_a_person_hands_off_and_the_bot_stays_silent_until_released(client, store, worker, fake_twilio,
                                                                                receiver):
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")
    say(client, worker, "Quiero hablar con una persona, por favor")

    assert "persona del equipo" in bodies(fake_twilio)[-1]
    handed = conversation(store)
    assert handed["status"] == "handoff" and handed["handoff"]["reason"] == "asked"
    assert store.events.count("handoff_requested") == 1

    say(client, worker, "¿Hola? ¿Hay alguien?")  # waits for the person: the bot says nothing
    assert len(fake_twilio.sent_messages()) == 2
    held = store.messages.collection.find_one({"body": "¿Hola? ¿Hay alguien?"})
    assert held["status"] == "handoff"

    reply = client.post(f"{W}/conversations/{handed['_id']}/reply", json={"text": "Hola Ana, soy Marta. ¿En qué te ayudo?"},
                        headers=ADMIN)
    worker.run_until_idle()
    assert reply.status_code == 202 and reply.get_json()["queued"][0]["role"] == "agent"
    assert bodies(fake_twilio)[-1] == "Hola Ana, soy Marta. ¿En qué te ayudo?"
    stored = store.messages.collection.find_one({"kind": "agent"})
    assert stored["role"] == "agent" and stored["status"] == "queued" and stored["external_id"]

    released = client.post(f"{W}/conversations/{handed['_id']}/release", headers=ADMIN)
    again = client.post(f"{W}/conversations/{handed['_id']}/release", headers=ADMIN)
    assert released.get_json() == {"id": handed["_id"], "status": "open", "released": True}
    assert again.get_json()["released"] is False
    assert store.events.count("handoff_released") == 1

    say(client, worker, "¿Y la fibra de 1 Gb?")  # the bot answers again
    assert "39" in bodies(fake_twilio)[-1]
    assert fake_twilio.contract_violations == []


def test_the_business_webhook_gets_one_signed_notice(client, store, worker, fake_twilio, receiver):
    say(client, worker, "agente")

    (notice,) = receiver.received
    assert notice.method == "POST" and notice.path == "/hooks/handoff"
    expected = "sha256=" + hmac.new(SECRET.encode(), notice.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(notice.headers["x-assistant-signature"], expected)
    body = notice.json()
    handed = conversation(store)
    assert body["event"] == "handoff_requested" and body["conversation_id"] == handed["_id"]
    assert body["customer"] == {"wa_id": "34600111222", "profile_name": "Ana"} and body["reason"] == "asked"
    assert body["last_message"] == "agente" and notice.headers["x-assistant-delivery"] == body["id"]
    assert body["admin_api"]["reply"] == f"/api/v1/whatsapp/conversations/{handed['_id']}/reply"
    assert "notified_at" in handed["handoff"]


def test_a_receiver_that_fails_is_tried_again_and_the_handoff_stands(client, store, worker, fake_twilio, receiver):
    receiver.fail_next(503, times=5)
    say(client, worker, "quiero hablar con alguien")

    assert len(receiver.received) == 3  # NOTIFY_ATTEMPTS
    handed = conversation(store)
    assert handed["status"] == "handoff" and handed["handoff"]["notify_error"] == "HTTP 503"
    assert "persona del equipo" in bodies(fake_twilio)[-1]


def test_a_handoff_whose_job_died_before_the_notice_is_notified_with_the_next_message(client, store, worker,
                                                                                     fake_twilio, receiver):
    say(client, worker, "quiero hablar con una persona")
    handed = conversation(store)
    store.conversations.collection.update_one({"_id": handed["_id"]}, {"$unset": {"handoff.notified_at": ""}})
    before = len(receiver.received)

    say(client, worker, "¿sigue ahí alguien?")

    assert len(receiver.received) == before + 1 and receiver.received[-1].json()["last_message"] == "¿sigue ahí alguien?"
    assert "notified_at" in conversation(store)["handoff"]
    say(client, worker, "¿hola?")
    assert len(receiver.received) == before + 1  # told once


def test_two_answers_in_a_row_the_bot_could_not_give_hand_off(client, store, worker, fake_twilio):
    worker.assistant.retriever.threshold = 0.99  # nothing in the index is this close
    say(client, worker, "¿Cuál es la capital de Mongolia?")
    assert "no tengo esa información" in bodies(fake_twilio)[-1] and conversation(store)["status"] == "open"

    say(client, worker, "¿Y la de Kazajistán?")

    assert "persona del equipo" in bodies(fake_twilio)[-1]
    handed = conversation(store)
    assert handed["status"] == "handoff" and handed["handoff"]["reason"] == "unanswered"
    last = store.messages.collection.find_one({"direction": "outbound"}, sort=[("created_at", -1)])
    assert last["outcome"] == "handoff"


def test_saying_yes_to_the_offer_of_a_person_hands_off(client, store, worker, fake_twilio):
    worker.assistant.retriever.threshold = 0.99
    say(client, worker, "¿Vendéis seguros de coche?")
    say(client, worker, "Sí, por favor")

    assert conversation(store)["status"] == "handoff" and conversation(store)["handoff"]["reason"] == "asked"


def test_yes_after_an_answer_is_just_a_yes(client, store, worker, fake_twilio):
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")
    say(client, worker, "vale")

    assert conversation(store)["status"] == "open"


def test_when_the_handoff_time_runs_out_the_bot_answers_again(client, store, worker, fake_twilio):
    say(client, worker, "I want to talk to a human")
    assert "person from our team" in bodies(fake_twilio)[-1]  # in the customer's language
    handed = conversation(store)
    store.conversations.collection.update_one({"_id": handed["_id"]},
                                              {"$set": {"handoff.until": datetime.now(timezone.utc) - timedelta(seconds=1)}})

    say(client, worker, "¿Cuánto cuesta al mes la fibra de 600 Mb?")

    assert "32" in bodies(fake_twilio)[-1]
    after = conversation(store)
    assert after["status"] == "open" and after["last_handoff"]["released_by"] == "timeout"
    assert store.events.count("handoff_released") == 1


def test_an_agent_reply_outside_the_24_hour_window_is_refused(client, store, worker, fake_twilio):
    say(client, worker, "quiero hablar con una persona")
    handed = conversation(store)
    long_ago = datetime.now(timezone.utc) - timedelta(hours=25)
    store.messages.collection.update_many({"direction": "inbound"}, {"$set": {"created_at": long_ago}})
    store.sessions.collection.update_many({}, {"$set": {"last_inbound_at": long_ago}})

    response = client.post(f"{W}/conversations/{handed['_id']}/reply", json={"text": "Hola"}, headers=ADMIN)
    worker.run_until_idle()

    assert response.status_code == 409 and "63016" in response.get_json()["error"]
    assert store.messages.collection.count_documents({"kind": "agent"}) == 0 and len(fake_twilio.sent_messages()) == 1


def test_an_agent_reply_sent_twice_with_one_idempotency_key_goes_out_once(client, store, worker, fake_twilio):
    say(client, worker, "humano")
    handed = conversation(store)
    headers = {**ADMIN, "Idempotency-Key": "ticket-42.reply-1"}
    long_text = "Te llamo mañana a las 10. " * 100  # 2,600 characters: two WhatsApp messages

    first = client.post(f"{W}/conversations/{handed['_id']}/reply", json={"text": long_text}, headers=headers)
    second = client.post(f"{W}/conversations/{handed['_id']}/reply", data={"text": long_text}, headers=headers)
    worker.run_until_idle()

    assert first.status_code == second.status_code == 202
    assert [m["part"] for m in first.get_json()["queued"]] == [0, 1]
    agent = [m for m in fake_twilio.sent_messages()[1:]]
    assert len(agent) == 2 and "".join(m["body"] for m in agent).replace(" ", "") == long_text.replace(" ", "")


@pytest.mark.parametrize(("body", "headers", "status"), [
    ({"json": {"text": ""}}, {}, 400),
    ({"json": {"text": "x" * 4001}}, {}, 400),
    ({"json": {"message": "hola"}}, {}, 400),
    ({"json": ["hola"]}, {}, 400),
    ({"json": {"text": "hola"}}, {"Idempotency-Key": "no spaces allowed"}, 400),
])
def test_a_bad_agent_reply_is_400(client, store, worker, fake_twilio, body, headers, status):
    say(client, worker, "humano")
    handed = conversation(store)
    response = client.post(f"{W}/conversations/{handed['_id']}/reply", headers={**ADMIN, **headers}, **body)
    assert response.status_code == status and response.get_json()["error"]
    assert client.post(f"{W}/conversations/{'0' * 32}/reply", json={"text": "hola"}, headers=ADMIN).status_code == 404
    assert client.post(f"{W}/conversations/{'0' * 32}/release", headers=ADMIN).status_code == 404


def test_listing_conversations_in_handoff(client, store, worker, fake_twilio):
    say(client, worker, "quiero hablar con una persona", sender="whatsapp:+34600111222")
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?", sender="whatsapp:+34600111333")

    listed = client.get(f"{W}/conversations?status=handoff", headers=ADMIN).get_json()

    assert [c["wa_id"] for c in listed["conversations"]] == ["34600111222"]
    assert listed["conversations"][0]["handoff"]["reason"] == "asked"


@pytest.mark.parametrize("text", [
    "quiero hablar con una persona", "¿Puedo hablar con un asesor?", "pásame con un agente", "humano", "Agente por favor",
    "necesito hablar con una persona de verdad", "I want to talk to a human", "can I speak to someone?", "agent",
    "quero falar com um atendente", "je veux parler à un conseiller", "quiero un humano",
])
def test_requests_for_a_person_are_recognised(text):
    assert wants_person(text)


@pytest.mark.parametrize("text", [
    "¿cómo me hago agente comercial?", "la persona que vino a instalar no llegó", "el técnico es una persona muy amable",
    "what does the agent fee include?", "quiero saber si alguien puede instalarlo mañana", "hablé con el técnico ayer",
    "necesito un router", "hola",
])
def test_other_mentions_of_people_are_not(text):
    assert not wants_person(text)


def test_yes_is_recognised_only_as_a_whole_answer():
    assert all(says_yes(t) for t in ("Sí, por favor", "vale", "ok!", "yes please", "sim", "oui"))
    assert not any(says_yes(t) for t in ("no", "sí, pero antes dime el precio", "no gracias"))


def test_a_person_can_answer_an_older_conversation_while_the_customer_writes_in_a_newer_one(client, store, worker,
                                                                                          fake_twilio):
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")
    (old,) = store.conversations.collection.find()
    client.post(f"{W}/conversations/{old['_id']}/close", headers=ADMIN)
    say(client, worker, "¿Y la de 1 Gb?")  # a new conversation: the window is open through it
    store.messages.collection.delete_many({"conversation_id": old["_id"], "direction": "inbound"})  # as a purge would

    response = client.post(f"{W}/conversations/{old['_id']}/reply", json={"text": "Sobre tu pregunta de ayer…"},
                           headers=ADMIN)
    worker.run_until_idle()

    assert response.status_code == 202
    assert fake_twilio.sent_messages()[-1]["body"] == "Sobre tu pregunta de ayer…"
