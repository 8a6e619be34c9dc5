"""`GET /api/v1/openapi.json`: the OpenAPI description of every route (tests/test_openapi.py keeps
it true). Public: it describes the API, it reveals no data."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_file

bp = Blueprint("openapi", __name__)
DOCUMENT = Path(__file__).resolve().parent.parent / "openapi.json"


@bp.get("/api/v1/openapi.json")
def openapi():
    return send_file(DOCUMENT, mimetype="application/json")
