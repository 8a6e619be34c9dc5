"""Who may call an admin route: `Authorization: Bearer $ADMIN_TOKEN` (each channel authenticates
its own webhooks)."""
from __future__ import annotations

import functools
import hmac
import logging
from dataclasses import dataclass

from flask import jsonify, request
from limits import RateLimitItem

from webapp.services import services

log = logging.getLogger(__name__)
LOCKED_OUT = "too many wrong admin tokens"


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
        ip = client_ip()
        refused = refused_address(ip)
        if refused is not None:
            return _too_many(f"{refused.reason} from this address ({refused.limit})", refused.retry_after_seconds)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            app.count_admin_failure(ip)
            log.warning("admin request from %s refused: missing or invalid token", ip)
            response = jsonify(error="missing or invalid admin token")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response, 401
        return view(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Refusal:
    """Why an address may not use the admin routes for now, and for how long."""

    reason: str  # "too many wrong admin tokens" or "too many admin requests"
    limit: RateLimitItem
    retry_after_seconds: int

    @property
    def locked_out(self) -> bool:
        return self.reason == LOCKED_OUT


def refused_address(ip: str, count: bool = True) -> Refusal | None:
    """The refusal for `ip` if it is locked out (RATE_LIMIT_ADMIN_FAILURES_PER_IP wrong tokens) or,
    counting this request unless not `count`, over RATE_LIMIT_ADMIN_PER_IP; else None."""
    app = services()
    locked = app.admin_locked_out(ip)
    if locked is not None:
        log.warning("admin request from %s refused: too many wrong tokens (%s)", ip, locked)
        return Refusal(LOCKED_OUT, locked, app.seconds_until_reset(locked, "admin_failure", ip))
    broken = app.hit_admin_limit(ip) if count else None
    if broken is not None:
        return Refusal("too many admin requests", broken, app.seconds_until_reset(broken, "admin", ip))
    return None


def client_ip() -> str:
    return request.remote_addr or "unknown"


def _too_many(message: str, retry_after_seconds: int):
    response = jsonify(error=message)
    response.headers["Retry-After"] = str(retry_after_seconds)
    return response, 429
