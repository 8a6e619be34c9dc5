"""Knowledge API under `/api/v1/knowledge/` (admin token required).

- `GET gaps?days=30&limit=100[&format=csv]`: the questions the bot could not answer, or answered
  with a 👎, grouped by meaning, biggest group first (`webapp.gaps`); CSV with `format=csv` or
  `Accept: text/csv`.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify, request

from webapp.auth import admin_required
from webapp.gaps import DEFAULT_DAYS, DEFAULT_GROUPS, MAX_DAYS, MAX_GROUPS, gaps_csv, knowledge_gaps
from webapp.services import services
from webapp.validation import InvalidInput, whole_number

bp = Blueprint("knowledge", __name__)
FORMATS = ("json", "csv")


@bp.get("/gaps")
@admin_required
def gaps():
    days, limit = _whole_number("days", DEFAULT_DAYS, MAX_DAYS), _whole_number("limit", DEFAULT_GROUPS, MAX_GROUPS)
    as_csv = _wants_csv()
    app = services()
    found = knowledge_gaps(app.store.messages, datetime.now(timezone.utc), days, app.settings.gap_similarity, limit)
    if as_csv:
        return Response(gaps_csv(found["groups"]), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="knowledge-gaps.csv"'})
    return jsonify(found)


def _whole_number(name: str, default: int, most: int) -> int:
    value = request.args.get(name, str(default))
    number = whole_number(value, most)
    if number is None:
        raise InvalidInput.one(name, f"a whole number from 1 to {most} expected, not {value!r}")
    return number


def _wants_csv() -> bool:
    """`format=csv`, or without a format, an Accept header that prefers CSV to JSON."""
    chosen = request.args.get("format")
    if chosen is None:
        return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"
    if chosen not in FORMATS:
        raise InvalidInput.one("format", f"one of {', '.join(FORMATS)} expected, not {chosen!r}")
    return chosen == "csv"
