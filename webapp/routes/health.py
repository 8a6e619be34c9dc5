"""`GET /healthz`: the process is up and serving (for container and load-balancer health checks).

Unauthenticated, so it says nothing else."""
from __future__ import annotations

from flask import Blueprint, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")
