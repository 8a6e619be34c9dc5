"""Signing in to the console: the admin token is exchanged once for a session cookie
(`HttpOnly`, `SameSite=Strict`, `Secure` over https, scoped to /console/), whose secret opens a
server-side session (`webapp.db.console_sessions`): signing out ends it for good. Every form
carries the session's CSRF token, the sign-in form a double-submit one.

Wrong tokens count towards the admin API's per-address lock-out, which refuses the console too.
Requests without a live session count towards the admin API's per-address limit; a signed-in
person's pages do not, so a conversation left open (it refreshes itself) never locks the address
out of the API (`webapp.auth`)."""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import posixpath
import re
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlsplit

from flask import Blueprint, g, make_response, redirect, render_template, request, url_for

from webapp.auth import client_ip, refused_address
from webapp.console.text import t
from webapp.services import services

log = logging.getLogger(__name__)
bp = Blueprint("console_session", __name__, url_prefix="/console")

COOKIE = "console_session"
SIGN_IN_CSRF_COOKIE = "console_sign_in"
PATH = "/console/"
LIFETIME = timedelta(hours=8)
SIGN_IN_FORM_LIFETIME = timedelta(hours=1)
SIGN_IN_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


@bp.get("/sign-in")
def sign_in_form():
    return _refused() or _sign_in_page()


@bp.post("/sign-in")
def sign_in():
    refused = _refused()
    if refused:
        return refused
    if not _same_token(request.form.get("csrf_token", ""), request.cookies.get(SIGN_IN_CSRF_COOKIE, "")):
        return _sign_in_page(t("csrf_refused"), 403)
    app, ip = services(), client_ip()
    if not _same_token(request.form.get("token", "").strip(), _admin_token()):
        app.count_admin_failure(ip)
        log.warning("console sign-in from %s refused: wrong admin token", ip)
        return _sign_in_page(t("wrong_token"), 401)
    sessions = app.store.console_sessions
    if request.cookies.get(COOKIE):
        sessions.end(request.cookies[COOKIE])  # this browser's session before, if it had one
    secret, _ = sessions.start(_fingerprint(), _now(), LIFETIME)
    log.info("console sign-in from %s", ip)
    response = redirect(safe_next(request.form.get("next", "")), 303)
    set_cookie(response, COOKIE, secret, LIFETIME)
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path=PATH)
    return response


@bp.post("/sign-out")
def sign_out():
    if not _admin_token():
        return _disabled()
    secret = request.cookies.get(COOKIE, "")
    session = secret and services().store.console_sessions.find(secret, _fingerprint(), _now())
    if session and not _same_token(request.form.get("csrf_token", ""), session["csrf"]):
        return _csrf_refused()
    if session:
        services().store.console_sessions.end(secret)
    response = redirect(url_for("console_session.sign_in_form"), 303)
    response.delete_cookie(COOKIE, path=PATH)
    return response


def signed_in(view):
    """A console page: disabled without ADMIN_TOKEN, refused to a locked-out address, and for a
    browser without a live session (counted against the address's limit) a redirect to the
    sign-in page, back to this page afterwards. A POST must carry the session's CSRF token (403
    otherwise; nothing is done)."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not _admin_token():
            return _disabled()
        secret = request.cookies.get(COOKIE, "")
        session = secret and services().store.console_sessions.find(secret, _fingerprint(), _now())
        refused = _refused(count=not session)
        if refused:
            return refused
        if not session:
            return redirect(url_for("console_session.sign_in_form", next=current_page()), 303)
        if request.method == "POST" and not _same_token(request.form.get("csrf_token", ""), session["csrf"]):
            return _csrf_refused()
        g.console_session = session
        return view(*args, **kwargs)

    return wrapper


def current_page() -> str:
    """The console page the person is on: this page, or for a form's POST the page the form was on
    (its Referer), so that signing in again or switching language leads back to a page."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    return safe_next(referrer.path + (f"?{referrer.query}" if referrer.query else ""))


def safe_next(target: str) -> str:
    """Where to go next: a console page of this site, never another site or another part of it."""
    path = unquote(target.split("?", 1)[0])
    if (target.startswith(PATH) and "\\" not in path and not any(c < " " or c == "\x7f" for c in unquote(target))
            and (posixpath.normpath(path) + "/").startswith(PATH)):
        return target
    return url_for("console_inbox.inbox")


def token_fingerprint(admin_token: str) -> str:
    """What a session keeps of the admin token it was signed in with: enough to tell it changed."""
    return hashlib.sha256(b"console-session:" + admin_token.encode()).hexdigest()[:32]


def set_cookie(response, name: str, value: str, lifetime: timedelta) -> None:
    """A console cookie: sent back only to the console, never to scripts or other sites, and only
    over https when the console is served over https (PUBLIC_BASE_URL, or the proxy says so)."""
    secure = request.is_secure or services().settings.public_base_url.startswith("https://")
    response.set_cookie(name, value, max_age=int(lifetime.total_seconds()), path=PATH, httponly=True,
                        secure=secure, samesite="Strict")



def _refused(count: bool = True):
    """The page for a console that is off, or an address locked out or over its limit; else None."""
    if not _admin_token():
        return _disabled()
    refusal = refused_address(client_ip(), count)
    if refusal is None:
        return None
    message = t("locked_out") if refusal.locked_out else t("too_many_requests")
    return (render_template("console/error.html", message=message), 429,
            {"Retry-After": str(refusal.retry_after_seconds)})


def _disabled():
    return render_template("console/error.html", message=t("console_disabled")), 404


def _csrf_refused():
    log.warning("console form from %s refused: missing or wrong CSRF token", client_ip())
    return render_template("console/error.html", message=t("csrf_refused")), 403


def _sign_in_page(error: str = "", status: int = 200):
    """The form, with this browser's sign-in token (the same in every tab until it signs in)."""
    token = request.cookies.get(SIGN_IN_CSRF_COOKIE, "")
    if not SIGN_IN_TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(32)
    page = render_template("console/sign_in.html", error=error, csrf=token,
                           next=safe_next(request.values.get("next", "")))
    response = make_response(page, status)
    set_cookie(response, SIGN_IN_CSRF_COOKIE, token, SIGN_IN_FORM_LIFETIME)
    return response


def _same_token(given: str, expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _admin_token() -> str:
    return services().settings.admin_token.get_secret_value()


def _fingerprint() -> str:
    return token_fingerprint(_admin_token())


def _now() -> datetime:
    return datetime.now(timezone.utc)
