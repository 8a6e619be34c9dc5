"""A person's reply after WhatsApp's 24-hour window (issue 25): with an approved template configured
for the channel, the template goes, the reply is held, and it goes when the customer answers, in
order and once; without one, 409 as before. Contract-checked on Twilio and Meta."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from scripts.chat import meta_delivery
from tests.conftest import ADMIN_TOKEN, META_PHONE_NUMBER_ID, inbound_form, meta_overrides, meta_post, signed_post

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CUSTOMER = "34600111222"
CONTENT_SID = "HX" + "ab" * 16
TEMPLATE = {"name": "respuesta_pendiente", "language": "es"}
APPROVED_TEXT = "Tenemos una respuesta a tu consulta, ¿quieres verla?"


@pytest.fixture
def settings_overrides(settings_overrides, fake_graph):
    return meta_overrides(settings_overrides, fake_graph) | {
        "reply_template_name": TEMPLATE["name"], "reply_template_language": TEMPLATE["language"],
        "reply_template_content_sid": CONTENT_SID}


def text(body: str) -> dict:
    return meta_delivery(CUSTOMER, META_PHONE_NUMBER_ID, {"type": "text", "text": {"body": body}}, name="Ana")


def wrote_two_days_ago(client, worker, store, send) -> str:
    """A conversation whose customer last wrote two days ago (its answer long sent): its id."""
    send("Quiero hablar con una persona")
    worker.run_until_idle()
    two_days_ago = datetime.now(timezone.utc) - timedelta(days=2)
    store.messages.collection.update_many({}, {"$set": {"created_at": two_days_ago}})
    store.sessions.collection.update_many({}, {"$set": {"last_inbound_at": two_days_ago}})
    return store.conversations.collection.find_one()["_id"]


def reply(client, conversation_id: str, text: str, key: str):
    return client.post(f"/api/v1/whatsapp/conversations/{conversation_id}/reply", json={"text": text},
                       headers={**ADMIN, "Idempotency-Key": key})


@pytest.fixture
def on_meta(client, worker, store, fake_graph):
    def send(body: str) -> None:
        assert meta_post(client, text(body)).status_code == 200
    return wrote_two_days_ago(client, worker, store, send), send


def test_the_template_goes_then_the_held_replies_when_the_customer_answers(client, worker, store, fake_graph, on_meta):
    conversation_id, send = on_meta
    before = len(fake_graph.sent_messages())

    first = reply(client, conversation_id, "Ya tenemos tu nueva tarifa.", "k1")
    second = reply(client, conversation_id, "Son 25 €/mes.", "k2")
    again = reply(client, conversation_id, "Ya tenemos tu nueva tarifa.", "k1")  # a retried request
    worker.run_until_idle()

    assert (first.status_code, second.status_code, again.status_code) == (202, 202, 202)
    assert [m["status"] for m in first.get_json()["queued"]] == ["pending", "held"]
    (template,) = fake_graph.sent_messages()[before:]
    assert template["type"] == "template"
    assert template["template"] == {"name": TEMPLATE["name"], "language": {"code": "es", "policy": "deterministic"}}

    answer = text("Sí, quiero verla")
    send_twice = [meta_post(client, answer).status_code for _ in range(2)]  # Meta delivers it again
    worker.run_until_idle()

    assert send_twice == [200, 200]
    assert [m["body"] for m in fake_graph.sent_messages()[before + 1:]] == ["Ya tenemos tu nueva tarifa.",
                                                                           "Son 25 €/mes."]
    assert store.messages.collection.find_one({"body": "Sí, quiero verla"})["status"] == "answered"
    assert fake_graph.contract_violations == []


def test_a_customer_who_never_answers_gets_the_template_and_nothing_else(client, worker, store, fake_graph, on_meta):
    conversation_id, _ = on_meta
    before = len(fake_graph.sent_messages())
    reply(client, conversation_id, "¿Sigues interesado?", "k1")
    for _ in range(3):
        worker.run_until_idle()

    assert [m["type"] for m in fake_graph.sent_messages()[before:]] == ["template"]
    assert store.messages.collection.find_one({"kind": "agent"})["status"] == "held"


def test_a_customer_who_writes_before_the_template_went_gets_the_reply_alone(client, worker, store, fake_graph,
                                                                            on_meta):
    conversation_id, send = on_meta
    before = len(fake_graph.sent_messages())
    reply(client, conversation_id, "Te escribo por tu consulta.", "k1")
    send("Hola, ¿hay novedades?")  # before the worker sent the template
    worker.run_until_idle()

    assert [m["body"] for m in fake_graph.sent_messages()[before:]] == ["Te escribo por tu consulta."]
    assert store.messages.collection.find_one({"kind": "template"})["status"] == "canceled"


def test_a_refused_template_fails_the_held_reply(client, worker, store, fake_graph, on_meta):
    conversation_id, _ = on_meta
    fake_graph.fail_next(404, 132001, "Template name does not exist in the translation")
    reply(client, conversation_id, "¿Sigues interesado?", "k1")
    worker.run_until_idle()

    statuses = {m["kind"]: m["status"] for m in store.messages.collection.find({"direction": "outbound",
                                                                                  "kind": {"$ne": "answer"}})}
    assert statuses == {"template": "failed", "agent": "failed"}


def test_without_a_template_the_reply_is_refused_with_the_reason(client, app, store, on_meta):
    app.extensions["whatsapp_assistant"].channels.reply_templates.clear()  # a business that configured none
    conversation_id, _ = on_meta
    response = reply(client, conversation_id, "Hola", "k1")

    assert response.status_code == 409
    assert "24-hour window" in response.get_json()["error"] and "REPLY_TEMPLATE_NAME" in response.get_json()["error"]
    assert store.messages.collection.count_documents({"kind": {"$in": ["agent", "template"]}}) == 0


def test_twilio_sends_the_content_template_and_the_held_reply_after_the_answer(client, worker, store, fake_twilio):
    def send(body: str) -> None:
        assert signed_post(client, inbound_form(body)).status_code == 200
    fake_twilio.add_content(CONTENT_SID, {"twilio/text": {"body": APPROVED_TEXT}})  # approved in the Console
    conversation_id = wrote_two_days_ago(client, worker, store, send)
    before = len(fake_twilio.requests)

    assert reply(client, conversation_id, "Ya tenemos tu nueva tarifa.", "k1").status_code == 202
    worker.run_until_idle()
    sent = [r for r in fake_twilio.requests[before:] if r.path.endswith("/Messages.json")]
    assert [(r.param("ContentSid"), r.param("Body")) for r in sent] == [(CONTENT_SID, None)]

    send("Sí")
    worker.run_until_idle()
    assert fake_twilio.sent_messages()[-1]["body"] == "Ya tenemos tu nueva tarifa."
    assert fake_twilio.contract_violations == []
