"""Chroma in server mode (`CHROMA_URL`): the same ingest and retrieval code against a real
`chroma run` process, as production runs it."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from rag.ingest import ingest
from rag.retrieve import Retriever
from rag.store import EmbedderMismatch, open_index
from tests.conftest import ROOT
from tests.processes import CHROMA_CLI, free_port, start_chroma_server
from webapp.config import load_settings


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    if not CHROMA_CLI.exists() and not shutil.which("chroma"):
        pytest.skip("the chroma CLI is not installed")
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    process = start_chroma_server(folder / "data", port, folder / "server.log")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def test_ingest_and_retrieve_through_a_chroma_server(chroma_url, embedder):
    settings = load_settings(_env_file=None, validate_twilio_signature=False, chroma_url=chroma_url,
                             chroma_collection="server-mode")
    index = open_index(settings, embedder.embedder_id)

    first = ingest([ROOT / "sample_kb"], index, embedder)
    again = ingest([ROOT / "sample_kb"], index, embedder)

    assert first.failures == [] and len(first.added) == 8 and index.count() == first.chunks_embedded
    assert again.chunks_embedded == 0 and len(again.unchanged) == 8
    hits = Retriever(index, embedder, k=3, threshold=0.0).search("¿a qué hora abre el teléfono los domingos?")
    assert hits[0].source == "atencion-al-cliente.md"
    # a second client (another process in production) sees the same collection
    assert open_index(settings, embedder.embedder_id).count() == index.count()


def test_server_collection_refuses_another_embedder(chroma_url, embedder):
    settings = load_settings(_env_file=None, validate_twilio_signature=False, chroma_url=chroma_url,
                             chroma_collection="server-mismatch")
    open_index(settings, embedder.embedder_id)
    with pytest.raises(EmbedderMismatch, match="re-ingest"):
        open_index(settings, "openai:text-embedding-3-small")


def test_the_nearest_chunks_are_the_exact_nearest_also_in_an_index_built_before(tmp_path):
    """HNSW is approximate: with Chroma's default search breadth (an index built by an earlier
    version) some of the 50 nearest were missed, and which ones changed when Chroma rebuilt its
    graph. 3,000 random vectors (past Chroma's 1,000-item threshold for building the graph)."""
    import numpy as np
    from chromadb.api.shared_system_client import SharedSystemClient

    from rag.store import KnowledgeIndex, open_client

    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(3000, 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    built_before = open_client(path=tmp_path / "chroma").get_or_create_collection(
        "large", metadata={"embedder": "test-embedder"}, configuration={"hnsw": {"space": "cosine"}})
    built_before.add(ids=[f"c{i}" for i in range(len(vectors))], embeddings=vectors.tolist())
    SharedSystemClient.clear_system_cache()  # as a new process: the graph is loaded afresh

    index = KnowledgeIndex(open_client(path=tmp_path / "chroma"), "large", "test-embedder")
    for query in rng.normal(size=(20, 32)):
        exact = {f"c{i}" for i in np.argsort(-(vectors @ query))[:50]}
        assert {chunk_id for chunk_id, _ in index.nearest(query.tolist(), 50)} == exact
