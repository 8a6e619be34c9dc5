"""Quick-reply buttons on Twilio (issue 25): the "I don't know" answer goes as a `twilio/quick-reply`
content of Twilio's Content API, created once (its SID kept in MongoDB for every process) and sent
by ContentSid + ContentVariables; a tap hands over by its ButtonPayload. Against the fake Twilio,
which checks every request against Twilio's documents of both APIs."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from bson import ObjectId

from rag.language import phrase
from tests.conftest import inbound_form, post_as, signed_post, start_worker, stop, wait_for_sent, work_until_done
from webapp.channels import build_channels
from webapp.channels.base import Button
from webapp.channels.twilio.quick_reply import definition, key_of
from webapp.handoff import person_button
from webapp.worker import ReplyWorker

CUSTOMER = "whatsapp:+34600111222"
UNANSWERABLE = "¿tenéis seguro de coche?"
DONT_KNOW = phrase("dont_know", "es")
OFFER = {"1": DONT_KNOW, "2": "talk_to_person"}  # the content's variables: the text, the button's id


@pytest.fixture
def settings_overrides(settings_overrides):
    return dict(settings_overrides, send_retry_base_seconds=0.05, send_retry_max_seconds=0.2, send_max_attempts=4)


def ask(client, worker, text: str = UNANSWERABLE, sender: str = CUSTOMER) -> None:
    """Post a customer's message and work until nothing is due or postponed (bounded in time)."""
    assert signed_post(client, inbound_form(text, sender=sender)).status_code == 200
    work_until_done(worker)


def posts(fake_twilio, path_end: str) -> list:
    return [r for r in fake_twilio.requests if r.method == "POST" and r.path.endswith(path_end)]


def test_i_dont_know_goes_as_a_quick_reply_content_with_its_text_and_button_id(client, worker, store, fake_twilio):
    ask(client, worker)

    (content,) = fake_twilio.contents()
    assert content["language"] == "es"
    assert content["types"] == {"twilio/quick-reply": {"body": "{{1}}", "actions": [
        {"type": "QUICK_REPLY", "title": "Hablar con alguien", "id": "{{2}}"}]}}
    (sent,) = fake_twilio.sent_messages()
    assert (sent["content_sid"], sent["content_variables"], sent["body"]) == (content["sid"], OFFER, DONT_KNOW)
    (message,) = posts(fake_twilio, "/Messages.json")
    assert message.param("Body") is None and message.param("StatusCallback")
    stored = store.messages.collection.find_one({"direction": "outbound"})
    assert (stored["status"], stored["external_id"]) == ("queued", sent["sid"])
    assert fake_twilio.contract_violations == []


def test_the_content_is_created_once_and_a_new_worker_reads_its_sid_from_mongodb(
        client, worker, store, settings, fake_twilio):
    ask(client, worker, sender="whatsapp:+34600000001")
    ask(client, worker, sender="whatsapp:+34600000002")
    new_process = ReplyWorker(store, worker.assistant, build_channels(settings, store.sessions, store.twilio_contents),
                              settings)
    ask(client, new_process, sender="whatsapp:+34600000003")

    (content,) = fake_twilio.contents()
    assert len(posts(fake_twilio, "/v1/Content")) == 1
    assert [m["content_sid"] for m in fake_twilio.sent_messages()] == [content["sid"]] * 3
    (kept,) = store.twilio_contents.collection.find()
    assert (kept["sid"], kept["language"], kept["titles"]) == (content["sid"], "es", ["Hablar con alguien"])


def test_two_processes_creating_the_content_at_once_both_send_the_one_stored_first(store, settings, fake_twilio):
    fake_twilio.delay_next(0.5, times=2, on="content")  # both creations in flight, after both looked
    processes = [build_channels(settings, store.sessions, store.twilio_contents)["twilio"] for _ in range(2)]
    offer = [Button(**person_button("es"))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda channel: channel.send_buttons("", "34600111222", DONT_KNOW, offer), processes))

    assert [result.status for result in results] == ["queued", "queued"]
    assert len(fake_twilio.contents()) == 2  # one of them stays unused
    (kept,) = store.twilio_contents.collection.find()
    assert [m["content_sid"] for m in fake_twilio.sent_messages()] == [kept["sid"]] * 2


def test_a_known_content_costs_no_database_call(client, worker, store, fake_twilio):
    ask(client, worker, sender="whatsapp:+34600000001")
    store.twilio_contents.collection.delete_many({})  # had the worker looked, it would create another

    ask(client, worker, sender="whatsapp:+34600000002")

    assert len(fake_twilio.contents()) == 1
    assert len({m["content_sid"] for m in fake_twilio.sent_messages()}) == 1


def test_a_tap_hands_over_by_its_payload_whatever_its_title_and_counts_once(client, worker, store, fake_twilio):
    ask(client, worker)
    tap = inbound_form("Me interesa", ButtonPayload="talk_to_person", ButtonText="Me interesa")
    for _ in range(2):  # Twilio delivers it again
        assert signed_post(client, tap).status_code == 200
        work_until_done(worker)

    conversation = store.conversations.collection.find_one()
    # Ignored, the tap would have been a second unanswerable message: a handoff as "unanswered".
    assert conversation["status"] == "handoff" and conversation["handoff"]["reason"] == "asked"
    handoffs = [m for m in fake_twilio.sent_messages() if m["body"] == phrase("handoff", "es")]
    assert len(handoffs) == 1
    assert store.messages.collection.count_documents({"direction": "inbound"}) == 2


def test_a_content_api_500_is_retried_and_nothing_goes_twice(client, worker, store, fake_twilio):
    fake_twilio.fail_next(500, on="content")

    ask(client, worker)

    assert [r.status_returned for r in posts(fake_twilio, "/v1/Content")] == [500, 201]
    (sent,) = fake_twilio.sent_messages()
    assert sent["content_variables"] == OFFER
    stored = store.messages.collection.find_one({"direction": "outbound"})
    assert (stored["status"], stored["attempts"], stored["last_error"]["http_status"]) == ("queued", 1, 500)


def test_a_permanent_refusal_of_the_content_sends_the_text_and_is_not_asked_again(client, worker, store,
                                                                                  fake_twilio):
    fake_twilio.fail_next(400, message="Invalid types", on="content")

    ask(client, worker, sender="whatsapp:+34600000001")
    ask(client, worker, sender="whatsapp:+34600000002")  # within the hour: no request refused again

    assert fake_twilio.contents() == [] and len(posts(fake_twilio, "/v1/Content")) == 1
    sent = fake_twilio.sent_messages()
    assert [(m["body"], "content_sid" in m) for m in sent] == [(DONT_KNOW, False)] * 2
    assert [m["status"] for m in store.messages.collection.find({"direction": "outbound"})] == ["queued"] * 2


def test_a_content_deleted_in_twilio_sends_the_text_then_is_created_anew(client, worker, store, fake_twilio):
    key = key_of(definition([Button(**person_button("es"))]))
    deleted = "HX" + "f" * 32
    store.twilio_contents.keep(key, deleted, {}, datetime.now(timezone.utc))

    ask(client, worker, sender="whatsapp:+34600000001")
    ask(client, worker, sender="whatsapp:+34600000002")

    refused, sent_as_text, sent_as_content = posts(fake_twilio, "/Messages.json")
    assert (refused.param("ContentSid"), refused.status_returned) == (deleted, 400)
    assert (sent_as_text.param("Body"), sent_as_text.param("ContentSid")) == (DONT_KNOW, None)
    (content,) = fake_twilio.contents()
    assert sent_as_content.param("ContentSid") == content["sid"] == store.twilio_contents.sid_of(key)


@pytest.mark.parametrize("body", ["Lo siento, no lo sé. " * 60, "No lo sé.\n\n¿Te pongo con una persona?"])
def test_a_text_twilio_would_refuse_in_a_quick_reply_goes_as_text(store, worker, fake_twilio, body):
    """Longer than a quick-reply body (1,024 characters), or on more than one line (21656)."""
    (part,) = store.messages.queue_reply("c1", "34600111222", [ObjectId()], [body], datetime.now(timezone.utc),
                                         kind="answer", route={"channel": "twilio", "business": ""},
                                         buttons=[person_button("es")])

    assert worker.send(part) == ("queued", None)
    (sent,) = fake_twilio.sent_messages()
    assert sent["body"] == body and "content_sid" not in sent
    assert fake_twilio.requests[0].path.endswith("/Messages.json") and fake_twilio.contents() == []


def test_over_gunicorn_the_worker_process_sends_the_buttons_and_a_new_process_reuses_the_content(
        gunicorn_server, worker_process, fake_twilio, tmp_path):
    assert post_as(gunicorn_server, UNANSWERABLE).status_code == 200
    (first,) = wait_for_sent(fake_twilio, 1)
    stop(worker_process)

    second_process = start_worker(gunicorn_server["env"], tmp_path)
    try:
        assert post_as(gunicorn_server, UNANSWERABLE, sender="whatsapp:+34600999888").status_code == 200
        second = wait_for_sent(fake_twilio, 2)[1]
    finally:
        stop(second_process)

    (content,) = fake_twilio.contents()
    assert first["content_sid"] == second["content_sid"] == content["sid"]
    assert first["content_variables"] == second["content_variables"] == OFFER
    assert fake_twilio.contract_violations == []
