"""Issue 25 end to end, through gunicorn and the worker process, on Twilio and on Meta (fakes with
contract checks): the feedback question and its buttons, a tap arriving twice (counted once), a tap
on an old button after the conversation moved on, and a person's reply after the 24-hour window
that goes as the approved template, then waits: nothing else is sent until the customer answers."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.conftest import ADMIN_TOKEN, inbound_form, meta_tap, post_as, post_signed, sent_on, wait_until
from webapp.db import open_store

CONTENT_SID = "HX" + "cd" * 16
SETTINGS = {"FEEDBACK_EVERY_N_ANSWERS": "1", "REPLY_TEMPLATE_CONTENT_SID": CONTENT_SID,
            "REPLY_TEMPLATE_NAME": "respuesta_pendiente", "REPLY_TEMPLATE_LANGUAGE": "es"}
APPROVED_TEXT = "Tenemos una respuesta a tu consulta, ¿quieres verla?"
QUESTIONS = ("¿Cuánto cuesta la fibra de 600 Mb?", "¿Cómo doy de baja el servicio?")


def tap(server: dict, button_id: str, title: str, delivery: dict | None = None) -> dict:
    """The customer taps a button (the same `delivery` again: a redelivery). Returns what was posted."""
    if server["channel"] == "twilio":
        delivery = delivery or inbound_form(title, ButtonPayload=button_id, ButtonText=title)
        assert post_signed(server["base_url"], delivery).status_code == 200
        return delivery
    delivery = delivery or meta_tap(button_id, title)
    assert post_as(server, "", delivery=delivery).status_code == 200
    return delivery


def templates_sent(server: dict, fake_twilio, fake_graph) -> int:
    if server["channel"] == "twilio":
        return sum(r.param("ContentSid") == CONTENT_SID for r in fake_twilio.requests)
    return sum(m["type"] == "template" for m in fake_graph.sent_messages())


def answers(store) -> list[dict]:
    return list(store.messages.collection.find({"kind": "answer", "part": 0}).sort("created_at", 1))


@pytest.mark.parametrize("gunicorn_server", [dict(SETTINGS), dict(SETTINGS, channel="meta")], indirect=True,
                         ids=["twilio", "meta"])
def test_feedback_taps_and_a_reply_after_the_window(gunicorn_server, worker_process, fake_twilio, mongodb_uri,
                                                    request):
    fake_graph = request.getfixturevalue("fake_graph") if gunicorn_server["channel"] == "meta" else None
    fake = fake_graph or fake_twilio
    sent = lambda: sent_on(gunicorn_server, fake_twilio, fake_graph)  # noqa: E731
    fake_twilio.add_content(CONTENT_SID, {"twilio/text": {"body": APPROVED_TEXT}})  # approved in the Console
    store = open_store(mongodb_uri)
    for n, question in enumerate(QUESTIONS, 1):  # each answered, and asked about
        assert post_as(gunicorn_server, question).status_code == 200
        wait_until(lambda: len(answers(store)) == n and len(sent()) >= 2 * n, f"answer {n} and its question", 60)
    first, second = answers(store)
    assert first["feedback_asked"] and second["feedback_asked"]

    delivery = tap(gunicorn_server, f"feedback:up:{first['reply_to'][0]}", "👍")  # the old question's button
    tap(gunicorn_server, "", "", delivery)  # delivered again
    wait_until(lambda: len(answers(store)) == 3, "the thanks", 60)
    tap(gunicorn_server, f"feedback:down:{second['reply_to'][0]}", "👎")
    wait_until(lambda: len(answers(store)) == 4, "the offer of a person", 60)
    first, second, *_ = answers(store)
    assert (first.get("feedback"), second.get("feedback")) == ("up", "down")
    wait_until(lambda: store.events.count("answer_rated") == 2, "the ratings' events", 60)  # the job's last step

    two_days_ago = datetime.now(timezone.utc) - timedelta(days=2)
    store.messages.collection.update_many({}, {"$set": {"created_at": two_days_ago}})
    store.sessions.collection.update_many({}, {"$set": {"last_inbound_at": two_days_ago}})
    conversation_id = first["conversation_id"]
    response = requests.post(f"{gunicorn_server['base_url']}/api/v1/whatsapp/conversations/{conversation_id}/reply",
                             json={"text": "Te escribo por tu baja."}, timeout=10,
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Idempotency-Key": "late-1"})
    assert response.status_code == 202
    wait_until(lambda: store.messages.collection.find_one({"kind": "template"})["status"] not in ("pending",
                                                                                                 "submitting"),
               "the template sent", 60)
    count = len(sent())
    time.sleep(3)  # the customer does not answer: nothing else goes…
    assert len(sent()) == count and store.messages.collection.find_one({"kind": "agent"})["status"] == "held"

    assert post_as(gunicorn_server, "Sí, dime").status_code == 200  # …until they do
    wait_until(lambda: sent()[-1]["body"] == "Te escribo por tu baja.", "the held reply sent", 60)
    assert templates_sent(gunicorn_server, fake_twilio, fake_graph) == 1
    assert fake.contract_violations == []
    store.close()
