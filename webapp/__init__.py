"""The Flask app: Twilio's webhook and the ops routes under /api/v1/whatsapp/."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from pymongo.errors import ConnectionFailure
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.config import API_PREFIX, Settings, load_settings
from webapp.db import open_store
from webapp.logs import configure_logging
from webapp.services import Services
from webapp.whatsapp.outbound import make_sender

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024  # Twilio's largest webhook (1,600 chars + 10 media URLs) is far smaller


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    warn_about_unsafe_settings(settings)

    app = Flask(__name__)
    if settings.trusted_proxy_hops:
        hops = settings.trusted_proxy_hops  # the client's address, scheme and host as the proxy saw them
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        RATELIMIT_STORAGE_URI=settings.limiter_storage_uri,
        # moving-window is the strategy that is exact on every MongoDB-protocol server we test on
        RATELIMIT_STRATEGY="moving-window",
        RATELIMIT_HEADERS_ENABLED=True,
    )
    store = open_store(settings.mongodb_uri, int(settings.mongodb_timeout_seconds * 1000))
    if settings.limiter_storage_uri.startswith("mongodb"):
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {"database_name": f"{store.db.name}_ratelimits"}
    store.ensure_indexes()
    limiter = Limiter(key_func=get_remote_address)
    limiter.init_app(app)
    # Connect the shared rate-limit storage now: its client is otherwise created lazily, at worst
    # during interpreter shutdown, where creating it hangs the exiting gunicorn worker.
    if not limiter.storage.check():
        log.warning("the rate-limit storage (RATE_LIMIT_STORAGE_URI, else MONGODB_URI) does not answer yet")
    app.extensions["whatsapp_assistant"] = Services(settings, store, make_sender(settings), limiter)

    from webapp.routes import health, ops, status, webhook

    app.register_blueprint(health.bp)
    app.register_blueprint(webhook.bp, url_prefix=API_PREFIX)
    app.register_blueprint(status.bp, url_prefix=API_PREFIX)
    app.register_blueprint(ops.bp, url_prefix=API_PREFIX)
    app.register_error_handler(HTTPException, _json_error)
    app.register_error_handler(ConnectionFailure, _database_unavailable)
    return app


def warn_about_unsafe_settings(settings: Settings) -> None:
    """Logged at every start, so a forgotten setting cannot go unnoticed."""
    if not settings.validate_twilio_signature:
        log.warning("VALIDATE_TWILIO_SIGNATURE is off: anyone can post to the webhook. Never run this in production.")
    if not settings.twilio_sends:
        log.warning("Twilio is not configured: DRY-RUN, replies are stored, not sent "
                    "(set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM to send).")


def _json_error(error: HTTPException):
    return jsonify(error=error.description or error.name), error.code


def _database_unavailable(error: ConnectionFailure):
    """MongoDB did not answer within MONGODB_TIMEOUT_SECONDS: nothing was acknowledged, so Twilio
    (told to retry by the webhook URL's #rc= override, see the README) delivers the message again."""
    log.error("MongoDB unavailable: %s", error)
    response = jsonify(error="the database is unavailable; try again shortly")
    response.headers["Retry-After"] = "5"
    return response, 503
