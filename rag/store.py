"""Store: the Chroma collection holding chunk vectors, embedded (a folder) or a Chroma server.

Both modes go through the same `KnowledgeIndex`; only the client differs.
"""
from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from rag.split import Chunk

MAX_BATCH = 5000  # Chroma refuses batches above ~5,461 items
# How many candidates HNSW explores per query. Chroma's 100, for the retriever's 50 nearest, missed
# 1 % of them on the corpus (987 chunks), and which ones changed when Chroma rebuilt its graph, so
# evaluations varied between identical runs; 400 found the exact 50 on every question.
SEARCH_EF = 400


class EmbedderMismatch(RuntimeError):
    """The index was built with another embedder; its vectors cannot be compared with ours."""


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    metadata: dict
    score: float  # cosine similarity, 1 = identical

    @property
    def source(self) -> str:
        return self.metadata.get("source", "")


def open_client(chroma_url: str = "", path: Path | None = None):
    """A Chroma server client when `chroma_url` is set, else an embedded persistent folder."""
    settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        parts = urlsplit(chroma_url)
        return chromadb.HttpClient(
            host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https", settings=settings,
        )
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


class KnowledgeIndex:
    def __init__(self, client, collection_name: str, embedder_id: str):
        self.embedder_id = embedder_id
        self._client = client
        self._collection = client.get_or_create_collection(
            collection_name,
            embedding_function=None,
            metadata={"embedder": embedder_id},
            configuration={"hnsw": {"space": "cosine", "ef_search": SEARCH_EF}},
        )
        if (self._collection.configuration_json.get("hnsw") or {}).get("ef_search", 0) < SEARCH_EF:
            # built before it was set; a process (or Chroma server) that has loaded the graph already
            # searches with the old breadth until it restarts
            self._collection.modify(configuration={"hnsw": {"ef_search": SEARCH_EF}})
        built_with = (self._collection.metadata or {}).get("embedder")
        if built_with != embedder_id:
            raise EmbedderMismatch(
                f"the index '{collection_name}' was built with embedder '{built_with}' but this "
                f"process uses '{embedder_id}': re-ingest with `python scripts/ingest_docs.py --reset …` "
                "or configure the embedder it was built with"
            )

    def count(self) -> int:
        return self._collection.count()

    def ids_by_source(self) -> dict[str, set[str]]:
        """Every chunk id in the index, grouped by source file."""
        return {source: set(chunks) for source, chunks in self.metadata_by_source().items()}

    def metadata_by_source(self) -> dict[str, dict[str, dict]]:
        """Every chunk's metadata by chunk id, grouped by source file."""
        result = read_all(self._collection, ["metadatas"])
        grouped: dict[str, dict[str, dict]] = {}
        for chunk_id, metadata in zip(result["ids"], result["metadatas"]):
            grouped.setdefault((metadata or {}).get("source", ""), {})[chunk_id] = metadata or {}
        return grouped

    def contents(self) -> tuple[list[str], list[str], list[dict]]:
        """Every chunk's id, text and metadata (what a retriever keeps in memory)."""
        result = read_all(self._collection, ["documents", "metadatas"])
        return result["ids"], result["documents"], [meta or {} for meta in result["metadatas"]]

    def revision(self) -> str:
        """Changes whenever an ingest changes the index (read fresh: another process ingests)."""
        metadata = self._client.get_collection(self._collection.name).metadata or {}
        return str(metadata.get("revision", ""))

    def describe(self, known: dict | None = None) -> dict:
        """`describe_index`'s description of this index (read fresh: another process ingests),
        counting its documents again only if an ingest changed it since `known` (see `describe`)."""
        return describe(self._client.get_collection(self._collection.name), known)

    def mark_changed(self) -> None:
        self._collection.modify(metadata={"embedder": self.embedder_id, "revision": uuid.uuid4().hex,
                                          "changed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})

    def chunks(self, ids: list[str]) -> dict[str, tuple[str, dict]]:
        """Text and metadata of each chunk with these ids that still exists."""
        result = self._collection.get(ids=ids, include=["documents", "metadatas"])
        return {i: (text, meta or {}) for i, text, meta in zip(result["ids"], result["documents"], result["metadatas"])}

    def scores(self, ids: list[str], vector: list[float]) -> dict[str, float]:
        """Cosine similarity to `vector` of each chunk with these ids that still exists."""
        result = self._collection.get(ids=ids, include=["embeddings"])
        if not result["ids"]:
            return {}
        matrix, query = np.asarray(result["embeddings"], dtype=float), np.asarray(vector, dtype=float)
        similarities = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
        return dict(zip(result["ids"], similarities.tolist()))

    def add(self, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        for start in range(0, len(chunks), MAX_BATCH):
            batch = chunks[start : start + MAX_BATCH]
            self._collection.upsert(
                ids=[c.id for c in batch],
                documents=[c.text for c in batch],
                metadatas=[c.metadata for c in batch],
                embeddings=vectors[start : start + MAX_BATCH],
            )

    def update_metadata(self, chunks: list[Chunk]) -> None:
        for start in range(0, len(chunks), MAX_BATCH):
            batch = chunks[start : start + MAX_BATCH]
            self._collection.update(ids=[c.id for c in batch], metadatas=[c.metadata for c in batch])

    def delete(self, ids: list[str]) -> None:
        for start in range(0, len(ids), MAX_BATCH):
            self._collection.delete(ids=ids[start : start + MAX_BATCH])

    def nearest(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        """The k chunks closest to `vector`, as (id, cosine similarity), best first. Only ids and
        distances: fetching texts and metadata from Chroma would triple the time, and the retriever
        already holds them."""
        result = self._collection.query(query_embeddings=[vector], n_results=k, include=["distances"])
        return [(i, 1.0 - distance) for i, distance in zip(result["ids"][0], result["distances"][0])]

def read_all(collection, include: list[str]) -> dict[str, list]:
    """Every chunk's id and `include` fields, MAX_BATCH at a time: a single `get` of a large
    collection fails in chromadb 1.5.9 ("too many SQL variables", seen at 10,000 chunks)."""
    result: dict[str, list] = {"ids": [], **{field: [] for field in include}}
    for offset in itertools.count(0, MAX_BATCH):
        page = collection.get(include=include, limit=MAX_BATCH, offset=offset)
        for field in result:
            result[field] += page[field]
        if len(page["ids"]) < MAX_BATCH:
            return result


def cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def describe_index(client, collection_name: str) -> dict | None:
    """What an admin wants to know of the index, read without opening it for an embedder: its
    chunks, how many documents they come from, the embedder that built it and when an ingest
    last changed it. None when there is no such collection."""
    try:
        return describe(client.get_collection(collection_name))
    except NotFoundError:
        return None


def describe(collection, known: dict | None = None) -> dict:
    """`describe_index`'s description of `collection`, and its `revision`. The documents of `known`,
    an earlier description, are kept when no ingest changed the collection since: counting them
    reads every chunk's metadata."""
    metadata = collection.metadata or {}
    revision = str(metadata.get("revision", ""))
    if known and known["revision"] == revision:
        documents = known["documents"]
    else:
        documents = len({(meta or {}).get("source", "") for meta in read_all(collection, ["metadatas"])["metadatas"]})
    return {"collection": collection.name, "chunks": collection.count(), "documents": documents,
            "embedder": metadata.get("embedder"), "last_ingest_at": metadata.get("changed_at"), "revision": revision}


def open_index(settings, embedder_id: str) -> KnowledgeIndex:
    client = open_client(settings.chroma_url, settings.chroma_path)
    return KnowledgeIndex(client, settings.chroma_collection, embedder_id)
