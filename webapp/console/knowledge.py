"""What the assistant knows: the index as the worker sees it (documents, chunks, embedder, last
ingest), the questions it could not answer (`webapp.gaps`), and a dry run: a question answered by
a worker with its sources and scores, sent to no one (`webapp.db.dry_runs`)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, redirect, render_template, request, url_for

from webapp.console.session import signed_in
from webapp.console.text import t
from webapp.formatting import strip_control_chars
from webapp.gaps import knowledge_gaps
from webapp.services import services

bp = Blueprint("console_knowledge", __name__, url_prefix="/console/knowledge")
GAP_DAYS, GAP_GROUPS = 30, 20
MAX_QUESTION_CHARS = 1000
REFRESH_SECONDS = 2  # a pending dry run's page reloads itself (no script needed)…
PATIENCE = timedelta(minutes=2)  # …for as long as a worker may take (its lease on a dry run)


@bp.get("")
@signed_in
def knowledge():
    return _page()


@bp.post("/ask")
@signed_in
def ask():
    question = strip_control_chars(request.form.get("question", "")).strip()
    if not 1 <= len(question) <= MAX_QUESTION_CHARS:
        return _page(error=t("question_required", most=MAX_QUESTION_CHARS), question=question, status=400)
    if not _worker_alive():  # asked now, it would be answered whenever a worker starts: say so instead
        return _page(error=t("no_worker"), question=question, status=409)
    dry_run_id = services().store.dry_runs.ask(question, _now())
    return redirect(url_for("console_knowledge.dry_run", dry_run_id=dry_run_id), 303)


@bp.get("/ask/<dry_run_id>")
@signed_in
def dry_run(dry_run_id: str):
    found = services().store.dry_runs.get(dry_run_id)
    if found is None:
        return render_template("console/error.html", message=t("no_dry_run")), 404
    waiting = found["status"] == "pending" and _now() - found["created_at"] < PATIENCE and _worker_alive()
    return render_template("console/dry_run.html", dry_run=found, refresh_seconds=REFRESH_SECONDS, waiting=waiting,
                           question="", max_question_chars=MAX_QUESTION_CHARS)


def _page(error: str = "", question: str = "", status: int = 200):
    app = services()
    gaps = knowledge_gaps(app.store.messages, _now(), GAP_DAYS, app.settings.gap_similarity, GAP_GROUPS)
    return render_template("console/knowledge.html", index=app.store.heartbeats.index_status(),
                           worker_alive=_worker_alive(), gaps=gaps, gap_days=GAP_DAYS, question=question,
                           max_question_chars=MAX_QUESTION_CHARS, error=error), status


def _worker_alive() -> bool:
    return services().store.heartbeats.alive(_now() - timedelta(seconds=services().settings.worker_stale_seconds))


def _now() -> datetime:
    return datetime.now(timezone.utc)
