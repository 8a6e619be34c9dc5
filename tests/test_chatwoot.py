"""Chatwoot as the agents' inbox, against a fake Chatwoot (tests/fakes/fake_chatwoot.py) that checks
every request against Chatwoot's OpenAPI file: conversations mirrored in order, a handoff opened for
agents, an agent's reply reaching the customer, a resolve giving the bot back, Chatwoot down and
then up, and forged, stale and replayed webhooks refused."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.conftest import (ADMIN_TOKEN, CHATWOOT_ACCOUNT, CHATWOOT_INBOX, CHATWOOT_SECRET, CHATWOOT_TOKEN,
                            CHATWOOT_WEBHOOK, chatwoot_settings, inbound_form, post_as, sent_on, signed_post)
from tests.fakes.fake_chatwoot import AGENT
from tests.processes import wait_until
from webapp import create_app
from webapp.chatwoot import client_of
from webapp.chatwoot.client import Contact
from webapp.chatwoot.sync import ChatwootSyncer
from webapp.config import ConfigError, load_settings

TOKEN, SECRET, ACCOUNT, INBOX, WEBHOOK = CHATWOOT_TOKEN, CHATWOOT_SECRET, CHATWOOT_ACCOUNT, CHATWOOT_INBOX, CHATWOOT_WEBHOOK
ANA = "+34600111222"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def chatwoot(fake_chatwoot):
    return fake_chatwoot


@pytest.fixture
def settings_overrides(settings_overrides, chatwoot):
    return dict(settings_overrides, **{name.lower(): value for name, value in chatwoot_settings(chatwoot).items()},
                chatwoot_timeout_seconds=1)


class Clock:
    """The sync's clock, which a test moves forward past a retry's wait."""

    def __init__(self):
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.ahead

    def later(self, **delta) -> None:
        self.ahead += timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def syncer(store, settings, clock):
    return ChatwootSyncer(store.chatwoot_sync, client_of(settings), "test-sync", clock=clock)


@pytest.fixture(autouse=True)
def webhooks_reach_the_app(chatwoot, client):
    chatwoot.poster = lambda body, headers: client.post(WEBHOOK, data=body, headers=headers).status_code


def say(client, worker, syncer, text: str) -> None:
    assert signed_post(client, inbound_form(text)).status_code == 200
    worker.run_until_idle()
    syncer.run_until_idle()


def contents(chatwoot, conversation: dict) -> list[tuple[str, str, bool]]:
    return [(m["message_type_name"], m["content"], m["private"]) for m in chatwoot.messages_of(conversation["id"])]


def echoes_settled(chatwoot) -> None:
    """Chatwoot sends our own messages back a moment later: wait until each has come and gone."""
    posted = [m for m in chatwoot.messages.values() if not m["private"] and m["sender"]["name"] == "API"]
    wait_until(lambda: len(chatwoot.deliveries) >= len(posted), "Chatwoot's echoes of our messages", 10)


def test_a_conversation_is_mirrored_in_order_to_one_contact_and_conversation(client, worker, syncer, chatwoot,
                                                                             fake_twilio):
    say(client, worker, syncer, "¿Cuánto cuesta la fibra de 600 Mb?")
    say(client, worker, syncer, "¿Y la de 1 Gb?")

    (contact,) = chatwoot.contacts.values()
    assert (contact["phone_number"], contact["name"]) == (ANA, "Ana")
    conversation = chatwoot.conversation_of(ANA)
    assert conversation["status"] == "pending"  # the bot's, until a person takes it
    sent = [m["body"] for m in fake_twilio.sent_messages()]
    assert contents(chatwoot, conversation) == [
        ("incoming", "¿Cuánto cuesta la fibra de 600 Mb?", False), ("outgoing", sent[0], False),
        ("incoming", "¿Y la de 1 Gb?", False), ("outgoing", sent[1], False)]
    assert conversation["custom_attributes"]["bot_outcome"] == "answered"
    assert "planes-y-precios.md" in conversation["custom_attributes"]["bot_sources"]
    echoes_settled(chatwoot)
    assert len(fake_twilio.sent_messages()) == 2  # Chatwoot's echoes of our own messages sent nothing
    assert {outcome for _, outcome in chatwoot.deliveries} == {200}
    assert chatwoot.contract_violations == []


def test_a_customer_chatwoot_knows_already_is_not_created_again(client, worker, syncer, chatwoot):
    known = chatwoot.handle("POST", f"/api/v1/accounts/{ACCOUNT}/contacts",
                            {"api_access_token": TOKEN, "content-type": "application/json"},
                            b'{"inbox_id": 9, "name": "Ana Garcia", "phone_number": "+34600111222"}')
    assert known.status == 200

    say(client, worker, syncer, "¿Cuánto cuesta la fibra de 600 Mb?")

    assert len(chatwoot.contacts) == 1 and chatwoot.conversation_of(ANA)["contact_id"] == min(chatwoot.contacts)


def test_a_handoff_goes_to_the_agents_whose_reply_reaches_the_customer_until_they_resolve_it(
        client, worker, syncer, chatwoot, fake_twilio, store):
    say(client, worker, syncer, "Quiero hablar con una persona, por favor")
    conversation = chatwoot.conversation_of(ANA)
    assert (conversation["status"], conversation["priority"], conversation["labels"]) == ("open", "high", ["handoff"])
    assert contents(chatwoot, conversation)[-1][2] is True  # a private note says why

    assert chatwoot.agent_replies(conversation["id"], "Hola, soy Ana, del equipo. ¿En qué te ayudo?") == 200
    worker.run_until_idle()
    assert fake_twilio.sent_messages()[-1]["body"] == "Hola, soy Ana, del equipo. ¿En qué te ayudo?"
    say(client, worker, syncer, "Quería cambiar de tarifa")
    assert len(fake_twilio.sent_messages()) == 2  # the bot is silent while the person answers

    assert chatwoot.agent_sets_status(conversation["id"], "resolved") == 200
    assert store.conversations.get(store.sessions.collection.find_one()["conversation_id"])["status"] == "open"
    say(client, worker, syncer, "¿Cuánto cuesta la fibra de 600 Mb?")
    assert "32" in fake_twilio.sent_messages()[-1]["body"]  # the bot answers again
    syncer.run_until_idle()
    assert chatwoot.conversation_of(ANA)["labels"] == []
    assert chatwoot.contract_violations == [] and fake_twilio.contract_violations == []


def test_a_note_between_agents_and_the_customers_own_messages_are_not_sent(client, worker, syncer, chatwoot,
                                                                          fake_twilio):
    say(client, worker, syncer, "Quiero hablar con una persona")
    conversation = chatwoot.conversation_of(ANA)
    before = len(fake_twilio.sent_messages())

    assert chatwoot.agent_replies(conversation["id"], "Ojo: cliente VIP", private=True) == 200
    worker.run_until_idle()

    assert len(fake_twilio.sent_messages()) == before


def test_chatwoot_down_for_a_whole_conversation_catches_up_in_order_once(client, worker, syncer, chatwoot,
                                                                          fake_twilio, clock):
    chatwoot.down()
    for text in ("¿Cuánto cuesta la fibra de 600 Mb?", "¿Y la de 1 Gb?", "¿Cómo doy de baja el servicio?"):
        say(client, worker, syncer, text)
        clock.later(minutes=10)  # every retry due: Chatwoot refuses each
    assert len(fake_twilio.sent_messages()) == 3  # the customer was answered all along
    assert chatwoot.conversations == {}
    metrics = client.get("/metrics", headers=ADMIN).get_data(as_text=True)
    assert "whatsapp_chatwoot_backlog 9.0" in metrics  # 3 questions, 3 answers, 3 outcomes
    assert client.get("/readyz").get_json()["checks"]["chatwoot"] == {  # shown, never failing readiness
        "ok": True, "backlog": 9, "oldest_event_seconds_ago": pytest.approx(0, abs=30)}

    chatwoot.up()
    clock.later(minutes=10)
    syncer.run_until_idle()

    sent = [m["body"] for m in fake_twilio.sent_messages()]
    assert contents(chatwoot, chatwoot.conversation_of(ANA)) == [
        ("incoming", "¿Cuánto cuesta la fibra de 600 Mb?", False), ("outgoing", sent[0], False),
        ("incoming", "¿Y la de 1 Gb?", False), ("outgoing", sent[1], False),
        ("incoming", "¿Cómo doy de baja el servicio?", False), ("outgoing", sent[2], False)]
    assert "whatsapp_chatwoot_backlog 0.0" in client.get("/metrics", headers=ADMIN).get_data(as_text=True)


def test_a_message_chatwoot_took_though_it_answered_too_late_is_not_posted_twice(client, worker, syncer,
                                                                                 chatwoot, clock):
    say(client, worker, syncer, "hola")  # the contact and conversation exist
    chatwoot.delay_next(2.5)  # longer than CHATWOOT_TIMEOUT_SECONDS: the next post times out, done

    assert signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?")).status_code == 200
    syncer.run_until_idle()
    clock.later(minutes=10)
    syncer.run_until_idle()
    worker.run_until_idle()
    syncer.run_until_idle()

    texts = [content for _, content, _ in contents(chatwoot, chatwoot.conversation_of(ANA))]
    assert texts.count("¿Cuánto cuesta la fibra de 600 Mb?") == 1


def test_a_person_answering_through_the_admin_api_shows_in_chatwoot_and_a_release_there_too(
        client, worker, syncer, chatwoot, store):
    say(client, worker, syncer, "Quiero hablar con una persona")
    conversation_id = store.sessions.collection.find_one()["conversation_id"]

    reply = client.post(f"/api/v1/whatsapp/conversations/{conversation_id}/reply", json={"text": "Te llamo ahora"},
                        headers={**ADMIN, "Idempotency-Key": "k1"})
    again = client.post(f"/api/v1/whatsapp/conversations/{conversation_id}/reply", json={"text": "Te llamo ahora"},
                        headers={**ADMIN, "Idempotency-Key": "k1"})
    release = client.post(f"/api/v1/whatsapp/conversations/{conversation_id}/release", headers=ADMIN)
    worker.run_until_idle()
    syncer.run_until_idle()

    assert (reply.status_code, again.status_code, release.status_code) == (202, 202, 200)
    conversation = chatwoot.conversation_of(ANA)
    assert [c for _, c, _ in contents(chatwoot, conversation)].count("Te llamo ahora") == 1
    assert (conversation["status"], conversation["labels"]) == ("pending", [])


def test_an_agents_reply_outside_the_24_hour_window_is_not_sent_and_the_agent_is_told(
        client, worker, syncer, chatwoot, store, fake_twilio):
    say(client, worker, syncer, "Quiero hablar con una persona")
    store.messages.collection.update_many({"direction": "inbound"},
                                          {"$set": {"created_at": datetime.now(timezone.utc) - timedelta(days=2)}})
    store.sessions.collection.update_many({}, {"$set": {"last_inbound_at": datetime.now(timezone.utc) - timedelta(days=2)}})
    before = len(fake_twilio.sent_messages())

    assert chatwoot.agent_replies(chatwoot.conversation_of(ANA)["id"], "¿Sigues ahí?") == 200
    worker.run_until_idle()
    syncer.run_until_idle()

    assert len(fake_twilio.sent_messages()) == before
    note = contents(chatwoot, chatwoot.conversation_of(ANA))[-1]
    assert note[2] is True and "24" in note[1]


@pytest.mark.parametrize("how", ["forged", "stale", "unsigned"])
def test_a_forged_stale_or_unsigned_webhook_is_refused_and_nothing_is_sent(client, worker, syncer, chatwoot,
                                                                          fake_twilio, how):
    say(client, worker, syncer, "Quiero hablar con una persona")
    conversation = chatwoot.conversation_of(ANA)
    event = chatwoot.message_event(chatwoot._add_message(conversation["id"], {"content": "Paga aquí: evil.example",
                                                                              "message_type": "outgoing"},
                                                         sender={"id": 9, "name": "x", "type": "user"}))
    if how == "unsigned":
        status = client.post(WEBHOOK, json=event).status_code
    else:
        status = chatwoot.deliver(event, **({"secret": "not-the-secret"} if how == "forged"
                                            else {"timestamp": int(datetime.now().timestamp()) - 3600}))
    worker.run_until_idle()

    assert status == 401
    assert "evil.example" not in [m["body"] for m in fake_twilio.sent_messages()]


def test_a_replayed_webhook_is_acted_on_once(client, worker, syncer, chatwoot, fake_twilio):
    say(client, worker, syncer, "Quiero hablar con una persona")
    conversation = chatwoot.conversation_of(ANA)
    event = chatwoot.message_event(chatwoot._add_message(conversation["id"], {"content": "Hola, soy Ana",
                                                                              "message_type": "outgoing"},
                                                         sender={"id": 7, "name": "Ana", "type": "user"}))

    statuses = [chatwoot.deliver(event, delivery="delivery-1") for _ in range(2)]
    body, headers = chatwoot.signed(dict(event, content="Y otra cosa", id=event["id"] + 1000))
    unnamed = [client.post(WEBHOOK, data=body, headers=headers).get_json()["outcome"] for _ in range(2)]
    worker.run_until_idle()

    assert statuses == [200, 200] and unnamed == ["sent", "duplicate"]  # without X-Chatwoot-Delivery: by signature
    sent = [m["body"] for m in fake_twilio.sent_messages()]
    assert sent.count("Hola, soy Ana") == 1 and sent.count("Y otra cosa") == 1


@pytest.mark.parametrize("conversation_id", [2**63, -1, 0, True, 1.5, "77"])
def test_a_webhook_naming_a_conversation_id_that_cannot_be_ours_is_ignored(client, chatwoot, conversation_id):
    body, headers = chatwoot.signed({"event": "conversation_status_changed", "id": conversation_id, "status": "open"})
    response = client.post(WEBHOOK, data=body, headers=headers)
    assert response.status_code == 200 and response.get_json()["outcome"] == "ignored"


def test_half_a_chatwoot_configuration_is_refused_naming_what_is_missing(settings_overrides):
    with pytest.raises(ConfigError, match="CHATWOOT_API_TOKEN, CHATWOOT_WEBHOOK_SECRET"):
        load_settings(**dict(settings_overrides, chatwoot_api_token="", chatwoot_webhook_secret=""))


def test_diag_shows_the_chatwoot_settings_with_the_token_and_secret_masked(client):
    shown = client.get("/api/v1/whatsapp/diag", headers=ADMIN).get_json()["chatwoot"]

    assert (shown["account_id"], shown["inbox_id"]) == (ACCOUNT, INBOX)
    assert shown["api_token"] == "****" + TOKEN[-4:] and shown["webhook_secret"] == "****" + SECRET[-4:]
    assert TOKEN not in str(shown) and SECRET not in str(shown)


def test_without_the_settings_nothing_of_chatwoot_runs(settings_overrides, chatwoot):
    """Left empty, as in .env.example: no webhook route, nothing queued for a sync, and a customer
    answered as before."""
    settings = load_settings(**dict(settings_overrides, chatwoot_base_url="", chatwoot_account_id="",
                                    chatwoot_inbox_id="", chatwoot_api_token="", chatwoot_webhook_secret=""))
    app = create_app(settings)
    client, store = app.test_client(), app.extensions["whatsapp_assistant"].store
    try:
        assert client.post(WEBHOOK, json={}).status_code == 404
        assert signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?")).status_code == 200
        assert store.db.chatwoot_sync.count_documents({}) == 0 and chatwoot.requests == []
    finally:
        store.client.drop_database(store.db.name)
        app.extensions["whatsapp_assistant"].close()


def test_a_lead_goes_on_the_contact_and_a_closed_conversation_is_resolved_there(client, worker, syncer, chatwoot,
                                                                                store):
    say(client, worker, syncer, "Soy Ana, mi correo es ana@example.com. ¿Cuánto cuesta la fibra de 600 Mb?")
    conversation_id = store.sessions.collection.find_one()["conversation_id"]

    closed = client.post(f"/api/v1/whatsapp/conversations/{conversation_id}/close", headers=ADMIN)
    syncer.run_until_idle()

    assert closed.status_code == 200
    (contact,) = chatwoot.contacts.values()
    assert contact["custom_attributes"]["lead_email"] == "ana@example.com" and contact["labels"] == ["lead"]
    conversation = chatwoot.conversation_of(ANA)
    assert (conversation["labels"], conversation["status"]) == (["lead"], "resolved")
    assert chatwoot.contract_violations == []


@pytest.mark.parametrize("status", [401, 429, 500])
def test_chatwoot_refusing_or_failing_only_delays_the_sync(client, worker, syncer, chatwoot, clock, status):
    chatwoot.fail_next(status, times=2)
    say(client, worker, syncer, "¿Cuánto cuesta la fibra de 600 Mb?")
    assert chatwoot.conversations == {}

    for _ in range(3):
        clock.later(minutes=10)
        syncer.run_until_idle()

    assert [c for _, c, _ in contents(chatwoot, chatwoot.conversation_of(ANA))][0] == "¿Cuánto cuesta la fibra de 600 Mb?"
    assert len(chatwoot.messages_of(chatwoot.conversation_of(ANA)["id"])) == 2


def test_a_conversation_deleted_in_chatwoot_is_opened_again(client, worker, syncer, chatwoot, clock):
    say(client, worker, syncer, "hola")
    chatwoot.conversations.clear()  # an agent deleted it

    say(client, worker, syncer, "¿Cuánto cuesta la fibra de 600 Mb?")
    syncer.run_until_idle()

    (conversation,) = chatwoot.conversations.values()
    assert contents(chatwoot, conversation)[0][1] == "¿Cuánto cuesta la fibra de 600 Mb?"
    assert len(chatwoot.contacts) == 1


def test_a_long_reply_from_an_agent_reaches_the_customer_in_parts_in_order(client, worker, syncer, chatwoot,
                                                                            fake_twilio):
    say(client, worker, syncer, "Quiero hablar con una persona")
    long_reply = " ".join(f"Paso {n}: revisa el router y la conexión de fibra." for n in range(1, 80))

    assert chatwoot.agent_replies(chatwoot.conversation_of(ANA)["id"], long_reply) == 200
    worker.run_until_idle()

    parts = [m["body"] for m in fake_twilio.sent_messages()[1:]]
    assert len(parts) >= 3 and all(len(p) <= 1600 for p in parts)
    assert " ".join(parts).replace("\n", " ").split() == long_reply.split()


@pytest.mark.parametrize("path, body, broken", [
    ("/contacts", {"name": "Ana"}, "inbox_id"),  # a required field missing
    ("/conversations/5/messages", {"content": "hola", "message_type": "agent"}, "message_type"),  # not in its enum
    ("/conversations/5/toggle_priority", {"priority": "critical"}, "priority"),
])
def test_the_fake_refuses_and_records_a_request_chatwoots_openapi_file_does_not_allow(chatwoot, path, body, broken):
    response = requests.post(f"{chatwoot.base_url}/api/v1/accounts/{ACCOUNT}{path}", json=body, timeout=10,
                             headers={"api_access_token": TOKEN})

    assert response.status_code == 422
    (violation,) = chatwoot.contract_violations
    assert broken in violation


def test_the_fake_refuses_a_wrong_token(chatwoot):
    response = requests.get(f"{chatwoot.base_url}/api/v1/accounts/{ACCOUNT}/contacts/search", params={"q": ANA},
                            headers={"api_access_token": "wrong"}, timeout=10)
    assert response.status_code == 401


@pytest.mark.parametrize("gunicorn_server", [
    {"chatwoot": True, "SEND_RETRY_BASE_SECONDS": "0.2", "SEND_RETRY_MAX_SECONDS": "1"},
    {"chatwoot": True, "channel": "meta", "SEND_RETRY_BASE_SECONDS": "0.2", "SEND_RETRY_MAX_SECONDS": "1"},
], indirect=True, ids=["twilio", "meta"])
def test_end_to_end_through_gunicorn_and_the_worker_process(gunicorn_server, worker_process, fake_chatwoot,
                                                            fake_twilio, request):
    """Chatwoot down for the start of a conversation, then up: all of it arrives once, in order; a
    handoff; an agent's reply reaching the customer on their channel; forged, stale and replayed
    webhooks refused with nothing sent; a resolve giving the bot back."""
    chatwoot = fake_chatwoot
    fake_graph = request.getfixturevalue("fake_graph") if gunicorn_server["channel"] == "meta" else None
    sent = lambda: sent_on(gunicorn_server, fake_twilio, fake_graph)  # noqa: E731
    chatwoot.down()
    for n, text in enumerate(["¿Cuánto cuesta la fibra de 600 Mb?", "¿Y la de 1 Gb?"], 1):
        assert post_as(gunicorn_server, text).status_code == 200
        wait_until(lambda: len(sent()) >= n, f"answer {n}", 60)
    assert chatwoot.conversations == {}  # the customer was answered all the same

    chatwoot.up()
    wait_until(lambda: chatwoot.conversations and len(chatwoot.messages_of(min(chatwoot.conversations))) >= 4,
               "the conversation mirrored", 60)
    conversation = chatwoot.conversation_of(ANA)
    answers = [m["body"] for m in sent()]
    assert contents(chatwoot, conversation) == [
        ("incoming", "¿Cuánto cuesta la fibra de 600 Mb?", False), ("outgoing", answers[0], False),
        ("incoming", "¿Y la de 1 Gb?", False), ("outgoing", answers[1], False)]

    assert post_as(gunicorn_server, "Quiero hablar con una persona").status_code == 200
    wait_until(lambda: chatwoot.conversation_of(ANA)["status"] == "open", "the handoff opened for agents", 60)
    message = chatwoot._add_message(conversation["id"], {"content": "Hola, soy Ana, del equipo.",
                                                         "message_type": "outgoing"}, sender=AGENT)
    event = chatwoot.message_event(message)
    assert chatwoot.deliver(event, delivery="agent-reply-1") == 200
    wait_until(lambda: sent()[-1]["body"] == "Hola, soy Ana, del equipo.", "the agent's reply sent", 60)
    forged = chatwoot.message_event(chatwoot._add_message(conversation["id"], {"content": "Paga en evil.example",
                                                                               "message_type": "outgoing"},
                                                          sender=AGENT))
    assert chatwoot.deliver(forged, secret="not-the-secret") == 401
    assert chatwoot.deliver(forged, timestamp=int(time.time()) - 3600) == 401
    assert chatwoot.deliver(event, delivery="agent-reply-1") == 200  # a replay: acted on once

    assert chatwoot.agent_sets_status(conversation["id"], "resolved") == 200
    count = len(sent())
    assert post_as(gunicorn_server, "¿Cuánto cuesta la fibra de 600 Mb?").status_code == 200
    wait_until(lambda: len(sent()) > count, "the bot answering again", 60)
    bodies = [m["body"] for m in sent()]
    assert "32" in bodies[-1] and bodies.count("Hola, soy Ana, del equipo.") == 1
    assert not any("evil.example" in body for body in bodies)
    wait_until(lambda: len(chatwoot.messages_of(conversation["id"])) >= 10, "the rest mirrored", 60)
    assert chatwoot.contract_violations == []
    assert (fake_graph or fake_twilio).contract_violations == []


def test_a_sync_that_lost_its_lease_to_another_tells_chatwoot_nothing_more(client, worker, store, settings, chatwoot,
                                                                          clock):
    assert signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?")).status_code == 200
    worker.run_until_idle()
    slow = ChatwootSyncer(store.chatwoot_sync, client_of(settings), "slow-sync", lease_seconds=60, clock=clock)
    state = store.chatwoot_sync.claim("slow-sync", clock(), 60)
    store.chatwoot_sync.collection.update_one({"_id": state["_id"]}, {"$set": {"worker": "another-sync"}})
    clock.later(seconds=45)  # under half the lease left: it renews before the next event, and finds it lost

    slow._sync(state)

    assert chatwoot.requests == []


def test_a_contact_created_as_chatwoots_openapi_file_renders_it_is_read_too(chatwoot, settings, monkeypatch):
    """The file wraps a contact in a list ({"payload": [{"id": …}]}), where Chatwoot renders
    {"payload": {"contact": …, "contact_inbox": …}}: the id is found either way."""
    client = client_of(settings)
    monkeypatch.setattr(client, "_call", lambda method, path, **kw: {
        "/contacts": {"payload": [{"id": 41, "contact_inboxes": [{"source_id": "s-41", "inbox": {"id": INBOX}}]}]},
    }[path])

    assert client.create_contact(ANA, "Ana") == Contact(41, "s-41")


def test_a_status_change_for_a_conversation_erased_here_is_ignored(client, worker, syncer, chatwoot, store):
    say(client, worker, syncer, "Quiero hablar con una persona")
    conversation_id = store.sessions.collection.find_one()["conversation_id"]
    store.conversations.delete([conversation_id])  # (erasure deletes its sync state too; here it lingers)

    assert chatwoot.agent_sets_status(chatwoot.conversation_of(ANA)["id"], "resolved") == 200
