"""Channels as adapters at the edge: every message says the way it came in or goes out, and what
was stored before there were channels (Twilio's alone) keeps working."""
from __future__ import annotations

from datetime import datetime, timezone

from tests.conftest import ADMIN_TOKEN, SENDER, inbound_form, signed_post
from webapp.channels import build_channels
from webapp.channels.base import Failure
from webapp.channels.meta.outbound import failure_of as cloud_api_failure_of
from webapp.channels.twilio.outbound import failure_of

STATUS = "/api/v1/whatsapp/status"


def test_a_twilio_message_and_its_reply_carry_their_channel_and_business_number(client, store, worker,
                                                                               fake_twilio):
    other_number = "whatsapp:+14155230000"  # a second sender of the same Twilio account
    assert signed_post(client, inbound_form("¿cuánto cuesta la fibra de 600?", To=other_number)).status_code == 200
    worker.run_until_idle()

    inbound = store.messages.collection.find_one({"direction": "inbound"})
    reply = store.messages.collection.find_one({"direction": "outbound"})
    assert (inbound["channel"], inbound["business"]) == ("twilio", other_number)
    assert (reply["channel"], reply["business"]) == ("twilio", other_number)
    (sent,) = fake_twilio.sent_messages()
    assert sent["from_"] == other_number  # the reply goes out from the number the customer wrote to


def test_every_part_of_a_persons_long_reply_goes_out_from_the_number_the_customer_wrote_to(client, store, worker,
                                                                                            fake_twilio):
    other_number = "whatsapp:+14155230000"
    assert signed_post(client, inbound_form("hola", To=other_number)).status_code == 200
    worker.run_until_idle()
    conversation = store.db.conversations.find_one()
    text = ("La instalación de la fibra se hace en un plazo de siete días laborables. " * 50).strip()

    response = client.post(f"/api/v1/whatsapp/conversations/{conversation['_id']}/reply", json={"text": text},
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    worker.run_until_idle()

    assert response.status_code == 202
    agent_parts = [m for m in fake_twilio.sent_messages() if m["body"] in text]
    assert len(agent_parts) == 3  # 4,000+ characters in Twilio's 1,600
    assert {m["from_"] for m in fake_twilio.sent_messages()} == {other_number}


def test_messages_stored_before_channels_are_migrated_and_still_answered(app, client, store, worker, fake_twilio):
    now = datetime.now(timezone.utc)
    old = store.messages.insert_outbound({
        "dedup_key": "reply:old:answer:0", "conversation_id": "c" * 32, "wa_id": "34600111222", "kind": "answer",
        "part": 0, "parts": 1, "body": "hola", "status": "queued", "twilio_sid": "SM" + "e" * 32, "reply_to": [],
        "created_at": now, "updated_at": now})
    pending = store.messages.insert_outbound({
        "dedup_key": "reply:old2:answer:0", "conversation_id": "d" * 32, "wa_id": "34600111333", "kind": "answer",
        "part": 0, "parts": 1, "body": "¿algo más?", "status": "pending", "reply_to": [], "created_at": now,
        "updated_at": now})
    store.jobs.enqueue("d" * 32, "34600111333", now)

    store.ensure_indexes()  # what every process does at start
    migrated = store.messages.get(old)
    assert migrated["external_id"] == "SM" + "e" * 32 and "twilio_sid" not in migrated
    form = {"MessageSid": "SM" + "e" * 32, "MessageStatus": "delivered"}
    assert signed_post(client, form, path=f"{STATUS}?ref={old}").status_code == 204
    assert store.messages.get(old)["status"] == "delivered"

    worker.run_until_idle()  # a part queued before channels has no route: Twilio, TWILIO_WHATSAPP_FROM
    (sent,) = fake_twilio.sent_messages()
    assert (sent["to"], sent["from_"], sent["body"]) == ("whatsapp:+34600111333", SENDER, "¿algo más?")
    assert store.messages.get(pending)["status"] == "queued"


def test_twilio_refusals_are_classified_for_the_worker():
    assert failure_of(429, 20429) is Failure.RETRY
    assert failure_of(503, None) is Failure.RETRY
    assert failure_of(None, None) is Failure.RETRY  # unreachable
    assert failure_of(400, 63016) is Failure.WINDOW_CLOSED
    assert failure_of(400, 21211) is Failure.PERMANENT


def test_cloud_api_refusals_are_classified_for_the_worker():
    assert cloud_api_failure_of(400, 131047) is Failure.WINDOW_CLOSED
    assert cloud_api_failure_of(429, None) is Failure.RETRY
    assert cloud_api_failure_of(400, 130429) is Failure.RETRY  # throughput
    assert cloud_api_failure_of(400, 131056) is Failure.RETRY  # too many to one customer
    assert cloud_api_failure_of(400, 80007) is Failure.RETRY  # the account's rate limit
    assert cloud_api_failure_of(500, None) is Failure.RETRY
    assert cloud_api_failure_of(503, 100) is Failure.RETRY  # an outage, whatever code comes with it
    assert cloud_api_failure_of(None, None) is Failure.RETRY  # unreachable
    assert cloud_api_failure_of(400, 131026) is Failure.PERMANENT
    assert cloud_api_failure_of(400, 100) is Failure.PERMANENT  # an invalid parameter
    assert cloud_api_failure_of(400, None) is Failure.PERMANENT


def test_a_reply_for_a_channel_no_longer_served_fails_clearly(client, store, worker, fake_twilio):
    now = datetime.now(timezone.utc)
    part = store.messages.insert_outbound({
        "dedup_key": "reply:gone:answer:0", "conversation_id": "e" * 32, "wa_id": "34600111444", "kind": "answer",
        "part": 0, "parts": 1, "body": "hola", "status": "pending", "reply_to": [], "channel": "carrier-pigeon",
        "business": "", "created_at": now, "updated_at": now})
    store.jobs.enqueue("e" * 32, "34600111444", now)

    worker.run_until_idle()

    stored = store.messages.get(part)
    assert stored["status"] == "failed" and "carrier-pigeon is not configured" in stored["error_message"]
    assert fake_twilio.sent_messages() == []


def test_every_channel_says_how_long_a_message_may_be(settings):
    channels = build_channels(settings)
    assert channels["twilio"].max_part_chars == 1600
    assert channels.part_chars("twilio") == 1600 and channels.part_chars("unknown") == 1600


def test_a_customer_has_one_conversation_per_channel(store):
    now = datetime.now(timezone.utc)
    on_twilio, started = store.sessions.conversation_id("twilio", "34600111222", now)
    on_meta, _ = store.sessions.conversation_id("meta", "34600111222", now)
    assert started and on_twilio != on_meta
    assert store.sessions.conversation_id("twilio", "34600111222", now) == (on_twilio, False)
    assert sorted(store.sessions.end("34600111222")) == sorted([on_twilio, on_meta])  # a reset ends both


def test_sessions_from_before_channels_are_twilio_s_and_carry_on(client, store, worker):
    store.sessions.collection.drop_indexes()
    store.sessions.collection.create_index("wa_id", unique=True, name="wa_id_unique")  # as it was
    now = datetime.now(timezone.utc)
    store.sessions.collection.insert_one({"wa_id": "34600111222", "conversation_id": "f" * 32, "created_at": now,
                                         "updated_at": now})

    store.ensure_indexes()  # what every process does at start
    assert "wa_id_unique" not in store.sessions.collection.index_information()
    assert signed_post(client, inbound_form("sigo aquí")).status_code == 200
    assert store.messages.collection.find_one({"direction": "inbound"})["conversation_id"] == "f" * 32
