"""Signing in to the console: the admin token is exchanged once for a session cookie
(`HttpOnly`, `SameSite=Strict`, `Secure` when the request came over https, scoped to /console/),
whose secret opens a server-side session (`webapp.db.console_sessions`): signing out ends it for
good. Every form carries the session's CSRF token, the sign-in form a double-submit one. Wrong
tokens count towards the same per-IP lock-out as the admin API's, and every console request
against the same per-IP limit (`webapp.auth`)."""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta, timezone

from flask import Blueprint, g, make_response, redirect, render_template, request, url_for

from webapp.console.text import t
from webapp.services import services

log = logging.getLogger(__name__)
bp = Blueprint("console_session", __name__, url_prefix="/console")

COOKIE = "console_session"
SIGN_IN_CSRF_COOKIE = "console_sign_in"
PATH = "/console/"
LIFETIME = timedelta(hours=8)


@bp.get("/sign-in")
def sign_in_form():
    refused = _refused_before_sign_in()
    if refused:
        return refused
    return _sign_in_page()


@bp.post("/sign-in")
def sign_in():
    refused = _refused_before_sign_in()
    if refused:
        return refused
    if not _same_token(request.form.get("csrf_token", ""), request.cookies.get(SIGN_IN_CSRF_COOKIE, "")):
        return _sign_in_page(t("csrf_refused"), 403)
    app, ip = services(), _ip()
    if not _same_token(request.form.get("token", "").strip(), _admin_token()):
        app.count_admin_failure(ip)
        log.warning("console sign-in from %s refused: wrong admin token", ip)
        return _sign_in_page(t("wrong_token"), 401)
    secret, _ = app.store.console_sessions.start(_fingerprint(), _now(), LIFETIME)
    log.info("console sign-in from %s", ip)
    response = redirect(safe_next(request.form.get("next", "")), 303)
    _set_cookie(response, COOKIE, secret, LIFETIME)
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path=PATH)
    return response


@bp.post("/sign-out")
def sign_out():
    """Ends the session even when its form token is missing: signing out can do no harm."""
    if not _admin_token():
        return _disabled()
    secret = request.cookies.get(COOKIE)
    if secret:
        services().store.console_sessions.end(secret)
    response = redirect(url_for("console_session.sign_in_form"), 303)
    response.delete_cookie(COOKIE, path=PATH)
    return response


def signed_in(view):
    """A console page: disabled without ADMIN_TOKEN, limited per IP like the admin API, and for a
    browser without a live session a redirect to the sign-in page. A POST must carry the
    session's CSRF token (403 otherwise; nothing is done)."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        refused = _refused_before_sign_in()
        if refused:
            return refused
        secret = request.cookies.get(COOKIE, "")
        session = secret and services().store.console_sessions.find(secret, _fingerprint(), _now())
        if not session:
            return redirect(url_for("console_session.sign_in_form", next=request.full_path.rstrip("?")), 303)
        if request.method == "POST" and not _same_token(request.form.get("csrf_token", ""), session["csrf"]):
            log.warning("console form from %s refused: missing or wrong CSRF token", _ip())
            return render_template("console/error.html", message=t("csrf_refused")), 403
        g.console_session = session
        return view(*args, **kwargs)

    return wrapper


def csrf_token() -> str:
    """The token a form of the signed-in page must send back."""
    return g.console_session["csrf"]


def _refused_before_sign_in():
    """The answer when the console is off or this IP is locked out or over its limit, else None."""
    app, ip = services(), _ip()
    if not _admin_token():
        return _disabled()
    locked = app.admin_locked_out(ip)
    if locked is not None:
        log.warning("console request from %s refused: too many wrong tokens (%s)", ip, locked)
        return _too_many(t("locked_out"), app.seconds_until_reset(locked, "admin_failure", ip))
    broken = app.hit_admin_limit(ip)
    if broken is not None:
        return _too_many(t("too_many_requests"), app.seconds_until_reset(broken, "admin", ip))
    return None


def _disabled():
    return render_template("console/error.html", message=t("console_disabled")), 404


def _sign_in_page(error: str = "", status: int = 200):
    token = secrets.token_urlsafe(32)
    page = render_template("console/sign_in.html", error=error, csrf=token,
                           next=safe_next(request.values.get("next", "")))
    response = make_response(page, status)
    _set_cookie(response, SIGN_IN_CSRF_COOKIE, token, timedelta(hours=1))
    return response


def _too_many(message: str, retry_after_seconds: int):
    return (render_template("console/error.html", message=message), 429,
            {"Retry-After": str(retry_after_seconds)})


def _set_cookie(response, name: str, value: str, lifetime: timedelta) -> None:
    response.set_cookie(name, value, max_age=int(lifetime.total_seconds()), path=PATH, httponly=True,
                        secure=request.is_secure, samesite="Strict")


def safe_next(target: str) -> str:
    """Where to go after signing in: a console path of this site, never another site."""
    if target.startswith(PATH) and not target.startswith("//") and "\\" not in target and "\n" not in target:
        return target
    return url_for("console_inbox.inbox")


def _same_token(given: str, expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _admin_token() -> str:
    return services().settings.admin_token.get_secret_value()


def token_fingerprint(admin_token: str) -> str:
    """What a session keeps of the admin token it was signed in with: enough to tell it changed."""
    return hashlib.sha256(b"console-session:" + admin_token.encode()).hexdigest()[:32]


def _fingerprint() -> str:
    return token_fingerprint(_admin_token())


def _ip() -> str:
    return request.remote_addr or "unknown"


def _now() -> datetime:
    return datetime.now(timezone.utc)
