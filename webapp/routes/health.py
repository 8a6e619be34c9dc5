"""Health for container orchestrators and load balancers. Unauthenticated, so they say nothing
an outsider could use: check names, yes/no, ages and counts.

- `GET /healthz` (liveness): the process is up and serving; touches nothing.
- `GET /readyz` (readiness): MongoDB answers a ping; a worker process has sent a heartbeat
  within WORKER_STALE_SECONDS; the knowledge index that worker reads holds chunks; each channel
  says whether it sends or runs in dry-run. The index is checked through the worker's heartbeat
  because the worker is what reads it: the web process never opens it.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import Blueprint, jsonify
from pymongo.errors import PyMongoError

from webapp.metrics import age_of
from webapp.services import services

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    app = services()
    checks = {"mongodb": _mongodb(app.store)}
    heartbeat = _latest_heartbeat(app.store) if checks["mongodb"]["ok"] else None
    checks["worker"] = _worker(heartbeat, app.settings.worker_stale_seconds)
    checks["index"] = _index(heartbeat)
    for channel in app.channels:  # configured, sending or not: nothing a probe could fix
        checks[channel.name] = {"ok": True, "mode": "dry-run" if channel.dry_run else "sending"}
    if app.chatwoot and checks["mongodb"]["ok"]:  # Chatwoot behind never stops a customer being answered
        checks["chatwoot"] = _chatwoot(app.store)
    ready = all(check["ok"] for check in checks.values())
    if not ready:
        log.warning("not ready: %s", ", ".join(name for name, check in checks.items() if not check["ok"]))
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503


def _chatwoot(store) -> dict:
    try:
        events, oldest = store.chatwoot_sync.backlog()
    except PyMongoError:
        return {"ok": True, "error": "the backlog could not be read"}
    return {"ok": True, "backlog": events, "oldest_event_seconds_ago": round(age_of(oldest), 1)}


def _mongodb(store) -> dict:
    try:
        store.client.admin.command("ping")
        return {"ok": True}
    except PyMongoError as exc:
        log.warning("readiness: MongoDB did not answer a ping: %s", type(exc).__name__)
        return {"ok": False, "error": "no answer"}


def _latest_heartbeat(store) -> dict | None:
    try:
        return store.heartbeats.latest()
    except PyMongoError:
        return None


def _worker(heartbeat: dict | None, stale_seconds: float) -> dict:
    if heartbeat is None:
        return {"ok": False, "error": "no worker process has reported"}
    age = (datetime.now(timezone.utc) - heartbeat["beat_at"]).total_seconds()
    check = {"ok": age <= stale_seconds, "last_heartbeat_seconds_ago": round(age, 1)}
    if not check["ok"]:
        check["error"] = f"no heartbeat for over {stale_seconds:g} s"
    return check


def _index(heartbeat: dict | None) -> dict:
    if heartbeat is None:
        return {"ok": False, "error": "unknown: no worker process has reported"}
    chunks = heartbeat.get("index_chunks")
    if chunks is None:
        return {"ok": False, "error": "the worker cannot read the index"}
    if chunks == 0:
        return {"ok": False, "chunks": 0, "error": "the index is empty: run scripts/ingest_docs.py"}
    return {"ok": True, "chunks": chunks}
