"""The Flask app: each channel's webhooks, the ops routes and admin API under /api/v1/whatsapp/,
health and metrics; the web console under /console/."""
from __future__ import annotations

import json
import logging
from io import BytesIO

from flask import Flask, g, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from pymongo.errors import ConnectionFailure
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from webapp.channels import build_channels
from webapp.config import API_PREFIX, Settings, load_settings
from webapp.db import open_store
from webapp import logs
from webapp.logs import configure_logging
from webapp.metrics import Metrics
from webapp.request_body import Request, body_limit
from webapp.services import Services
from webapp.validation import InvalidInput

log = logging.getLogger(__name__)



def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    warn_about_unsafe_settings(settings)

    app = Flask(__name__)
    app.request_class = Request
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app)
    if settings.trusted_proxy_hops:
        hops = settings.trusted_proxy_hops  # the client's address, scheme and host as the proxy saw them
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)
    app.config.update(
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
    app.extensions["whatsapp_assistant"] = Services(settings, store, build_channels(settings, store.sessions), limiter, Metrics())

    from webapp import console
    from webapp.routes import admin, bot_config, health, knowledge, metrics, openapi, ops

    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(openapi.bp)
    register_webhooks(app, settings)
    app.register_blueprint(ops.bp, url_prefix=API_PREFIX)
    app.register_blueprint(admin.bp, url_prefix=API_PREFIX)
    app.register_blueprint(knowledge.bp, url_prefix="/api/v1/knowledge")
    app.register_blueprint(bot_config.bp)
    console.init_app(app)
    attach_request_ids(app)
    app.register_error_handler(HTTPException, _json_error)
    app.register_error_handler(InvalidInput, _invalid_input)
    app.register_error_handler(ConnectionFailure, _database_unavailable)
    return app


class ChunkedBodyLimit:
    """WSGI middleware for bodies sent chunked, which gunicorn hands on without a Content-Length.
    For those, werkzeug stops reading at the size limit without an error, so the form would be
    parsed from a truncated body. Read it here instead: over the path's limit (`body_limit`) is
    413, anything else reaches the app as an ordinary body with its length."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            max_bytes = body_limit(environ.get("PATH_INFO", ""))
            body = environ["wsgi.input"].read(max_bytes + 1)
            if len(body) > max_bytes:
                error = json.dumps({"error": f"the request body is larger than {max_bytes} bytes"})
                return Response(error, 413, mimetype="application/json")(environ, start_response)
            environ = {**environ, "wsgi.input": BytesIO(body), "CONTENT_LENGTH": str(len(body))}
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.wsgi_app(environ, start_response)


def register_webhooks(app: Flask, settings: Settings) -> None:
    """Each served channel's webhooks, at its own prefix, and Chatwoot's when it is configured; a
    channel that is off has no routes."""
    from webapp.channels.d360 import routes as d360_routes
    from webapp.channels.kapso import routes as kapso_routes
    from webapp.channels.meta import routes as meta_routes
    from webapp.channels.twilio import routes as twilio_routes

    for served, blueprint, prefix in ((settings.twilio_receives, twilio_routes.bp, API_PREFIX),
                                      (settings.meta_receives, meta_routes.bp, "/api/v1/meta"),
                                      (settings.kapso_receives, kapso_routes.bp, "/api/v1/kapso"),
                                      (settings.d360_receives, d360_routes.bp, "/api/v1/360dialog")):
        if served:
            app.register_blueprint(blueprint, url_prefix=prefix)
    if settings.chatwoot_on:
        from webapp.chatwoot import routes as chatwoot_routes

        app.register_blueprint(chatwoot_routes.bp, url_prefix="/api/v1/chatwoot")


def attach_request_ids(app: Flask) -> None:
    """Each request gets an id (the proxy's X-Request-ID when it sent a sane one), on every log
    line written while it runs and in the response's X-Request-ID."""

    @app.before_request
    def bind_request_id():
        g.request_id = logs.request_id(request.headers.get("X-Request-ID"))
        g.log_token = logs.bind(request_id=g.request_id, route=request.url_rule.rule if request.url_rule else None)

    @app.after_request
    def send_request_id(response):
        response.headers["X-Request-ID"] = g.request_id
        return response

    @app.teardown_request
    def unbind_request_id(_error):
        token = g.pop("log_token", None)  # once: a streamed response tears its request down twice
        if token is not None:
            logs.unbind(token)


def warn_about_unsafe_settings(settings: Settings) -> None:
    """Logged at every start, so a forgotten setting cannot go unnoticed."""
    if not settings.validate_twilio_signature:
        log.warning("VALIDATE_TWILIO_SIGNATURE is off: anyone can post to the webhook. Never run this in production.")
    if not settings.twilio_sends:
        log.warning("Twilio is not configured: DRY-RUN, replies are stored, not sent "
                    "(set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM to send).")


def _json_error(error: HTTPException):
    return jsonify(error=error.description or error.name), error.code


def _invalid_input(error: InvalidInput):
    return jsonify(error=f"invalid request: {error}", field=error.field, problems=error.problems), 400


def _database_unavailable(error: ConnectionFailure):
    """MongoDB did not answer within MONGODB_TIMEOUT_SECONDS: nothing was acknowledged, so Twilio
    (told to retry by the webhook URL's #rc= override, see the README) delivers the message again."""
    log.error("MongoDB unavailable: %s", error)
    response = jsonify(error="the database is unavailable; try again shortly")
    response.headers["Retry-After"] = "5"
    return response, 503
