"""Who may call an admin route: `Authorization: Bearer $ADMIN_TOKEN` (each channel authenticates
its own webhooks)."""
from __future__ import annotations

import functools
import hmac
import logging

from flask import jsonify, request

from webapp.services import services

log = logging.getLogger(__name__)


def admin_required(view):
    """Bearer $ADMIN_TOKEN, compared in constant time. Each IP gets RATE_LIMIT_ADMIN_PER_IP
    requests, and after RATE_LIMIT_ADMIN_FAILURES_PER_IP wrong tokens it is refused (429) until
    the window passes, right token or not: guessing the token takes forever."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        app = services()
        expected = app.settings.admin_token.get_secret_value()
        if not expected:
            return jsonify(error="admin routes are disabled: set ADMIN_TOKEN to enable them"), 404
        ip = request.remote_addr or "unknown"
        locked = app.admin_locked_out(ip)
        if locked is not None:
            log.warning("admin request from %s refused: too many wrong tokens (%s)", ip, locked)
            return _too_many(f"too many wrong admin tokens from this address ({locked})",
                             app.seconds_until_reset(locked, "admin_failure", ip))
        broken = app.hit_admin_limit(ip)
        if broken is not None:
            return _too_many(f"too many admin requests from this address ({broken})",
                             app.seconds_until_reset(broken, "admin", ip))
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            app.count_admin_failure(ip)
            log.warning("admin request from %s refused: missing or invalid token", ip)
            response = jsonify(error="missing or invalid admin token")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response, 401
        return view(*args, **kwargs)

    return wrapper


def _too_many(message: str, retry_after_seconds: int):
    response = jsonify(error=message)
    response.headers["Retry-After"] = str(retry_after_seconds)
    return response, 429
