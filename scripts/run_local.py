"""Run the whole assistant on this machine with embedded defaults (what `make run` does).

1. Makes sure `.env` has a webhook signing token and an admin token (generated, local only).
2. Starts a MongoDB-protocol server (SecantusDB, data in var/mongo) unless MONGODB_URI already
   answers.
3. Loads the bundled sample knowledge base (sample_kb/) if the index is empty.
4. Runs the background worker and the app under gunicorn on 127.0.0.1:8000, until Ctrl-C.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dotenv import dotenv_values  # noqa: E402

from scripts import embedded_mongo  # noqa: E402

LOCAL_SECRETS = {
    "TWILIO_AUTH_TOKEN": "signs and checks Twilio's webhooks; generated for local use, replace with your real token",
    "META_APP_SECRET": "signs and checks Meta's webhooks; generated for local use, replace with your app's secret",
    "META_VERIFY_TOKEN": "Meta's webhook verification token; generated for local use",
    "KAPSO_WEBHOOK_SECRET": "signs and checks Kapso's webhooks; generated for local use, replace with Kapso's",
    "D360_WEBHOOK_SECRET": "what 360dialog's webhooks must carry; generated for local use",
    "ADMIN_TOKEN": "Bearer token for the ops routes (test, diag, send-test); generated for local use",
}


def ensure_local_env(env_file: Path) -> None:
    """Append generated values for the secrets the app needs and `.env` lacks."""
    present = {**dotenv_values(env_file), **os.environ} if env_file.exists() else dict(os.environ)
    missing = [name for name in LOCAL_SECRETS if not present.get(name)]
    if missing:
        with env_file.open("a") as out:
            for name in missing:
                out.write(f"\n# {LOCAL_SECRETS[name]}\n{name}={secrets.token_hex(16)}\n")
        print(f"wrote generated {', '.join(missing)} to {env_file.name}")


def start_database_if_needed(uri: str) -> tuple[subprocess.Popen | None, str]:
    """The database server we started (None if one already answers) and the URI to reach it."""
    if embedded_mongo.is_up(uri, timeout_seconds=1):
        return None, uri
    parts = urlsplit(uri)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"MONGODB_URI {parts.hostname}:{parts.port} does not answer")
    port = parts.port or 27017
    print(f"starting the embedded database (SecantusDB) on 127.0.0.1:{port}, data in var/mongo")
    process = embedded_mongo.start(port, ROOT / "var" / "mongo", ROOT / "var" / "mongo.log")
    local_uri = embedded_mongo.client_uri(port, parts.path.lstrip("/"))
    embedded_mongo.wait_until_up(local_uri, process)
    return process, local_uri


def load_sample_if_empty(settings) -> None:
    from rag.embed import make_embedder
    from rag.ingest import ingest
    from rag.store import open_index

    embedder = make_embedder(settings)
    index = open_index(settings, embedder.embedder_id)
    if index.count() == 0:
        print("the knowledge index is empty: loading the sample knowledge base (sample_kb/)")
        report = ingest([ROOT / "sample_kb"], index, embedder, show_progress=True)
        print(report.summary())


def stop_all(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def interrupt_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so `finally` blocks stop the processes started.
    Explicit, because a script started in the background inherits an ignored SIGINT."""
    def interrupt(*_) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


def ignore_signals() -> None:
    """While stopping: a second Ctrl-C must not leave anything running."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    os.chdir(ROOT)
    ensure_local_env(ROOT / ".env")
    if "LOG_FORMAT" not in {**dotenv_values(ROOT / ".env"), **os.environ}:
        os.environ["LOG_FORMAT"] = "text"  # read in a terminal; JSON is for a log pipeline

    from webapp.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    processes: list[subprocess.Popen] = []
    database, mongodb_uri = start_database_if_needed(settings.mongodb_uri)
    try:
        load_sample_if_empty(settings)
        env = dict(os.environ, BIND=f"127.0.0.1:{args.port}", MONGODB_URI=mongodb_uri)
        # One metrics directory for the web and the worker processes, so /metrics shows both.
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir = tempfile.mkdtemp(prefix="whatsapp-metrics-")
        # Own sessions: Ctrl-C reaches only this launcher, which stops them before the database they
        # need to close cleanly (stopped together, gunicorn workers hung closing their clients).
        processes.append(subprocess.Popen([sys.executable, "-m", "webapp.worker"], env=env, start_new_session=True))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], env=env, start_new_session=True))
        print(
            f"\nThe assistant listens on http://127.0.0.1:{args.port}/api/v1/whatsapp/webhook"
            f" ({'sending through Twilio' if settings.twilio_sends else 'dry-run: replies are stored, not sent'}).\n"
            f"Talk to it as a WhatsApp customer, in another terminal:  .venv/bin/python scripts/chat.py\n"
            "Stop with Ctrl-C.\n",
            flush=True,
        )
        interrupt_on_signals()
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("a process exited; stopping everything", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all(processes)
        if processes:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if database:
            stop_all([database])


if __name__ == "__main__":
    sys.exit(main())
