"""The app as it runs in production: gunicorn (two workers) and the worker process, as separate
processes talking over real sockets to the MongoDB-protocol server and the fake Twilio server."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from twilio.request_validator import RequestValidator

from tests.conftest import (
    ACCOUNT_SID, ADMIN_TOKEN, AUTH_TOKEN, ROOT, SENDER, WEBHOOK, free_port, inbound_form,
)
from tests.fakes.fake_openai import FakeOpenAI
from webapp.db import open_store

DEADLINE_SECONDS = 60


def process_env(mongodb_uri: str, chroma_path, twilio_base: str, **extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        MONGODB_URI=mongodb_uri,
        CHROMA_PATH=str(chroma_path),
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_WHATSAPP_FROM=SENDER,
        TWILIO_API_BASE=twilio_base,
        ADMIN_TOKEN=ADMIN_TOKEN,
        COMPANY_NAME="Fibra Clara",
        WORKER_POLL_SECONDS="0.05",
        REPLY_DEBOUNCE_SECONDS="0",
    )
    env.update(extra)
    return env


def wait_for_http(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited during start-up"
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:  # not listening yet, or a worker still booting
            time.sleep(0.2)
    raise TimeoutError(url)


def stop(process: subprocess.Popen) -> str:
    """Stop a process (once) and return what it printed."""
    if process.returncode is not None:
        return ""
    process.terminate()
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output or ""


@pytest.fixture
def gunicorn_server(mongodb_uri, sample_index_path, fake_twilio, tmp_path, request):
    """gunicorn with two workers on a free port; yields (base_url, env). Runs from tmp_path so
    a developer's own .env in the repo is not read."""
    port = free_port()
    extra = getattr(request, "param", {})
    env = process_env(mongodb_uri, sample_index_path, fake_twilio.base_url, BIND=f"127.0.0.1:{port}",
                      WEB_CONCURRENCY="2", **extra)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--access-logformat", "pid=%(p)s %(s)s",
         "wsgi:app"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base_url + "/", process)
        yield {"base_url": base_url, "env": env, "process": process}
    finally:
        stop(process)
    store = open_store(mongodb_uri)
    store.client.drop_database(store.db.name)


@pytest.fixture
def worker_process(gunicorn_server, tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "webapp.worker"], cwd=tmp_path, env=gunicorn_server["env"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield process
    stop(process)


def post_signed(base_url: str, form: dict) -> requests.Response:
    url = base_url + WEBHOOK
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    return requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)


def wait_for_sent(fake_twilio, count: int) -> list[dict]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline and len(fake_twilio.sent_messages()) < count:
        time.sleep(0.1)
    return fake_twilio.sent_messages()


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


@pytest.mark.parametrize("gunicorn_server", [{"RATE_LIMIT_PER_WA_ID": "5 per minute"}], indirect=True)
def test_rate_limit_holds_across_two_gunicorn_workers(gunicorn_server, mongodb_uri):
    forms = [inbound_form(f"mensaje {n}") for n in range(20)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda form: post_signed(gunicorn_server["base_url"], form).status_code, forms))
    assert statuses == [200] * 20

    store = open_store(mongodb_uri)
    counts = {s: store.messages.collection.count_documents({"direction": "inbound", "status": s})
              for s in ("received", "rate_limited")}
    log = stop(gunicorn_server["process"])
    pids = set(re.findall(r"pid=<(\d+)> 200", log))
    assert len(pids) == 2, f"both gunicorn workers must have served requests, saw {pids} in {log[-2000:]}"
    assert counts == {"received": 5, "rate_limited": 15}


def test_the_same_webhook_delivered_three_times_at_once_is_answered_once(gunicorn_server, worker_process,
                                                                        fake_twilio, mongodb_uri):
    form = inbound_form("¿cuánto cuesta la fibra de 600?")  # one MessageSid, as Twilio's retries carry
    with ThreadPoolExecutor(max_workers=3) as pool:
        statuses = list(pool.map(lambda _: post_signed(gunicorn_server["base_url"], form).status_code, range(3)))
    assert statuses == [200] * 3  # a duplicate is acknowledged too, or Twilio would keep retrying

    (sent,) = wait_for_sent(fake_twilio, 1)
    time.sleep(1)  # room for a duplicate to show up, were there one
    assert len(fake_twilio.sent_messages()) == 1 and "32 €" in sent["body"]
    assert open_store(mongodb_uri).messages.collection.count_documents({"direction": "inbound"}) == 1


@pytest.fixture
def slow_llm():
    with FakeOpenAI(reply="La fibra de 600 Mb cuesta 32 € al mes.", api_key="sk-test") as server:
        server.delay_next(30)  # the first answer hangs: the worker is killed while waiting for it
        yield server


def test_a_worker_killed_mid_job_is_taken_over_after_its_lease(gunicorn_server, slow_llm, fake_twilio, tmp_path):
    env = dict(gunicorn_server["env"], OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=slow_llm.api_base,
               OPENAI_TIMEOUT_SECONDS="60", WORKER_LEASE_SECONDS="5")
    first = subprocess.Popen([sys.executable, "-m", "webapp.worker"], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert post_signed(gunicorn_server["base_url"], inbound_form("¿cuánto cuesta la fibra de 600?")).status_code == 200
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not slow_llm.chat_requests() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert slow_llm.chat_requests(), "the first worker never asked the LLM"
        first.kill()  # SIGKILL: no chance to release its claim
        first.wait(timeout=10)

        second = subprocess.Popen([sys.executable, "-m", "webapp.worker"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            (sent,) = wait_for_sent(fake_twilio, 1)
            time.sleep(1)  # room for a duplicate to show up, were there one
        finally:
            stop(second)
    finally:
        if first.poll() is None:
            first.kill()
    assert "32 €" in sent["body"]
    assert len(fake_twilio.sent_messages()) == 1
    assert len(slow_llm.chat_requests()) == 2  # asked again by the second worker
