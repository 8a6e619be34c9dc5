"""`/metrics`: Prometheus' text format, behind the admin token; the counts move with what
happens, and under gunicorn they are summed over its workers and the reply worker process."""
from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from rag.answer import build_assistant, make_retriever
from tests.conftest import (
    ADMIN_TOKEN, inbound_form, post_signed, process_env, signed_post, start_worker, stop, wait_for_sent,
)
from tests.fakes.fake_openai import FakeOpenAI
from tests.processes import free_port, start_gunicorn, wait_until
from webapp.config import load_settings
from webapp.channels import build_channels
from webapp.worker import ReplyWorker

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, (label, value), …): value} from an exposition."""
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    return samples(response.get_data(as_text=True))


@pytest.fixture
def counted_worker(app, worker) -> ReplyWorker:
    """The worker counting into the app's metrics (in one process, without a multiprocess
    directory, each Metrics keeps its own counts)."""
    worker.metrics = app.extensions["whatsapp_assistant"].metrics
    return worker


def test_metrics_need_the_admin_token(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert ("whatsapp_queue_depth",) in scrape(client)


def test_a_conversation_moves_the_counters_and_the_queue(client, counted_worker, fake_twilio):
    form = inbound_form("¿Cuánto cuesta la fibra de 600 Mb?")
    assert signed_post(client, form).status_code == 200
    assert signed_post(client, form).status_code == 200  # Twilio retried it
    assert signed_post(client, inbound_form("hola", From="not-a-number")).status_code == 400
    assert signed_post(client, inbound_form("hola"), token="forged").status_code == 403

    queued = scrape(client)
    assert queued[("whatsapp_queue_depth",)] == 1 and queued[("whatsapp_queue_oldest_age_seconds",)] >= 0
    counted_worker.run_until_idle()
    after = scrape(client)

    for outcome in ("stored", "duplicate", "invalid", "forbidden"):
        assert after[("whatsapp_webhooks_total", ("channel", "twilio"), ("outcome", outcome))] == 1
    assert after[("whatsapp_answers_total", ("outcome", "answered"))] == 1
    assert after[("whatsapp_retrieval_seconds_count",)] == 1
    assert after[("whatsapp_send_seconds_count", ("channel", "twilio"))] == len(fake_twilio.sent_messages()) >= 1
    assert after[("whatsapp_reply_latency_seconds_count",)] == 1
    assert after[("whatsapp_reply_latency_seconds_bucket", ("le", "+Inf"))] == 1
    assert after[("whatsapp_queue_depth",)] == 0 and after[("whatsapp_queue_oldest_age_seconds",)] == 0


def test_twilio_refusals_are_counted_by_error_code(client, counted_worker, fake_twilio):
    fake_twilio.fail_next(400, code=63016)  # outside the 24-hour window: not retried
    signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?"))
    counted_worker.run_until_idle()

    after = scrape(client)
    assert after[("whatsapp_send_errors_total", ("channel", "twilio"), ("error_code", "63016"))] == 1
    assert after[("whatsapp_reply_latency_seconds_count",)] == 0  # nothing reached the customer


@pytest.fixture
def strict_limits(settings_overrides):
    settings_overrides.update(rate_limit_per_wa_id="2 per minute", rate_limit_admin_failures_per_ip="3 per minute")


def test_rate_limit_hits_are_counted(strict_limits, app, client):
    for n in range(3):
        signed_post(client, inbound_form(f"pregunta {n}"))
    for _ in range(4):
        client.get("/metrics", headers={"Authorization": "Bearer wrong"})

    services = app.extensions["whatsapp_assistant"]  # the admin routes refuse this address for now
    after = samples(services.metrics.exposition(services.store).decode())
    assert after[("whatsapp_rate_limit_hits_total", ("limit", "customer"))] == 1
    assert after[("whatsapp_rate_limit_hits_total", ("limit", "admin_lockout"))] == 1
    assert after[("whatsapp_webhooks_total", ("channel", "twilio"), ("outcome", "rate_limited"))] == 1


def test_llm_calls_are_timed_and_failures_counted_by_type(settings_overrides, app, client, embedder, fake_twilio):
    metrics = app.extensions["whatsapp_assistant"].metrics
    question = "¿Cuánto cuesta la fibra de 600 Mb?"
    with FakeOpenAI(reply="La fibra de 600 Mb cuesta 32 € al mes.", api_key="sk-test") as fake_openai:
        settings = load_settings(**dict(settings_overrides, openai_api_key="sk-test", openai_model="gpt-test",
                                        openai_base_url=fake_openai.api_base, openai_timeout_seconds=3))
        assistant = build_assistant(settings, make_retriever(settings, embedder), metrics.llm_callbacks())
        worker = ReplyWorker(app.extensions["whatsapp_assistant"].store, assistant, build_channels(settings),
                             settings, metrics)
        signed_post(client, inbound_form(question))
        worker.run_until_idle()
        fake_openai.fail_next(500, times=5)  # more than the client's own retry
        signed_post(client, inbound_form(question, sender="whatsapp:+34600999888"))
        worker.run_until_idle()

    after = scrape(client)
    assert after[("whatsapp_llm_seconds_count",)] == 2
    errors = {key[1][1]: value for key, value in after.items() if key[0] == "whatsapp_llm_errors_total"}
    assert errors == {"OpenAIAPIError": 1}  # langchain-openai wraps the HTTP 500
    assert after[("whatsapp_answers_total", ("outcome", "answered"))] == 1
    assert after[("whatsapp_answers_total", ("outcome", "fallback"))] == 1


def test_two_gunicorn_workers_and_the_reply_worker_add_up(mongodb_uri, sample_index_path, fake_twilio, tmp_path):
    """Every scrape, whichever gunicorn worker answers it, shows all three processes' counts."""
    bind = f"127.0.0.1:{free_port()}"
    (tmp_path / "metrics").mkdir()
    env = process_env(mongodb_uri, sample_index_path, fake_twilio.base_url, BIND=bind,
                      PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    web = start_gunicorn(env, tmp_path, tmp_path / "gunicorn.log", workers=2, timeout_seconds=60)
    worker = start_worker(env, tmp_path)
    customers = [f"whatsapp:+3460011{n:04d}" for n in range(6)]
    try:
        for number in customers:
            assert post_signed(f"http://{bind}", inbound_form("¿Cuánto cuesta la fibra de 600 Mb?", sender=number)).ok
        wait_for_sent(fake_twilio, len(customers))

        def scraped() -> dict[tuple, float]:
            response = requests.get(f"http://{bind}/metrics", headers=ADMIN, timeout=10)
            assert response.status_code == 200
            return samples(response.text)

        wait_until(lambda: scraped().get(("whatsapp_reply_latency_seconds_count",)) == len(customers),
                   "the reply worker's counts in /metrics", 30, 0.2)
        for _ in range(8):  # spread over both workers
            response = requests.get(f"http://{bind}/metrics", headers=ADMIN, timeout=10)
            figures = samples(response.text)
            assert figures[("whatsapp_webhooks_total", ("channel", "twilio"), ("outcome", "stored"))] == len(customers)
            assert figures[("whatsapp_reply_latency_seconds_count",)] == len(customers)
            assert figures[("whatsapp_answers_total", ("outcome", "answered"))] == len(customers)
        # each process (two web workers, one reply worker) has its files there
        assert len(list((tmp_path / "metrics").glob("histogram_*.db"))) == 3
    finally:
        stop(worker)
        stop(web)
