"""The app as it runs in production: gunicorn (two workers) and the worker process, as separate
processes talking over real sockets to the MongoDB-protocol server and the fake Twilio server."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from scripts.chat import meta_delivery
from tests.conftest import (
    DEADLINE_SECONDS, META_PHONE_NUMBER_ID, ROOT, SENDER, WEBHOOK, inbound_form, post_as, post_signed, sent_on, stop,
    wait_for_sent,
)
from tests.fakes.fake_openai import FakeOpenAI
from tests.processes import json_lines, wait_until
from webapp.db import open_store


def test_message_through_gunicorn_is_answered_by_the_worker_process(gunicorn_server, worker_process, fake_twilio):
    started = time.monotonic()
    response = post_signed(gunicorn_server["base_url"], inbound_form("¿cuánto cuesta la fibra de 600?"))
    assert response.status_code == 200

    (sent,) = wait_for_sent(fake_twilio, 1)
    assert sent["to"] == "whatsapp:+34600111222" and sent["from_"] == SENDER
    assert "32 €" in sent["body"]
    assert time.monotonic() - started < DEADLINE_SECONDS
    assert fake_twilio.contract_violations == []


def test_chat_script_talks_to_the_running_bot(gunicorn_server, worker_process, fake_twilio, tmp_path):
    chat = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chat.py"), "--url", gunicorn_server["base_url"] + WEBHOOK,
         "--timeout", "30"],
        input="hola\n¿cuánto cuesta la fibra de 1 Gb?\n", capture_output=True, text=True, cwd=tmp_path,
        env=gunicorn_server["env"], timeout=DEADLINE_SECONDS * 2,
    )

    assert chat.returncode == 0, chat.stderr
    replies = re.findall(r"^bot(?: \[\d/\d\])?> (.*)$", chat.stdout, flags=re.MULTILINE)
    assert len(replies) == 2
    assert "Fibra Clara" in replies[0]
    assert "39 €" in chat.stdout.split("bot> ", 2)[2]
    assert [m["body"] for m in fake_twilio.sent_messages()][1].startswith(replies[1])


@pytest.mark.parametrize("gunicorn_server", [{"META_APP_SECRET": "local-meta-secret", "META_VERIFY_TOKEN": "local-verify",
                                              "KAPSO_WEBHOOK_SECRET": "local-kapso-secret",
                                              "D360_WEBHOOK_SECRET": "local-d360-secret"}], indirect=True)
@pytest.mark.parametrize("channel", ["meta", "kapso", "360dialog"])
def test_chat_script_talks_to_the_bot_as_each_cloud_api_provider_would(gunicorn_server, worker_process, fake_twilio,
                                                              tmp_path, channel):
    """Their channels in dry-run (no access token or API key), as `make run` starts them: replies
    stored, not sent."""
    chat = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chat.py"), "--channel", channel,
         "--url", f"{gunicorn_server['base_url']}/api/v1/{channel}/webhook", "--timeout", "30"],
        input="¿cuánto cuesta la fibra de 1 Gb?\n", capture_output=True, text=True, cwd=tmp_path,
        env=gunicorn_server["env"], timeout=DEADLINE_SECONDS * 2,
    )

    assert chat.returncode == 0, chat.stderr
    assert "39 €" in chat.stdout.split("bot> ", 1)[1]
    assert fake_twilio.sent_messages() == []  # their customer, answered on their channel


@pytest.mark.parametrize("gunicorn_server", [{"RATE_LIMIT_PER_WA_ID": "5 per minute"}], indirect=True)
def test_rate_limit_holds_across_two_gunicorn_workers(gunicorn_server, mongodb_uri):
    forms = [inbound_form(f"mensaje {n}") for n in range(20)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda form: post_signed(gunicorn_server["base_url"], form).status_code, forms))
    assert statuses == [200] * 20

    store = open_store(mongodb_uri)
    counts = {s: store.messages.collection.count_documents({"direction": "inbound", "status": s})
              for s in ("received", "rate_limited")}
    log = stop(gunicorn_server["process"], gunicorn_server["log"])
    pids = {line["pid"] for line in json_lines(log) if line["logger"] == "gunicorn.access" and line["status"] == 200}
    assert len(pids) == 2, f"both gunicorn workers must have served requests, saw {pids} in {log[-2000:]}"
    assert counts == {"received": 5, "rate_limited": 15}


QUESTION = "¿cuánto cuesta la fibra de 600?"
CHANNELS = pytest.mark.parametrize("gunicorn_server", [{}, {"channel": "meta"}], indirect=True,
                                   ids=["twilio", "meta"])


@CHANNELS
def test_the_same_webhook_delivered_three_times_at_once_is_answered_once(gunicorn_server, worker_process,
                                                                        fake_twilio, fake_graph, mongodb_uri):
    # one MessageSid (wamid), as the provider's retries carry
    delivery = meta_delivery("34600111222", META_PHONE_NUMBER_ID, {"type": "text", "text": {"body": QUESTION}})
    form = inbound_form(QUESTION)
    post = (lambda: post_signed(gunicorn_server["base_url"], form)) if gunicorn_server["channel"] == "twilio" else \
        (lambda: post_as(gunicorn_server, QUESTION, delivery=delivery))
    with ThreadPoolExecutor(max_workers=3) as pool:
        statuses = list(pool.map(lambda _: post().status_code, range(3)))
    assert statuses == [200] * 3  # a duplicate is acknowledged too, or the provider would keep retrying

    wait_until(lambda: sent_on(gunicorn_server, fake_twilio, fake_graph), "a reply", DEADLINE_SECONDS, 0.1)
    time.sleep(1)  # room for a duplicate to show up, were there one
    (sent,) = sent_on(gunicorn_server, fake_twilio, fake_graph)
    assert "32 €" in sent["body"]
    assert open_store(mongodb_uri).messages.collection.count_documents({"direction": "inbound"}) == 1


@pytest.fixture
def slow_llm():
    with FakeOpenAI(reply="La fibra de 600 Mb cuesta 32 € al mes.", api_key="sk-test") as server:
        server.delay_next(30)  # the first answer hangs: the worker is killed while waiting for it
        yield server


@CHANNELS
def test_a_worker_killed_mid_job_is_taken_over_after_its_lease(gunicorn_server, slow_llm, fake_twilio, fake_graph,
                                                               tmp_path):
    env = dict(gunicorn_server["env"], OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=slow_llm.api_base,
               OPENAI_TIMEOUT_SECONDS="60", WORKER_LEASE_SECONDS="5")
    first = subprocess.Popen([sys.executable, "-m", "webapp.worker"], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert post_as(gunicorn_server, QUESTION).status_code == 200
        wait_until(slow_llm.chat_requests, "the first worker to ask the LLM", DEADLINE_SECONDS, 0.1, (first,))
        first.kill()  # SIGKILL: no chance to release its claim
        first.wait(timeout=10)

        second = subprocess.Popen([sys.executable, "-m", "webapp.worker"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: sent_on(gunicorn_server, fake_twilio, fake_graph), "a reply", DEADLINE_SECONDS, 0.1)
            time.sleep(1)  # room for a duplicate to show up, were there one
        finally:
            stop(second)
    finally:
        if first.poll() is None:
            first.kill()
    (sent,) = sent_on(gunicorn_server, fake_twilio, fake_graph)
    assert "32 €" in sent["body"]
    assert len(slow_llm.chat_requests()) == 2  # asked again by the second worker
