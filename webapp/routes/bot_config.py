"""`GET`/`PUT /api/v1/bot/config` (admin token): the bot settings kept in the database
(`webapp.bot_config`). A PUT names the fields it changes; the whole is validated before anything
is saved, and every worker uses it within BOT_CONFIG_REFRESH_SECONDS."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, jsonify

from webapp.auth import admin_required
from webapp.bot_config import save_changes, stored_config
from webapp.request_body import json_object
from webapp.services import services

bp = Blueprint("bot_config", __name__)


@bp.get("/api/v1/bot/config")
@admin_required
def show():
    return _current()


@bp.put("/api/v1/bot/config")
@admin_required
def change():
    changes = json_object()
    if not changes:
        return jsonify(error='send the fields to change as a JSON object, e.g. {"tone": "cercano"}', field="body"), 400
    save_changes(services().store.bot_config, services().settings, changes, datetime.now(timezone.utc))
    return _current()


def _current():
    app = services()
    config = stored_config(app.store.bot_config.get(), app.settings)
    meta = app.store.bot_config.meta()
    updated_at = meta["updated_at"] and meta["updated_at"].isoformat()
    return jsonify(**config.model_dump(), version=meta["version"], updated_at=updated_at)
