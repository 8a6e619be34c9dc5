"""The web console under /console/, for the people who run the assistant: server-rendered pages
(Jinja, one stylesheet, a few lines of script only to refresh a conversation) over what the admin
API offers, behind the same admin token (`session`).

One module per page: `inbox`, `conversation`, `knowledge`, `dashboard`, `settings_page`."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, redirect, request, url_for

from webapp.console import conversation, dashboard, inbox, knowledge, session, settings_page
from webapp.console.session import current_page, safe_next, set_cookie
from webapp.console.text import LANGUAGE_COOKIE, LANGUAGES, duration, language, t

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static")
# Nothing inline and nothing from elsewhere: an injected <script> or style would not run.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def init_app(app: Flask) -> None:
    for blueprint in (bp, session.bp, inbox.bp, conversation.bp, knowledge.bp, dashboard.bp, settings_page.bp):
        app.register_blueprint(blueprint)
    app.jinja_env.globals.update(t=t, duration=duration, language=language, languages=LANGUAGES,
                                 current_page=current_page)
    app.after_request(_console_headers)


@bp.get("/")
def home():
    return redirect(url_for("console_inbox.inbox"), 303)


@bp.get("/language/<code>")
def choose_language(code: str):
    """Remember the person's language and go back to the page they were on."""
    response = redirect(safe_next(request.args.get("next", "")), 303)
    if code in LANGUAGES:
        set_cookie(response, LANGUAGE_COOKIE, code, timedelta(days=365))
    return response


def _console_headers(response):
    if request.path.startswith("/console/"):
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.path.startswith("/console/static/"):
            response.headers["Cache-Control"] = "no-store"
    return response
