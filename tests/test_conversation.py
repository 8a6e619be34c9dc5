"""A WhatsApp message in, a grounded answer out: webhook (test client) → MongoDB-protocol server →
worker with the real embedder and Chroma index → fake Twilio REST server."""
from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import SENDER, WEBHOOK, inbound_form, signed_post
from webapp.worker import ReplyWorker


def test_signed_message_gets_one_grounded_reply(client, store, worker, fake_twilio):
    response = signed_post(client, inbound_form("hola, cuánto cuesta la fibra de 600 megas?"))

    assert response.status_code == 200
    assert response.mimetype == "application/xml" and b"<Response" in response.data
    inbound = list(store.messages.collection.find({"direction": "inbound"}))
    assert len(inbound) == 1 and inbound[0]["status"] == "received"
    assert fake_twilio.sent_messages() == []  # nothing is sent on the request path

    assert worker.run_until_idle() == 1
    sent = fake_twilio.sent_messages()
    assert len(sent) == 1
    assert sent[0]["to"] == "whatsapp:+34600111222"
    assert sent[0]["from_"] == SENDER
    assert "32 €" in sent[0]["body"]
    assert fake_twilio.contract_violations == []
    reply = store.messages.collection.find_one({"direction": "outbound"})
    assert reply["status"] == "queued"  # Twilio's word for accepted; delivery callbacks come later
    assert reply["external_id"] == sent[0]["sid"]
    assert "planes-y-precios.md" in reply["sources"]
    assert store.messages.collection.find_one({"direction": "inbound"})["status"] == "answered"


def test_session_is_created_once_and_reused(client, store, worker, fake_twilio):
    signed_post(client, inbound_form("cuánto cuesta la fibra de 300?"))
    worker.run_until_idle()
    signed_post(client, inbound_form("¿y la de 1 Gb?"))
    worker.run_until_idle()

    sessions = list(store.sessions.collection.find())
    assert len(sessions) == 1 and sessions[0]["wa_id"] == "34600111222"
    conversation_ids = store.messages.collection.distinct("conversation_id", {"direction": "inbound"})
    assert conversation_ids == [sessions[0]["conversation_id"]]
    last_inbound = store.messages.collection.find_one({"direction": "inbound"}, sort=[("created_at", -1)])
    assert sessions[0]["last_inbound_at"] == last_inbound["created_at"]  # touched by the worker
    assert sessions[0]["profile_name"] == "Ana"
    # the follow-up is understood from the conversation: it answers about the 1 Gb plan
    assert "39 €" in fake_twilio.sent_messages()[-1]["body"]


@pytest.mark.parametrize(
    ("form_change", "field"),
    [
        ({"From": "+34600111222"}, "From"),
        ({"From": "whatsapp:600111222"}, "From"),
        ({"From": ""}, "From"),
        ({"Body": "a" * 4097}, "Body"),
        ({"MessageSid": "not-a-sid"}, "MessageSid"),
    ],
)
def test_invalid_fields_are_400_naming_the_field(client, store, form_change, field):
    response = signed_post(client, inbound_form("hola", **form_change))

    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert store.messages.collection.count_documents({}) == 0


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "wrong"])
def test_missing_or_wrong_signature_is_403_and_nothing_happens(client, store, worker, fake_twilio, signature):
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    response = client.post(WEBHOOK, data=inbound_form("hola"), headers=headers)

    assert response.status_code == 403
    assert store.messages.collection.count_documents({}) == 0
    assert store.sessions.collection.count_documents({}) == 0
    assert worker.run_until_idle() == 0
    assert fake_twilio.requests == []


def test_signature_made_with_another_token_or_url_is_refused(client, store):
    form = inbound_form("hola")
    assert signed_post(client, form, token="not-the-token").status_code == 403
    assert signed_post(client, form, signed_url="http://localhost/api/v1/whatsapp/other").status_code == 403
    assert store.messages.collection.count_documents({}) == 0


def test_same_message_sid_twice_is_answered_once(client, store, worker, fake_twilio):
    form = inbound_form("¿qué horario tiene el teléfono de atención?")
    assert signed_post(client, form).status_code == 200
    assert signed_post(client, form).status_code == 200
    worker.run_until_idle()
    assert signed_post(client, form).status_code == 200  # a late retry after the answer
    worker.run_until_idle()

    assert store.messages.collection.count_documents({"direction": "inbound"}) == 1
    assert len(fake_twilio.sent_messages()) == 1
    assert store.sessions.collection.count_documents({}) == 1


def test_two_customers_never_share_history(client, store, worker, fake_twilio):
    ana, luis = "whatsapp:+34600000001", "whatsapp:+34600000002"
    signed_post(client, inbound_form("cuánto cuesta la fibra de 300?", sender=ana))
    worker.run_until_idle()
    signed_post(client, inbound_form("¿y eso?", sender=luis))
    worker.run_until_idle()

    sessions = {s["wa_id"]: s["conversation_id"] for s in store.sessions.collection.find()}
    assert len(set(sessions.values())) == 2
    to_luis = [m for m in fake_twilio.sent_messages() if m["to"] == luis]
    assert len(to_luis) == 1
    # Luis's vague question was not resolved against Ana's earlier question
    assert "25 €" not in to_luis[0]["body"]
    for message in store.messages.collection.find({"wa_id": "34600000002"}):
        assert message["conversation_id"] == sessions["34600000002"]


def test_media_only_message_gets_a_request_for_text(client, worker, fake_twilio):
    form = inbound_form("", NumMedia="1", MediaUrl0="https://api.twilio.com/media/ME1", MediaContentType0="image/jpeg")
    assert signed_post(client, form).status_code == 200
    worker.run_until_idle()

    (sent,) = fake_twilio.sent_messages()
    assert "texto" in sent["body"]


def test_greeting_is_answered_without_a_lookup(client, worker, fake_twilio):
    signed_post(client, inbound_form("¡Hola!"))
    worker.run_until_idle()

    assert "Fibra Clara" in fake_twilio.sent_messages()[0]["body"]


def test_english_question_gets_english_framing(client, store, worker, fake_twilio):
    signed_post(client, inbound_form("How much does the 600 Mb fibre plan cost per month?"))
    worker.run_until_idle()

    assert fake_twilio.sent_messages()[0]["body"].startswith("Here is what our documents say")
    reply = store.messages.collection.find_one({"direction": "outbound"})
    assert reply["language"] == "en"
    assert reply["sources"][0] == "planes-y-precios.md"


@pytest.fixture
def settings_overrides(settings_overrides, request):
    return dict(settings_overrides, **getattr(request, "param", {}))


@pytest.mark.parametrize("settings_overrides", [{"reply_debounce_seconds": 1.0}], indirect=True)
def test_messages_closer_than_the_debounce_wait_for_each_other(client, store, worker, fake_twilio):
    assert signed_post(client, inbound_form("hola")).status_code == 200
    assert worker.run_until_idle() == 0  # not due yet: more may follow
    assert signed_post(client, inbound_form("cuánto cuesta la fibra de 1 Gb?")).status_code == 200
    assert worker.run_until_idle() == 0  # the second message pushed the wait back

    deadline = time.monotonic() + 10
    while not worker.run_until_idle() and time.monotonic() < deadline:
        time.sleep(0.1)

    (sent,) = fake_twilio.sent_messages()
    assert "39 €" in sent["body"]
    assert [m["status"] for m in store.messages.collection.find({"direction": "inbound"})] == ["answered"] * 2


def test_burst_is_answered_as_one_question_in_order(client, store, worker, fake_twilio):
    for text in ("hola", "una pregunta", "cuánto cuesta la fibra de 1 Gb?"):
        assert signed_post(client, inbound_form(text)).status_code == 200
    worker.run_until_idle()

    (sent,) = fake_twilio.sent_messages()
    assert "39 €" in sent["body"]
    statuses = [m["status"] for m in store.messages.collection.find({"direction": "inbound"})]
    assert statuses == ["answered"] * 3


def test_idle_threads_of_a_worker_process_take_turns_to_poll(store, settings, worker, monkeypatch):
    claims = []
    real_claim = store.jobs.claim
    monkeypatch.setattr(store.jobs, "claim", lambda *args: claims.append(1) or real_claim(*args))
    stop, poll_turn = threading.Event(), threading.Lock()
    threads = [threading.Thread(target=ReplyWorker(store, worker.assistant, worker.channels, settings).run,
                                args=(stop, poll_turn)) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)

    assert not any(thread.is_alive() for thread in threads)
    polls_per_thread = 1.0 / settings.worker_poll_seconds  # 20 at the tests' 0.05 s
    assert 1 <= len(claims) <= 2 * polls_per_thread  # eight threads polling on their own: ~8 × 20
