"""Who may call a route: Twilio (its `X-Twilio-Signature`) or an admin (`Authorization: Bearer
$ADMIN_TOKEN`, the ops routes)."""
from __future__ import annotations

import functools
import hmac
import logging
from urllib.parse import quote

from flask import jsonify, request

from webapp.services import services
from webapp.whatsapp.inbound import signature_is_valid

log = logging.getLogger(__name__)


def twilio_signature_required(view):
    """Refuse (403) a request not signed by Twilio with our auth token, unless the check is off."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        settings = services().settings
        if settings.validate_twilio_signature and not signature_is_valid(
            settings.twilio_auth_token.get_secret_value(),
            _public_url(settings.public_base_url),
            request.form,
            request.headers.get("X-Twilio-Signature", ""),
        ):
            log.warning("%s refused: missing or invalid X-Twilio-Signature", request.path)
            return jsonify(error="invalid or missing X-Twilio-Signature"), 403
        return view(*args, **kwargs)

    return wrapper


def _public_url(public_base_url: str) -> str:
    """The URL Twilio signed, as it went on the wire: the configured public base (behind a proxy)
    or the scheme and host Flask saw. Not `request.url`, which decodes it into an IRI (a Host of
    `xn--` makes that raise) and so differs from what was signed when it holds %-escapes."""
    base = public_base_url or f"{request.scheme}://{request.host}"
    query = request.query_string.decode("latin-1")
    return base + quote(request.script_root + request.path) + (f"?{query}" if query else "")


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
