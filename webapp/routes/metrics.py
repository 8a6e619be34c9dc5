"""`GET /metrics`: Prometheus' text format, summed over every process that counts (see
webapp/metrics.py). Admin token required: the figures are the business's own."""
from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from webapp.auth import admin_required
from webapp.services import services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@admin_required
def metrics():
    app = services()
    return Response(app.metrics.exposition(app.store, chatwoot=bool(app.chatwoot)),
                    content_type=CONTENT_TYPE_LATEST)
