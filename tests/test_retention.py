"""Retention and erasure: messages, events and emptied conversations older than RETENTION_DAYS
go (by the worker's purge, or `scripts/admin.py purge`), and `DELETE …/customers/<wa_id>` erases
everything about one customer and nothing about another."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from scripts import admin
from tests.conftest import ADMIN_TOKEN, inbound_form, signed_post
from webapp.retention import keep_purging, purge

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
W = "/api/v1/whatsapp"
ANA, LUIS = "whatsapp:+34600111222", "whatsapp:+34600111333"


def say(client, worker, text: str, sender: str = ANA) -> None:
    assert signed_post(client, inbound_form(text, sender=sender)).status_code == 200
    worker.run_until_idle()


def age(store, wa_id: str, days: float) -> None:
    """Make everything of `wa_id` as old as `days`."""
    then = datetime.now(timezone.utc) - timedelta(days=days)
    conversation_ids = [c["_id"] for c in store.conversations.collection.find({"wa_id": wa_id})]
    store.messages.collection.update_many({"conversation_id": {"$in": conversation_ids}},
                                          {"$set": {"created_at": then}})
    store.events.collection.update_many({"conversation_id": {"$in": conversation_ids}}, {"$set": {"at": then}})
    store.conversations.collection.update_many({"wa_id": wa_id}, {"$set": {"started_at": then}})


def counts(store, wa_id: str) -> dict:
    conversation_ids = [c["_id"] for c in store.conversations.collection.find({"wa_id": wa_id})]
    return {
        "conversations": len(conversation_ids),
        "sessions": store.sessions.collection.count_documents({"wa_id": wa_id}),
        "messages": store.messages.collection.count_documents({"wa_id": wa_id}),
        "leads": store.leads.collection.count_documents({"wa_id": wa_id}),
        "events": store.events.collection.count_documents({"conversation_id": {"$in": conversation_ids}}),
    }


def test_a_purge_deletes_what_is_older_and_keeps_what_is_not(client, store, worker, fake_twilio):
    say(client, worker, "me llamo Ana García; ¿cuánto cuesta la fibra de 600 Mb?", sender=ANA)
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?", sender=LUIS)
    age(store, "34600111222", days=40)
    before = counts(store, "34600111333")

    deleted = purge(store, datetime.now(timezone.utc) - timedelta(days=30))

    assert deleted == {"messages": 2, "events": 3, "conversations": 1, "reply_jobs": 0, "chatwoot_sync": 0,
                       "sessions": 1}
    assert counts(store, "34600111222") == {"conversations": 0, "sessions": 0, "messages": 0, "leads": 1, "events": 0}
    assert counts(store, "34600111333") == before  # recent: untouched
    say(client, worker, "¿Cuánto cuesta la fibra de 1 Gb?", sender=ANA)  # a new conversation, answered
    assert "39" in fake_twilio.sent_messages()[-1]["body"]


def test_a_conversation_still_going_keeps_its_recent_messages(client, store, worker, fake_twilio):
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")
    age(store, "34600111222", days=40)
    say(client, worker, "¿Y la de 1 Gb?")

    purge(store, datetime.now(timezone.utc) - timedelta(days=30))

    assert [m["body"][:14] for m in store.messages.collection.find({"direction": "inbound"})] == ["¿Y la de 1 Gb?"]
    assert store.conversations.collection.count_documents({}) == 1


def test_the_worker_purges_now_and_then_until_stopped(client, store, worker, fake_twilio):
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")
    age(store, "34600111222", days=10)
    stop = threading.Event()
    purger = threading.Thread(target=keep_purging, args=(store, 7, stop, 0.05))
    purger.start()
    try:
        deadline = datetime.now(timezone.utc) + timedelta(seconds=30)
        while store.messages.collection.count_documents({}) and datetime.now(timezone.utc) < deadline:
            stop.wait(0.05)
    finally:
        stop.set()
        purger.join(timeout=10)
    assert store.messages.collection.count_documents({}) == 0 and not purger.is_alive()


def test_the_admin_command_purges_with_the_days_given(client, store, worker, fake_twilio, monkeypatch, capsys,
                                                      settings):
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")
    age(store, "34600111222", days=10)
    monkeypatch.setenv("MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("CHROMA_PATH", str(settings.chroma_path))

    assert admin.main(["purge", "--older-than-days", "30"]) == 0
    assert store.messages.collection.count_documents({}) == 2
    assert admin.main(["purge", "--older-than-days", "7"]) == 0
    assert store.messages.collection.count_documents({}) == 0
    assert "deleted 2 message(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        admin.main(["purge", "--older-than-days", "0"])


def test_erasing_a_customer_removes_all_of_theirs_and_nothing_else(client, store, worker, fake_twilio):
    say(client, worker, "me llamo Ana García, mi correo es ana@example.com", sender=ANA)
    say(client, worker, "quiero hablar con una persona", sender=ANA)
    client.post(f"{W}/send-test", data={"to": ANA, "text": "prueba"}, headers=ADMIN)
    say(client, worker, "me llamo Luis Pérez", sender=LUIS)
    luis = counts(store, "34600111333")

    response = client.delete(f"{W}/customers/whatsapp:+34600111222", headers=ADMIN)

    assert response.status_code == 200
    body = response.get_json()
    assert body["wa_id"] == "34600111222"
    assert body["deleted"]["messages"] == 5 and body["deleted"]["leads"] == 1 and body["deleted"]["sessions"] == 1
    assert body["deleted"]["conversations"] == 1 and body["deleted"]["events"] >= 4
    assert counts(store, "34600111222") == {"conversations": 0, "sessions": 0, "messages": 0, "leads": 0, "events": 0}
    assert store.messages.collection.count_documents({"body": {"$regex": "Ana"}}) == 0
    assert counts(store, "34600111333") == luis
    again = client.delete(f"{W}/customers/34600111222", headers=ADMIN)
    assert again.status_code == 200 and not any(again.get_json()["deleted"].values())


@pytest.mark.parametrize("wa_id", ["ana", "34 600", "+", "1" * 16])
def test_erasing_needs_a_number(client, wa_id):
    response = client.delete(f"{W}/customers/{wa_id}", headers=ADMIN)
    assert response.status_code == 400 and response.get_json()["error"]
    assert client.delete(f"{W}/customers/34600111222").status_code == 401


def test_the_all_time_totals_keep_counting_what_a_purge_deleted(client, store, worker, fake_twilio):
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")
    age(store, "34600111222", days=3)
    say(client, worker, "¿Cuánto cuesta la fibra de 1 Gb?")

    purge(store, datetime.now(timezone.utc) - timedelta(hours=1))  # as if RETENTION_DAYS were tiny

    messages = client.get(f"{W}/stats", headers=ADMIN).get_json()["messages"]
    assert (messages["inbound"], messages["outbound"]) == (2, 2)
    assert store.messages.collection.count_documents({}) == 2  # the recent ones: not rolled up yet, kept
