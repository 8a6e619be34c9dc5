"""`/readyz`: MongoDB, a live worker process, a non-empty index (as that worker reads it) and
Twilio's mode, each named in the JSON body; 200 only when all hold."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests

from rag import store as rag_store
from rag.ingest import ingest
from rag.store import KnowledgeIndex, describe_index, open_client, open_index
from tests.conftest import ROOT
from tests.processes import wait_until
from webapp.worker import keep_beating


def readiness(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.get_json()


def test_not_ready_until_a_worker_reports_then_ready_with_every_check_named(client, store, worker):
    status, body = readiness(client)
    assert status == 503 and body["status"] == "not ready"
    assert body["checks"]["mongodb"] == {"ok": True}
    assert body["checks"]["worker"] == {"ok": False, "error": "no worker process has reported"}
    assert body["checks"]["index"]["ok"] is False
    assert body["checks"]["twilio"] == {"ok": True, "mode": "sending"}

    chunks = worker.assistant.retriever.index.count()
    store.heartbeats.beat("host:1:abc", datetime.now(timezone.utc), chunks)
    status, body = readiness(client)

    assert status == 200 and body["status"] == "ready"
    assert body["checks"]["index"] == {"ok": True, "chunks": chunks} and chunks > 0
    assert 0 <= body["checks"]["worker"]["last_heartbeat_seconds_ago"] < 5


@pytest.mark.parametrize(("age_seconds", "chunks", "failing"), [
    (120, 10, "worker"),  # WORKER_STALE_SECONDS is 60 by default
    (1, 0, "index"),
    (1, None, "index"),
])
def test_a_stale_worker_or_an_empty_or_unreadable_index_is_not_ready(client, store, age_seconds, chunks, failing):
    store.heartbeats.beat("host:1:abc", datetime.now(timezone.utc) - timedelta(seconds=age_seconds), chunks,
                          "" if chunks is not None else "ConnectionError")
    status, body = readiness(client)

    assert status == 503
    assert [name for name, check in body["checks"].items() if not check["ok"]] == [failing]
    assert body["checks"][failing]["error"]


@pytest.fixture
def without_twilio(settings_overrides):
    settings_overrides.update(twilio_account_sid="", twilio_whatsapp_from="")


def test_dry_run_is_ready_and_says_so(without_twilio, client, store):
    store.heartbeats.beat("host:1:abc", datetime.now(timezone.utc), 10)
    status, body = readiness(client)
    assert status == 200 and body["checks"]["twilio"] == {"ok": True, "mode": "dry-run"}


def test_the_worker_heartbeat_reports_its_index_and_is_taken_back_on_stop(store, settings, embedder):
    index = open_index(settings, embedder.embedder_id)
    stop = threading.Event()
    beating = threading.Thread(target=keep_beating, args=(store, index, 0.05, stop))
    beating.start()
    try:
        beat = wait_until(store.heartbeats.latest, "a heartbeat", 10)
        assert beat["index_chunks"] == index.count() > 0 and beat["index_error"] == ""
        first = beat["beat_at"]
        status = store.heartbeats.index_status()
        assert status.pop("beat_at") >= first
        assert status == describe_index(open_client(path=settings.chroma_path), settings.chroma_collection)
        assert status["documents"] == len(list((ROOT / "sample_kb").glob("*.md")))
        wait_until(lambda: store.heartbeats.latest()["beat_at"] > first, "a renewed heartbeat", 10)
    finally:
        stop.set()
        beating.join(10)
    assert store.heartbeats.latest() is None


def test_the_heartbeat_counts_the_index_documents_again_only_after_an_ingest(store, embedder, tmp_path,
                                                                            monkeypatch):
    index = KnowledgeIndex(open_client(path=tmp_path), "knowledge", embedder.embedder_id)
    ingest([ROOT / "sample_kb" / "planes-y-precios.md"], index, embedder)
    reads = []  # the threads that read every chunk's metadata
    read_all = rag_store.read_all

    def counted_read_all(collection, include):
        reads.append(threading.current_thread().name)
        return read_all(collection, include)

    monkeypatch.setattr(rag_store, "read_all", counted_read_all)
    stop = threading.Event()
    beating = threading.Thread(target=keep_beating, args=(store, index, 0.02, stop), name="heartbeat")
    beating.start()
    try:
        first = wait_until(store.heartbeats.index_status, "a heartbeat", 10)
        assert first["documents"] == 1 and first["chunks"] > 1
        wait_until(lambda: store.heartbeats.latest()["beat_at"] > first["beat_at"], "a renewed heartbeat", 10)
        assert reads.count("heartbeat") == 1

        ingest([ROOT / "sample_kb" / "baja-del-servicio.md"], index, embedder)
        changed = wait_until(lambda: (status := store.heartbeats.index_status())["documents"] == 2 and status,
                             "the new document counted", 10)
        wait_until(lambda: store.heartbeats.latest()["beat_at"] > changed["beat_at"], "a renewed heartbeat", 10)
    finally:
        stop.set()
        beating.join(10)
    assert reads.count("heartbeat") == 2
    assert changed["revision"] != first["revision"] and changed["last_ingest_at"]


def test_no_index_status_before_a_worker_reads_the_index(store):
    assert store.heartbeats.index_status() is None
    store.heartbeats.beat("host:1:abc", datetime.now(timezone.utc), None, "ConnectionError")
    assert store.heartbeats.index_status() is None


class UnreadableIndex:
    def describe(self, known: dict | None = None) -> dict:
        raise ConnectionError("chroma server down")


def test_an_unreadable_index_is_reported_by_the_heartbeat(store):
    stop = threading.Event()
    stop.set()  # one beat, then stop; the beat is read before it is taken back
    beats = []
    store.heartbeats.beat = lambda *args: beats.append(args)
    keep_beating(store, UnreadableIndex(), 0.05, stop)
    assert beats and beats[0][2] is None and beats[0][3] == "ConnectionError"


@pytest.mark.parametrize("gunicorn_server", [{"WORKER_HEARTBEAT_SECONDS": "0.2"}], indirect=True)
def test_gunicorn_is_ready_once_the_worker_process_beats_and_not_after_it_stops(gunicorn_server, worker_process):
    url = gunicorn_server["base_url"] + "/readyz"
    body = wait_until(lambda: (r := requests.get(url, timeout=5)).status_code == 200 and r.json(),
                      "/readyz to answer 200", 90, 0.2, (worker_process,))
    assert body["checks"]["index"]["ok"] and body["checks"]["twilio"] == {"ok": True, "mode": "sending"}

    worker_process.terminate()
    worker_process.wait(30)
    refused = requests.get(url, timeout=5)
    assert refused.status_code == 503
    assert refused.json()["checks"]["worker"] == {"ok": False, "error": "no worker process has reported"}
