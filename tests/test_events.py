"""Analytics events: each message received, sent or failed, once, with its conversation and time,
whoever notices it (the worker, the webhook for a rate-limited message, a status report)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.conftest import inbound_form, signed_post
from tests.test_status_callbacks import PUBLIC, report, sent_reply
from webapp.db.events import event


@pytest.fixture
def settings_overrides(settings_overrides):
    return dict(settings_overrides, public_base_url=PUBLIC, rate_limit_per_wa_id="2 per minute")


def events(store) -> list[tuple[str, str]]:
    return sorted((e["type"], str(e.get("message_id"))) for e in store.events.collection.find())


def test_a_conversation_records_each_message_received_and_sent(client, store, worker, fake_twilio):
    reply = sent_reply(client, store, worker)
    question = store.messages.collection.find_one({"direction": "inbound"})

    assert events(store) == [("message_received", str(question["_id"])), ("message_sent", str(reply["_id"]))]
    for recorded in store.events.collection.find():
        assert recorded["conversation_id"] == question["conversation_id"]
    received = store.events.collection.find_one({"type": "message_received"})
    assert received["at"] == question["created_at"]


def test_a_failed_send_and_a_failure_report_are_one_failure_each(client, store, worker, fake_twilio):
    fake_twilio.fail_next(400, code=21610)
    signed_post(client, inbound_form("a qué hora abre la tienda?"), PUBLIC + "/api/v1/whatsapp/webhook")
    worker.run_until_idle()
    refused = store.messages.collection.find_one({"direction": "outbound"})
    reply = sent_reply_again(client, store, worker)
    for _ in range(2):  # Twilio may report it twice
        assert report(client, reply["_id"], reply["external_id"], "undelivered", "30008").status_code == 204

    failures = {str(e["message_id"]): e.get("error_code") for e in store.events.collection.find({"type": "message_failed"})}
    assert failures == {str(refused["_id"]): 21610, str(reply["_id"]): 30008}


def sent_reply_again(client, store, worker) -> dict:
    signed_post(client, inbound_form("¿y el domingo?"), PUBLIC + "/api/v1/whatsapp/webhook")
    worker.run_until_idle()
    return store.messages.collection.find_one({"direction": "outbound", "status": "queued"})


def test_a_rate_limited_message_is_received_all_the_same(client, store, worker, fake_twilio):
    for text in ("hola", "¿a qué hora abrís?", "¿y los sábados?"):
        signed_post(client, inbound_form(text), PUBLIC + "/api/v1/whatsapp/webhook")
    worker.run_until_idle()

    inbound = list(store.messages.collection.find({"direction": "inbound"}))
    assert {m["status"] for m in inbound} == {"answered", "rate_limited"}
    received = {str(e["message_id"]) for e in store.events.collection.find({"type": "message_received"})}
    assert received == {str(m["_id"]) for m in inbound}


def test_recording_an_event_again_adds_nothing(store):
    now = datetime.now(timezone.utc)
    once = [event("handoff_requested", "c1:1", "c1", now, reason="asked")]
    store.events.record(once)
    store.events.record(once + [event("handoff_released", "c1:1", "c1", now)])

    assert store.events.count("handoff_requested") == 1 and store.events.count("handoff_released") == 1
    with pytest.raises(ValueError):
        event("message_lost", "x", "c1", now)
