"""MongoDB stops while messages arrive: the webhook answers 503 (nothing acknowledged, so Twilio
or Meta retries), and once the database is back the retried message is stored and answered once."""
from __future__ import annotations

import subprocess

import pytest

from scripts import embedded_mongo
from scripts.chat import meta_delivery
from tests.conftest import META_PHONE_NUMBER_ID, inbound_form, meta_overrides, meta_post, signed_post
from tests.processes import free_port


@pytest.fixture
def database(tmp_path):
    """A MongoDB-protocol server of this test's own, which the test stops and restarts."""
    port = free_port()
    uri = embedded_mongo.client_uri(port, "outage")

    def start() -> subprocess.Popen:
        process = embedded_mongo.start(port, tmp_path / "db", tmp_path / "server.log")
        embedded_mongo.wait_until_up(uri, process)
        return process

    server = {"process": start(), "uri": uri, "start": start}
    yield server
    server["process"].kill()
    server["process"].wait(timeout=10)


@pytest.fixture
def settings_overrides(settings_overrides, database):
    return dict(settings_overrides, mongodb_uri=database["uri"], mongodb_timeout_seconds=1)


def stop(database) -> None:
    database["process"].terminate()
    database["process"].wait(timeout=10)


def test_webhook_answers_503_while_the_database_is_down_and_keeps_the_retry(client, store, worker, database,
                                                                          fake_twilio):
    form = inbound_form("a qué hora abre la tienda?")
    stop(database)

    refused = signed_post(client, form)

    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert "database" in refused.get_json()["error"]

    database["process"] = database["start"]()
    for _ in range(2):  # Twilio's retry, and one more for good measure
        assert signed_post(client, form).status_code == 200
    worker.run_until_idle()

    assert store.messages.collection.count_documents({"direction": "inbound"}) == 1
    assert len(fake_twilio.sent_messages()) == 1


def test_readyz_is_503_while_the_database_is_down_and_200_when_it_is_back(client, store, database):
    from datetime import datetime, timezone

    store.heartbeats.beat("host:1:abc", datetime.now(timezone.utc), 10)
    assert client.get("/readyz").status_code == 200
    stop(database)

    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.get_json()["checks"]["mongodb"] == {"ok": False, "error": "no answer"}

    database["process"] = database["start"]()
    store.heartbeats.beat("host:1:abc", datetime.now(timezone.utc), 10)
    assert client.get("/readyz").status_code == 200


@pytest.fixture
def with_meta(settings_overrides, fake_graph):
    settings_overrides.update(meta_overrides(settings_overrides, fake_graph))


def test_a_meta_delivery_is_refused_while_the_database_is_down_and_answered_once_when_redelivered(
        with_meta, client, store, worker, database, fake_graph):
    """Meta redelivers what did not get a 200, for days: the same delivery, stored once."""
    delivery = meta_delivery("34600111222", META_PHONE_NUMBER_ID, {"type": "text", "text": {"body": "a qué hora abre?"}})
    stop(database)
    assert meta_post(client, delivery).status_code == 503

    database["process"] = database["start"]()
    for _ in range(2):
        assert meta_post(client, delivery).status_code == 200
    worker.run_until_idle()

    assert store.messages.collection.count_documents({"direction": "inbound"}) == 1
    assert len(fake_graph.sent_messages()) == 1
