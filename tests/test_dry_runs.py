"""Dry runs: a question asked from the console is answered by the worker process as a customer's
would be, with the passages retrieved and their scores, and stored for the console; nothing is
sent, and no conversation, message or event is touched."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from bson import ObjectId

from rag.language import phrase
from tests.processes import wait_until
from webapp.worker import PASSAGE_CHARS, keep_answering_dry_runs

NOW = datetime.now(timezone.utc).replace(microsecond=0)  # the database keeps milliseconds


@contextmanager
def answering(store, assistant, bot_config):
    """The worker's dry-run loop, polling every 0.05 s, for the block's duration."""
    stop = threading.Event()
    loop = threading.Thread(target=keep_answering_dry_runs, args=(store, assistant, bot_config, 0.05, stop))
    loop.start()
    try:
        yield
    finally:
        stop.set()
        loop.join(30)
    assert not loop.is_alive()


def ended(store, dry_run_id: str) -> dict:
    """The dry run once the loop has answered it or given up (TimeoutError after 60 s)."""
    return wait_until(lambda: (found := store.dry_runs.get(dry_run_id))["status"] != "pending" and found,
                      "the dry run answered", 60)


def test_a_dry_run_is_answered_with_its_passages_and_scores_and_nothing_is_sent(store, worker, fake_twilio):
    known = store.dry_runs.ask("cuánto cuesta la fibra de 600?", NOW)
    unknown = store.dry_runs.ask("¿tenéis seguro de coche?", NOW)
    assert store.dry_runs.get(known)["status"] == "pending"

    with answering(store, worker.assistant, worker.bot_config):
        answered, not_known = ended(store, known), ended(store, unknown)

    assert answered["status"] == "answered" and answered["question"] == "cuánto cuesta la fibra de 600?"
    answer = answered["answer"]
    assert answer["outcome"] == "answered" and answer["language"] == "es" and "32 €" in answer["text"]
    assert answer["sources"][0] == "planes-y-precios.md"
    passages = answer["passages"]
    assert len(passages) == worker.settings.retrieval_k
    assert [p["score"] for p in passages] == sorted((p["score"] for p in passages), reverse=True)
    assert passages[0]["source"] == "planes-y-precios.md" and passages[0]["title"] == "Planes y precios"
    assert all(0 < len(p["text"]) <= PASSAGE_CHARS for p in passages)
    assert 0 < answer["retrieval_seconds"] <= answer["answer_seconds"]

    assert not_known["answer"]["outcome"] == "unknown" and not_known["answer"]["sources"] == []
    assert not_known["answer"]["text"] == phrase("dont_know", "es") and not_known["answer"]["passages"]

    assert fake_twilio.requests == []
    for collection in ("messages", "events", "conversations", "whatsapp_sessions", "reply_jobs"):
        assert store.db[collection].count_documents({}) == 0, collection


def test_a_dry_run_answer_is_capped_as_the_bot_settings_say(store, worker):
    current = worker.bot_config.current().model_dump()
    store.bot_config.save({**current, "max_answer_chars": 200}, NOW)
    question = "cómo doy de baja el servicio"
    assert len(worker.assistant.answer(question).text) > 200
    dry_run_id = store.dry_runs.ask(question, NOW)

    with answering(store, worker.assistant, worker.bot_config):
        answer = ended(store, dry_run_id)["answer"]

    assert answer["outcome"] == "answered" and 0 < len(answer["text"]) <= 200


class FailingOnce:
    """The real assistant, but for the question "boom": it fails as an unreachable embedder would."""

    def __init__(self, assistant):
        self.assistant = assistant

    def answer(self, question, history=(), persona=None):
        if question == "boom":
            raise ConnectionError("embedding server down")
        return self.assistant.answer(question, history, persona)


def test_a_failing_answer_marks_the_dry_run_failed_and_the_loop_carries_on(store, worker):
    failing = store.dry_runs.ask("boom", NOW)
    later = store.dry_runs.ask("a que hora abren las tiendas?", NOW + timedelta(seconds=1))

    with answering(store, FailingOnce(worker.assistant), worker.bot_config):
        failed, answered = ended(store, failing), ended(store, later)

    assert failed["status"] == "failed" and failed["error"] == "ConnectionError" and "answer" not in failed
    assert answered["status"] == "answered" and answered["answer"]["sources"][0] == "atencion-al-cliente.md"


def test_a_malformed_or_unknown_id_finds_nothing(store):
    for dry_run_id in ("", "nope", "0" * 23, "z" * 24, "abcdefghijkl", str(ObjectId())):
        assert store.dry_runs.get(dry_run_id) is None


def test_a_dry_run_is_claimed_once_until_its_lease_expires_and_never_once_answered(store):
    dry_run_id = store.dry_runs.ask("cuánto cuesta la fibra?", NOW)

    assert store.dry_runs.claim("worker-a", NOW, 60)["worker"] == "worker-a"
    assert store.dry_runs.claim("worker-b", NOW + timedelta(seconds=59), 60) is None
    taken_over = store.dry_runs.claim("worker-b", NOW + timedelta(seconds=61), 60)
    assert str(taken_over["_id"]) == dry_run_id and taken_over["worker"] == "worker-b"

    store.dry_runs.finish(dry_run_id, {"text": "32 €"}, NOW + timedelta(seconds=62))
    assert store.dry_runs.claim("worker-c", NOW + timedelta(hours=1), 60) is None
    finished = store.dry_runs.get(dry_run_id)
    assert finished["status"] == "answered" and finished["answer"] == {"text": "32 €"}
    assert finished["answered_at"] == NOW + timedelta(seconds=62)


def test_the_oldest_pending_dry_run_is_claimed_first(store):
    newer = store.dry_runs.ask("segunda", NOW + timedelta(seconds=1))
    older = store.dry_runs.ask("primera", NOW)

    assert str(store.dry_runs.claim("worker-a", NOW + timedelta(seconds=2), 60)["_id"]) == older
    assert str(store.dry_runs.claim("worker-a", NOW + timedelta(seconds=2), 60)["_id"]) == newer
