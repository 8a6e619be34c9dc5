"""Fixtures: real servers on loopback (MongoDB-protocol, fake Twilio, fake OpenAI), a real Chroma
index built with the real embedder from the bundled sample knowledge base, and the app."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer import Assistant, build_assistant, make_retriever  # noqa: E402
from rag.embed import E5Embeddings  # noqa: E402
from rag.ingest import ingest  # noqa: E402
from rag.store import open_index  # noqa: E402
from scripts import embedded_mongo  # noqa: E402
from scripts.chat import meta_delivery, meta_signature, twilio_form  # noqa: E402
from tests.fakes.fake_chatwoot import FakeChatwoot  # noqa: E402
from tests.fakes.fake_graph import FakeGraph  # noqa: E402
from tests.fakes.fake_openai import FakeOpenAI  # noqa: E402
from tests.fakes.fake_twilio import FakeTwilio  # noqa: E402
from tests.processes import app_env, free_port, start_gunicorn, wait_until  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.channels import build_channels  # noqa: E402
from webapp.config import Settings, load_settings  # noqa: E402
from webapp.db import open_store  # noqa: E402
from webapp.worker import ReplyWorker  # noqa: E402

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ADMIN_TOKEN = "test-admin-token-9876543210"
SENDER = "whatsapp:+14155238886"
WEBHOOK = "/api/v1/whatsapp/webhook"

# The suite must not pick up a developer's own configuration (each setting's name and its aliases).
for _name, _field in Settings.model_fields.items():
    for _alias in [_name, *getattr(_field.validation_alias, "choices", [])]:
        os.environ.pop(str(_alias).upper(), None)


@pytest.fixture(scope="session")
def mongo_port(tmp_path_factory) -> int:
    """One MongoDB-protocol server (SecantusDB) for the session; each test gets its own database."""
    port = free_port()
    data = tmp_path_factory.mktemp("mongo")
    process = embedded_mongo.start(port, data / "db", data / "server.log")
    embedded_mongo.wait_until_up(embedded_mongo.client_uri(port), process)
    yield port
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def mongodb_uri(mongo_port) -> str:
    return embedded_mongo.client_uri(mongo_port, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def embedder() -> E5Embeddings:
    return E5Embeddings(engines=2)


@pytest.fixture(scope="session")
def sample_index_path(tmp_path_factory, embedder) -> Path:
    """A Chroma folder holding the bundled sample knowledge base, built once per session."""
    path = tmp_path_factory.mktemp("chroma")
    settings = load_settings(_env_file=None, validate_twilio_signature=False, chroma_path=path)
    ingest([ROOT / "sample_kb"], open_index(settings, embedder.embedder_id), embedder)
    return path


@pytest.fixture
def fake_twilio():
    with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


META_APP_SECRET = "test-meta-app-secret-0123456789"
META_VERIFY_TOKEN = "test-meta-verify-token-42"
META_ACCESS_TOKEN = "test-meta-access-token-EAAG"
META_PHONE_NUMBER_ID = "106540352242922"


@pytest.fixture
def fake_graph():
    with FakeGraph(META_ACCESS_TOKEN) as server:
        yield server


CHATWOOT_TOKEN, CHATWOOT_SECRET = "test-chatwoot-token", "test-chatwoot-webhook-secret"
CHATWOOT_ACCOUNT, CHATWOOT_INBOX = 3, 9
CHATWOOT_WEBHOOK = "/api/v1/chatwoot/webhook"


@pytest.fixture
def fake_chatwoot():
    with FakeChatwoot(CHATWOOT_TOKEN, CHATWOOT_ACCOUNT, CHATWOOT_INBOX, webhook_secret=CHATWOOT_SECRET) as server:
        yield server


def chatwoot_settings(fake: FakeChatwoot) -> dict[str, str]:
    """The settings that connect the app to `fake` (as environment variables)."""
    return {"CHATWOOT_BASE_URL": fake.base_url, "CHATWOOT_ACCOUNT_ID": str(CHATWOOT_ACCOUNT),
            "CHATWOOT_INBOX_ID": str(CHATWOOT_INBOX), "CHATWOOT_API_TOKEN": CHATWOOT_TOKEN,
            "CHATWOOT_WEBHOOK_SECRET": CHATWOOT_SECRET}


KAPSO_API_KEY = "kapso-project-api-key"
D360_API_KEY = "d360-api-key-89"


@pytest.fixture
def fake_kapso():
    """Kapso's Meta-compatible API."""
    with FakeGraph(KAPSO_API_KEY, flavor="kapso") as server:
        yield server


@pytest.fixture
def fake_360dialog():
    """360dialog's Meta-like API."""
    with FakeGraph(D360_API_KEY, flavor="360dialog") as server:
        yield server


def meta_overrides(settings_overrides: dict, fake_graph: FakeGraph) -> dict:
    """Settings that also serve Meta's Cloud API, sending through `fake_graph`."""
    return dict(settings_overrides, meta_app_secret=META_APP_SECRET, meta_verify_token=META_VERIFY_TOKEN,
                meta_access_token=META_ACCESS_TOKEN, meta_phone_number_id=META_PHONE_NUMBER_ID,
                meta_graph_api_base=fake_graph.base_url)


def all_channels(settings_overrides: dict, fake_graph: FakeGraph) -> dict:
    """Every channel's webhooks served: Meta sending through `fake_graph`, Kapso and 360dialog in dry-run;
    and Chatwoot's (at an address nothing listens on: no test of these syncs)."""
    return dict(meta_overrides(settings_overrides, fake_graph), kapso_webhook_secret="test-kapso-secret",
                d360_webhook_secret="test-d360-secret", chatwoot_base_url="http://127.0.0.1:9", chatwoot_account_id=1,
                chatwoot_inbox_id=1, chatwoot_api_token="test-chatwoot-token",
                chatwoot_webhook_secret="test-chatwoot-secret")


def meta_post(client, delivery: dict, secret: str = META_APP_SECRET):
    """POST a delivery to Meta's webhook, signed as Meta signs it."""
    body = json.dumps(delivery).encode()
    return client.post("/api/v1/meta/webhook", data=body, content_type="application/json",
                       headers={"X-Hub-Signature-256": meta_signature(secret, body)})


def script_output(script: str, *args: str, timeout: float) -> str:
    """What `scripts/<script>` printed, run with `args` from the repository root, once it exited 0."""
    result = subprocess.run([sys.executable, f"scripts/{script}", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def meta_text(body: str, wa_id: str = "34600111222") -> dict:
    """A Cloud API delivery of Ana's text."""
    return meta_delivery(wa_id, META_PHONE_NUMBER_ID, {"type": "text", "text": {"body": body}}, name="Ana")


def meta_tap(button_id: str, title: str, wa_id: str = "34600111222") -> dict:
    """A Cloud API delivery of Ana tapping a reply button."""
    return meta_delivery(wa_id, META_PHONE_NUMBER_ID, {"type": "interactive", "interactive": {
        "type": "button_reply", "button_reply": {"id": button_id, "title": title}}}, name="Ana")


def meta_said(client, worker, delivery: dict) -> None:
    """Post a Cloud API delivery, and let the worker answer it."""
    assert meta_post(client, delivery).status_code == 200
    worker.run_until_idle()


@pytest.fixture
def fake_openai():
    """An OpenAI-compatible server on loopback; tests that answer with the model use it through
    `llm_overrides`."""
    with FakeOpenAI(reply="La fibra de 600 Mb cuesta **32 €** al mes.", api_key="sk-test") as server:
        yield server


def llm_overrides(settings_overrides: dict, fake_openai: FakeOpenAI) -> dict:
    """Settings that answer with the model, served by `fake_openai`."""
    return dict(settings_overrides, openai_api_key="sk-test", openai_base_url=fake_openai.api_base,
                openai_model="gpt-test", openai_timeout_seconds=3)


LONG_SENTENCES = [
    "La fibra de 600 Mb cuesta 32 € al mes e incluye el router Wi-Fi 6 sin coste adicional.",
    "¿Necesitas más velocidad? La fibra de 1 Gb cuesta 39 € al mes y es simétrica.",
    "La instalación es gratuita y un técnico te visita en un plazo medio de cinco días laborables.",
    "¡Recuerda que puedes cambiar de tarifa desde la app cuando quieras, sin coste!",
]


def long_answer(chars: int = 5000) -> str:
    """A model answer of about `chars` characters in numbered paragraphs (several WhatsApp messages)."""
    paragraphs, total, i = [], 0, 0
    while total < chars:
        paragraph = " ".join(LONG_SENTENCES[(i + j) % len(LONG_SENTENCES)] for j in range(3))
        paragraphs.append(f"**Punto {i + 1}.** {paragraph}")
        total += len(paragraphs[-1]) + 2
        i += 1
    return "\n\n".join(paragraphs)


@pytest.fixture
def settings_overrides(mongodb_uri, sample_index_path, fake_twilio) -> dict:
    """Settings for one test; tests adjust them before the `settings` fixture is first used."""
    return dict(
        _env_file=None,
        mongodb_uri=mongodb_uri,
        chroma_path=sample_index_path,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_whatsapp_from=SENDER,
        twilio_api_base=fake_twilio.base_url,
        twilio_content_api_base=fake_twilio.base_url,
        twilio_timeout_seconds=5,
        public_base_url="http://localhost",  # where the test client sends, so the URL Twilio signs
        admin_token=ADMIN_TOKEN,
        company_name="Fibra Clara",
        worker_poll_seconds=0.05,
        reply_debounce_seconds=0,  # tests that want a debounce set one
        bot_config_refresh_seconds=0,  # a settings change is seen by the next job
    )


@pytest.fixture
def settings(settings_overrides) -> Settings:
    return load_settings(**settings_overrides)


@pytest.fixture
def app(settings):
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    services = app.extensions["whatsapp_assistant"]
    services.store.client.drop_database(services.store.db.name)
    services.store.client.drop_database(f"{services.store.db.name}_ratelimits")
    services.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def store(app):
    return app.extensions["whatsapp_assistant"].store


def make_assistant(settings: Settings, embedder) -> Assistant:
    """The real assistant, sharing the session's embedder (the model loads once per process)."""
    return build_assistant(settings, make_retriever(settings, embedder))


@pytest.fixture
def worker(app, settings, embedder) -> ReplyWorker:
    store = app.extensions["whatsapp_assistant"].store
    return ReplyWorker(store, make_assistant(settings, embedder),
                       build_channels(settings, store.sessions, store.twilio_contents), settings)


def work_until_done(worker: ReplyWorker, seconds: float = 10) -> None:
    """Run `worker` until no conversation has work left, due or postponed (TimeoutError after `seconds`)."""
    def done() -> bool:
        worker.run_until_idle()
        return worker.store.jobs.collection.count_documents({}) == 0

    wait_until(done, "every conversation's work done", seconds)


def signed_post(client, form: dict, signed_url: str | None = None, token: str = AUTH_TOKEN, path: str = WEBHOOK):
    """POST a form to `path` (the webhook), signed as Twilio signs it (for `signed_url`, by default
    the URL the test client calls, with `token`)."""
    signature = RequestValidator(token).compute_signature(signed_url or "http://localhost" + path, form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def inbound_form(body: str, sender: str = "whatsapp:+34600111222", **extra) -> dict:
    """A webhook form as Twilio sends it (the same builder scripts/chat.py uses)."""
    return {**twilio_form(sender, SENDER, body, "Ana", ACCOUNT_SID), **extra}


# -- The app as separate processes (gunicorn, the worker process), for tests/test_gunicorn.py and
#    tests/test_shutdown_and_timeouts.py ----------------------------------------------------------

DEADLINE_SECONDS = 60


def process_env(mongodb_uri: str, chroma_path, twilio_base: str, **extra: str) -> dict[str, str]:
    """The processes' settings; the public URL Twilio signs is where tests reach gunicorn (BIND)."""
    public = {"PUBLIC_BASE_URL": f"http://{extra['BIND']}"} if "BIND" in extra else {}
    settings = {"ADMIN_TOKEN": ADMIN_TOKEN, "WORKER_POLL_SECONDS": "0.05", "REPLY_DEBOUNCE_SECONDS": "0", **public,
                **extra}
    return app_env(mongodb_uri, chroma_path, twilio_base, ACCOUNT_SID, AUTH_TOKEN, SENDER, **settings)


def stop(process: subprocess.Popen, log_file: Path | None = None) -> str:
    """Stop a process (once) and return what it printed (to its pipe, or to `log_file`)."""
    if process.returncode is None:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    else:
        output = ""
    return log_file.read_text(errors="replace") if log_file else output or ""


@pytest.fixture
def gunicorn_server(mongodb_uri, sample_index_path, fake_twilio, tmp_path, request):
    """gunicorn with two workers on a free port, once both have built the app; yields its
    base_url, env, process, channel and log (its output). Runs from tmp_path so a developer's own
    .env in the repo is not read. A param of settings adds to them; with
    "channel": "meta", Meta's Cloud API is served too, sending through the `fake_graph` fixture;
    with "chatwoot": True, conversations are mirrored to the `fake_chatwoot` fixture, whose webhooks
    come to this server."""
    port = free_port()
    extra = dict(getattr(request, "param", {}))
    channel = extra.pop("channel", "twilio")
    if channel == "meta":
        graph = request.getfixturevalue("fake_graph")
        extra.update(META_APP_SECRET=META_APP_SECRET, META_VERIFY_TOKEN=META_VERIFY_TOKEN,
                     META_ACCESS_TOKEN=META_ACCESS_TOKEN, META_PHONE_NUMBER_ID=META_PHONE_NUMBER_ID,
                     META_GRAPH_API_BASE=graph.base_url)
    if extra.pop("chatwoot", False):
        chatwoot = request.getfixturevalue("fake_chatwoot")
        chatwoot.webhook_url = f"http://127.0.0.1:{port}{CHATWOOT_WEBHOOK}"
        extra.update(chatwoot_settings(chatwoot))
    env = process_env(mongodb_uri, sample_index_path, fake_twilio.base_url, BIND=f"127.0.0.1:{port}",
                      WEB_CONCURRENCY="2", **extra)
    log_file = tmp_path / "gunicorn.log"
    process = start_gunicorn(env, tmp_path, log_file, workers=2, timeout_seconds=DEADLINE_SECONDS)
    try:
        yield {"base_url": f"http://127.0.0.1:{port}", "env": env, "process": process, "channel": channel,
               "log": log_file}
    finally:
        stop(process)
    store = open_store(mongodb_uri)
    store.client.drop_database(store.db.name)


def start_worker(env: dict[str, str], cwd) -> subprocess.Popen:
    """`python -m webapp.worker` with `env`; its output is kept for `stop` (or `communicate`)."""
    return subprocess.Popen([sys.executable, "-m", "webapp.worker"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def worker_process(gunicorn_server, tmp_path):
    process = start_worker(gunicorn_server["env"], tmp_path)
    yield process
    stop(process)


def post_signed(base_url: str, form: dict) -> requests.Response:
    url = base_url + WEBHOOK
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    return requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)


def post_as(server: dict, text: str, sender: str = "whatsapp:+34600111222",
            delivery: dict | None = None) -> requests.Response:
    """A customer's message posted over HTTP to `server` (a `gunicorn_server`) as its channel's
    provider posts it: Twilio's signed form, or Meta's signed delivery (`delivery`: a given one)."""
    if server["channel"] == "twilio":
        return post_signed(server["base_url"], inbound_form(text, sender=sender))
    delivery = delivery or meta_delivery(sender.removeprefix("whatsapp:+"), META_PHONE_NUMBER_ID,
                                         {"type": "text", "text": {"body": text}})
    body = json.dumps(delivery).encode()
    return requests.post(server["base_url"] + "/api/v1/meta/webhook", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(META_APP_SECRET, body)})


def sent_on(server: dict, fake_twilio, fake_graph) -> list[dict]:
    """What the server's channel has sent so far, each with its `body`."""
    return (fake_twilio if server["channel"] == "twilio" else fake_graph).sent_messages()


def wait_for_sent(fake_twilio, count: int) -> list[dict]:
    """The messages sent once there are at least `count` (TimeoutError after DEADLINE_SECONDS)."""
    wait_until(lambda: len(fake_twilio.sent_messages()) >= count, f"{count} messages sent", DEADLINE_SECONDS, 0.1)
    return fake_twilio.sent_messages()


# -- A real browser (Debian's headless Chromium, tests/browser.py), for the console's pages ----------

from tests.browser import open_browser, skip_without_browser  # noqa: E402


@pytest.fixture
def browser():
    """A desktop's browser: a 1280x900 viewport, asking for Spanish."""
    skip_without_browser()
    with open_browser(1280, 900) as driver:
        yield driver


@pytest.fixture
def phone_browser():
    """A phone's browser: a 390x844 touch viewport and a mobile user agent, asking for Spanish."""
    skip_without_browser()
    with open_browser(390, 844, mobile=True) as driver:
        yield driver
