"""One conversation as WhatsApp shows it (customer, assistant, person; delivery ticks; media as
placeholders; the sources of each answer), WhatsApp's 24-hour window, and what a person does
with it: reply, give it back to the assistant, close it. The transcript refreshes itself
(`live` is polled by the page's script; without script, a refresh link)."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from flask import Blueprint, redirect, render_template, request, url_for

from webapp.admin import (AdminError, agent_reply, close_conversation, find_conversation, release_handoff, reply_window,
                          role_of)
from webapp.channels import route_of
from webapp.console.session import signed_in
from webapp.console.text import t
from webapp.services import services

bp = Blueprint("console_conversation", __name__, url_prefix="/console/conversations")
MAX_MESSAGES = 500
REFRESH_SECONDS = 5  # the page's script asks for `live` this often
NOTICES = ("reply_queued", "released", "not_in_handoff", "closed_now", "already_closed")
# What each delivery status looks like; the exact status is in the tick's title.
TICKS = {"sent": ("✓", "sent"), "delivered": ("✓✓", "delivered"), "read": ("✓✓", "read"),
         "failed": ("⚠", "failed"), "undelivered": ("⚠", "failed"), "held": ("◷", "held"),
         "canceled": ("✕", "failed"), "dry_run": ("✓", "dry-run"), "unconfirmed": ("?", "queued")}
MEDIA_ICONS = {"image": "📷", "audio": "🎤", "voice": "🎤", "video": "🎬", "document": "📄", "sticker": "🏷",
               "location": "📍", "contacts": "👤"}


@bp.get("/<conversation_id>")
@signed_in
def conversation(conversation_id: str):
    return _page(conversation_id)


@bp.get("/<conversation_id>/live")
@signed_in
def live(conversation_id: str):
    """The part of the page that refreshes itself."""
    app = services()
    try:
        found = find_conversation(app.store, conversation_id)
    except AdminError:
        return render_template("console/error.html", message=t("not_found")), 404
    return render_template("console/_live.html", live=_live(app, found))


@bp.post("/<conversation_id>/reply")
@signed_in
def reply(conversation_id: str):
    app = services()
    text = request.form.get("text", "")
    # The form's own key: the same form posted twice (a double click, a reload) queues one reply.
    key = request.form.get("reply_key", "")
    if not (key.isascii() and key.isalnum() and len(key) <= 64):
        key = uuid.uuid4().hex
    try:
        agent_reply(app.store, app.channels, conversation_id, text, f"console-{key}", _now(), mirror=app.chatwoot)
    except AdminError as error:
        return _page(conversation_id, error=error.message, status=error.status, draft=text)
    return _back(conversation_id, "reply_queued")


@bp.post("/<conversation_id>/release")
@signed_in
def release(conversation_id: str):
    def give_back() -> str:
        released = release_handoff(services().store, conversation_id, _now(), mirror=services().chatwoot)
        return "released" if released["released"] else "not_in_handoff"

    return _acted(conversation_id, give_back)


@bp.post("/<conversation_id>/close")
@signed_in
def close(conversation_id: str):
    def close_it() -> str:
        closed_now = close_conversation(services().store, conversation_id, _now(), mirror=services().chatwoot)
        return "closed_now" if closed_now else "already_closed"

    return _acted(conversation_id, close_it)


def _acted(conversation_id: str, action: Callable[[], str]):
    """Carry out `action` and show the conversation with what it did, or with why it could not."""
    try:
        done = action()
    except AdminError as error:
        return _page(conversation_id, error=error.message, status=error.status)
    return _back(conversation_id, done)


def _page(conversation_id: str, error: str = "", status: int = 200, draft: str = ""):
    app = services()
    try:
        found = find_conversation(app.store, conversation_id)
    except AdminError:
        return render_template("console/error.html", message=t("not_found")), 404
    done = request.args.get("done", "")
    return render_template("console/conversation.html", conversation=found, live=_live(app, found),
                           draft=draft, reply_key=uuid.uuid4().hex, refresh_seconds=REFRESH_SECONDS,
                           notice=t(done) if done in NOTICES else "", error=error), status


def _live(app, conversation: dict) -> dict:
    """What the page refreshes: the conversation's state, its 24-hour window, its transcript."""
    last, closes_at = reply_window(app.store, conversation["wa_id"], conversation["_id"])
    route = route_of(last or {})
    template = last is not None and app.channels.reply_template(route["channel"]) is not None
    window_open = closes_at is not None and _now() < closes_at
    return {"conversation": conversation, "channel": route_of(conversation)["channel"],
            "name": conversation.get("profile_name") or (last or {}).get("profile_name", ""),
            "window": "open" if window_open else "template" if template else "closed" if last else "never",
            "closes_at": closes_at, "messages": _transcript(app.store, conversation["_id"])}


def _transcript(store, conversation_id: str) -> list[dict]:
    return [_bubble(message) for message in store.messages.of_conversation(conversation_id, MAX_MESSAGES)]


def _bubble(message: dict) -> dict:
    """A message as the transcript shows it."""
    status = message.get("status", "")
    tick = None if message["direction"] == "inbound" else TICKS.get(status, ("◷", "queued"))
    return {"role": role_of(message), "body": message.get("body", ""), "placeholder": _placeholder(message),
            "at": message["created_at"], "status": status, "tick": tick, "kind": message.get("kind", ""),
            "sources": message.get("sources") or [], "outcome": message.get("outcome", ""),
            "error": message.get("error_message") or "", "buttons": message.get("buttons") or []}


def _placeholder(message: dict) -> str:
    """What a message carries besides its text: an attachment or a place, never fetched."""
    kind = message.get("type", "text")
    if kind == "reaction":
        return f"{t('reaction')} {(message.get('context') or {}).get('emoji', '')}".strip()
    location = message.get("location")
    if location:
        label = location.get("label") or location.get("address") or ""
        return f"📍 {t('location')}{': ' + label if label else ''}"
    if message.get("media") or kind not in ("text", "", None, "interactive", "button", "reaction"):
        return f"{MEDIA_ICONS.get(kind, '📎')} {t('media')} ({kind})"
    return ""


def _back(conversation_id: str, done: str):
    return redirect(url_for("console_conversation.conversation", conversation_id=conversation_id, done=done), 303)


def _now() -> datetime:
    return datetime.now(timezone.utc)
