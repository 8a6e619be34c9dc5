"""Faults with real processes: the LLM timing out under the worker process, and SIGTERM of the
worker process or of gunicorn while they are busy. Each test checks the end state in MongoDB and
at the fake Twilio: what was acknowledged is answered, once, in order."""
from __future__ import annotations

import runpy
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import requests

from rag.language import phrase
from tests.conftest import (
    DEADLINE_SECONDS, ROOT, inbound_form, post_signed, start_worker, stop, wait_for_sent,
)
from tests.fakes.fake_openai import FakeOpenAI
from tests.processes import cpu_seconds, wait_until
from webapp.db import open_store

LLM_REPLY = "La fibra de 600 Mb cuesta 32 € al mes."
LLM_TIMEOUT_SECONDS = 1
GRACEFUL_TIMEOUT = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["graceful_timeout"]


@pytest.fixture
def llm():
    with FakeOpenAI(reply=LLM_REPLY, api_key="sk-test") as server:
        yield server


def llm_env(gunicorn_server, llm: FakeOpenAI, **extra: str) -> dict[str, str]:
    """The worker process's environment, answering with the fake LLM."""
    return dict(gunicorn_server["env"], OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=llm.api_base, **extra)


def sent_to(fake_twilio, wa_id: str) -> list[dict]:
    return [m for m in fake_twilio.sent_messages() if m["to"] == f"whatsapp:+{wa_id}"]


# -- 1. The LLM times out -------------------------------------------------------------------------

def test_an_llm_that_times_out_gets_each_customer_one_offline_answer_in_their_language(
        gunicorn_server, llm, fake_twilio, mongodb_uri, tmp_path):
    customers = {  # wa_id: (question, language)
        "34600111222": ("¿cuánto cuesta la fibra de 600?", "es"),
        "447700900123": ("How much does the 600 Mb fibre plan cost per month?", "en"),
    }
    llm.delay_next(10, times=4)  # every attempt at both answers hangs for longer than the timeout
    worker = start_worker(llm_env(gunicorn_server, llm, OPENAI_TIMEOUT_SECONDS=str(LLM_TIMEOUT_SECONDS)), tmp_path)
    try:
        for wa_id, (question, _) in customers.items():
            response = post_signed(gunicorn_server["base_url"], inbound_form(question, f"whatsapp:+{wa_id}"))
            assert response.status_code == 200
        wait_until(llm.chat_requests, "the worker to ask the LLM")
        asked = time.monotonic()
        wait_for_sent(fake_twilio, 2)
        waited = time.monotonic() - asked
        time.sleep(1)  # room for a duplicate to show up, were there one
    finally:
        output = stop(worker)

    store = open_store(mongodb_uri)
    for wa_id, (_, language) in customers.items():
        (sent,) = sent_to(fake_twilio, wa_id)
        assert "32 €" in sent["body"], output[-3000:]  # what the documents say, quoted offline
        assert sent["body"].startswith(phrase("found", "en")) == (language == "en")
        (reply,) = store.messages.collection.find({"wa_id": wa_id, "direction": "outbound"})
        assert (reply["outcome"], reply["language"], reply["external_id"]) == ("fallback", language, sent["sid"])
        assert [m["status"] for m in store.messages.collection.find({"wa_id": wa_id, "direction": "inbound"})] \
            == ["answered"]
    assert len(fake_twilio.sent_messages()) == 2
    assert store.jobs.collection.count_documents({}) == 0
    # The OpenAI client retries a timed-out call once (max_retries=1 in rag.answer.make_chat_model):
    # two attempts per answer, so the customer waits twice OPENAI_TIMEOUT_SECONDS plus the
    # client's backoff (~0.4-0.5 s) before the offline answer goes out.
    assert len(llm.chat_requests()) == 4
    assert 2 * LLM_TIMEOUT_SECONDS <= waited < DEADLINE_SECONDS


def test_an_answer_that_outlasts_the_lease_keeps_its_conversation(gunicorn_server, llm, fake_twilio, mongodb_uri,
                                                                  tmp_path):
    """The worker's two timed-out attempts (~6.5 s) outlast its 5 s lease, but it renews the lease
    while it waits, so no other thread of the process takes the conversation over (which would
    ask the LLM again and answer around it). The message written meanwhile is answered next."""
    llm.delay_next(30, times=2)  # both attempts at the first answer hang; later ones are answered
    env = llm_env(gunicorn_server, llm, OPENAI_TIMEOUT_SECONDS="3", WORKER_LEASE_SECONDS="5")
    worker = start_worker(env, tmp_path)
    try:
        question = inbound_form("¿cuánto cuesta la fibra de 600?")
        assert post_signed(gunicorn_server["base_url"], question).status_code == 200
        wait_until(llm.chat_requests, "the worker to ask the LLM")
        assert post_signed(gunicorn_server["base_url"], inbound_form("¿y la de 1 Gb?")).status_code == 200
        sent = wait_for_sent(fake_twilio, 2)
        time.sleep(1)  # room for a duplicate to show up, were there one
    finally:
        output = stop(worker)

    assert "32 €" in sent[0]["body"] and sent[1]["body"] == LLM_REPLY, output[-3000:]
    assert len(fake_twilio.sent_messages()) == 2
    assert "lease lost" not in output
    store = open_store(mongodb_uri)
    inbound = list(store.messages.collection.find({"direction": "inbound"}).sort("created_at"))
    replies = list(store.messages.collection.find({"direction": "outbound"}).sort("created_at"))
    assert [m["status"] for m in inbound] == ["answered", "answered"]
    assert [r["reply_to"] for r in replies] == [[inbound[0]["_id"]], [inbound[1]["_id"]]]


# -- 2. SIGTERM of the worker process in the middle of a job --------------------------------------

def test_sigterm_lets_the_worker_process_finish_the_job_in_hand_and_exit(
        gunicorn_server, llm, fake_twilio, mongodb_uri, tmp_path):
    first_customer, second_customer = "34600111222", "34600333444"
    llm.delay_next(3)  # the first answer takes 3 s: the worker is told to stop while waiting for it
    env = llm_env(gunicorn_server, llm, OPENAI_TIMEOUT_SECONDS="30")
    worker = start_worker(env, tmp_path)
    try:
        question = inbound_form("¿cuánto cuesta la fibra de 600?", f"whatsapp:+{first_customer}")
        assert post_signed(gunicorn_server["base_url"], question).status_code == 200
        wait_until(llm.chat_requests, "the worker to ask the LLM")
        cpu_at_signal = cpu_seconds(worker.pid)
        worker.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # Another customer writes while the worker is shutting down.
        question = inbound_form("¿cuánto cuesta la fibra de 1 Gb?", f"whatsapp:+{second_customer}")
        assert post_signed(gunicorn_server["base_url"], question).status_code == 200
        time.sleep(max(0.0, signalled + 1.5 - time.monotonic()))
        # The LLM answers ~3 s after the request: the worker is still waiting for it.
        assert worker.poll() is None, "the worker exited without finishing the job in hand"
        cpu_while_waiting = cpu_seconds(worker.pid) - cpu_at_signal
        output, _ = worker.communicate(timeout=DEADLINE_SECONDS)
        exited_after = time.monotonic() - signalled
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()

    assert worker.returncode == 0, output[-3000:]
    assert exited_after < 3 + 10, output[-3000:]
    # While one thread waits on the LLM, the process is idle (no main loop spinning on a set event).
    assert cpu_while_waiting < 0.5, f"{cpu_while_waiting:.2f} s of CPU in 1.5 s of waiting"
    (sent,) = sent_to(fake_twilio, first_customer)
    assert sent["body"] == LLM_REPLY
    store = open_store(mongodb_uri)
    now = datetime.now(timezone.utc)
    jobs = list(store.jobs.collection.find())
    assert all(job["lease_until"].replace(tzinfo=timezone.utc) <= now for job in jobs), jobs  # no lease held
    assert [job["wa_id"] for job in jobs] in ([], [second_customer])  # the finished job is gone
    second_answered = len(sent_to(fake_twilio, second_customer))  # 1 if it slipped in before the stop
    assert second_answered == (0 if jobs else 1)

    # A fresh worker answers what the stopped one left, once.
    fresh = start_worker(env, tmp_path)
    try:
        wait_for_sent(fake_twilio, 2)
        time.sleep(1)  # room for a duplicate to show up, were there one
    finally:
        output = stop(fresh)
    (sent,) = sent_to(fake_twilio, second_customer)
    assert sent["body"] == LLM_REPLY, output[-3000:]
    assert len(fake_twilio.sent_messages()) == 2
    assert store.messages.collection.count_documents({"direction": "inbound", "status": {"$ne": "answered"}}) == 0
    assert store.jobs.collection.count_documents({}) == 0


# -- 3. SIGTERM of gunicorn while webhooks are in flight -------------------------------------------

CUSTOMERS = 10
MESSAGES_EACH = 6


@pytest.mark.parametrize(
    "gunicorn_server", [{"REPLY_DEBOUNCE_SECONDS": "0", "RATE_LIMIT_PER_WA_ID": "1000 per minute"}], indirect=True,
)
def test_sigterm_of_gunicorn_mid_stream_loses_no_acknowledged_message(
        gunicorn_server, worker_process, fake_twilio, mongodb_uri):
    base_url, gunicorn = gunicorn_server["base_url"], gunicorn_server["process"]
    outcomes: dict[str, object] = {}  # MessageSid → HTTP status, "refused" or "reset"
    lock = threading.Lock()

    def form_for(number: int, seq: int) -> dict:
        return inbound_form(f"¿cuánto cuesta la fibra de 600? ({seq})", f"whatsapp:+346001{number:05d}")

    def customer(number: int) -> None:
        """One customer's messages, one after another (as a person types them)."""
        for seq in range(MESSAGES_EACH):
            form = form_for(number, seq)
            try:
                outcome: object = post_signed(base_url, form).status_code
            except requests.ConnectionError as exc:
                # Refused once gunicorn closed its sockets; reset when the connection was still
                # waiting in the listen backlog (the request sent, never read) as they closed.
                outcome = "refused" if "Connection refused" in str(exc) else "reset"
            with lock:
                outcomes[form["MessageSid"]] = outcome
            time.sleep(0.2)

    # Once the worker process answers (its model is loaded), replies go out while the stream goes on.
    assert post_signed(base_url, form_for(CUSTOMERS, 0)).status_code == 200  # one more customer, one message
    assert wait_for_sent(fake_twilio, 1), "the worker process never answered"
    with ThreadPoolExecutor(max_workers=CUSTOMERS) as pool:
        streams = [pool.submit(customer, n) for n in range(CUSTOMERS)]
        wait_until(lambda: len(outcomes) >= 2 * CUSTOMERS, "the first webhooks to be answered", every=0.01)
        gunicorn.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        for stream in streams:
            stream.result(timeout=DEADLINE_SECONDS)
    log, _ = gunicorn.communicate(timeout=GRACEFUL_TIMEOUT + 10)
    assert time.monotonic() - signalled < GRACEFUL_TIMEOUT, log[-3000:]
    assert gunicorn.returncode == 0, log[-3000:]

    assert len(outcomes) == CUSTOMERS * MESSAGES_EACH
    acknowledged = {sid for sid, outcome in outcomes.items() if outcome == 200}
    unacknowledged = {sid: outcome for sid, outcome in outcomes.items() if outcome != 200}
    assert acknowledged and unacknowledged, "the stop must fall in the middle of the stream"
    # No 5xx, no hanging request: what was not acknowledged got no answer at all. Not acknowledged
    # is not promised: Twilio retries a failed connection (see the README's connection overrides)
    # to the next gunicorn, and a retry of a message that was stored after all has the same
    # MessageSid, so it is stored and answered once.
    assert set(outcomes.values()) <= {200, "refused", "reset"}, unacknowledged

    store = open_store(mongodb_uri)
    inbound = {m["external_id"]: m for m in store.messages.collection.find({"direction": "inbound"})}
    assert acknowledged <= set(inbound), "a message acknowledged with 200 is missing from MongoDB"
    wait_until(lambda: store.messages.collection.count_documents(
        {"direction": "inbound", "status": {"$ne": "answered"}}) == 0 and store.jobs.collection.count_documents({}) == 0,
        "the worker process to answer every stored message")
    time.sleep(1)  # room for a duplicate to show up, were there one

    # Every stored message is answered exactly once, in order per customer: follow the fake
    # Twilio's sends, in the order they arrived, back to the messages they answer.
    by_id = {m["_id"]: m for m in inbound.values()}
    replies = list(store.messages.collection.find({"direction": "outbound"}))
    assert [m["status"] for m in replies] == ["queued"] * len(replies)  # all handed to Twilio
    reply_by_sid = {m["external_id"]: m for m in replies}
    sends = fake_twilio.sent_messages()
    assert sorted(m["sid"] for m in sends) == sorted(reply_by_sid)  # each part sent once
    answered_in_send_order: dict[str, list[int]] = {}
    for sent in sends:
        reply = reply_by_sid[sent["sid"]]
        if reply["part"] == 0:  # the parts of one reply answer the same messages
            answered = sorted((by_id[i] for i in reply["reply_to"]), key=lambda m: m["created_at"])
            answered_in_send_order.setdefault(reply["wa_id"], []).extend(map(sequence_number, answered))
    stored = {}
    for message in inbound.values():
        stored.setdefault(message["wa_id"], []).append(sequence_number(message))
    assert answered_in_send_order == {wa_id: sorted(numbers) for wa_id, numbers in stored.items()}
    assert fake_twilio.contract_violations == []


def sequence_number(message: dict) -> int:
    """n in a test message "… (n)": its place in the customer's stream."""
    return int(message["body"].rsplit("(", 1)[1].rstrip(")"))
