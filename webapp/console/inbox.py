"""The inbox: conversations newest first, filtered by status and channel, found by number or name;
above them, the handoffs waiting for a person, the longest wait first."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, render_template, request

from webapp.channels import route_of
from webapp.console.session import signed_in
from webapp.db.conversations import STATUSES
from webapp.services import services
from webapp.validation import whole_number

bp = Blueprint("console_inbox", __name__, url_prefix="/console")
PER_PAGE = 25
MOST_WAITING = 50
MAX_SEARCH_CHARS = 100


@bp.get("/inbox")
@signed_in
def inbox():
    channels = [channel.name for channel in services().channels]
    filters = _filters(channels)
    store, now = services().store, datetime.now(timezone.utc)
    # One more than a page tells whether there is a next one, without counting them all.
    found = store.conversations.search(filters["status"] or None, filters["channel"] or None, filters["q"],
                                       (filters["page"] - 1) * PER_PAGE, PER_PAGE + 1)
    waiting = store.conversations.waiting_for_person(MOST_WAITING)
    shown = {c["_id"]: c for c in waiting + found[:PER_PAGE]}  # a handoff in both lists is read once
    rows = {conversation_id: _row(store, c, now) for conversation_id, c in shown.items()}
    return render_template("console/inbox.html", filters=filters, statuses=STATUSES, channels=channels,
                           conversations=[rows[c["_id"]] for c in found[:PER_PAGE]],
                           waiting=[rows[c["_id"]] for c in waiting], more=len(found) > PER_PAGE,
                           waiting_total=store.conversations.count("handoff") if len(waiting) == MOST_WAITING
                           else len(waiting))


def _filters(channels: list[str]) -> dict:
    """The filters as given, each one that makes no sense dropped (a bookmarked URL keeps working)."""
    status, channel = request.args.get("status", ""), request.args.get("channel", "")
    return {"status": status if status in STATUSES else "", "channel": channel if channel in channels else "",
            "q": request.args.get("q", "")[:MAX_SEARCH_CHARS].strip(),
            "page": whole_number(request.args.get("page", "1"), 10**6) or 1}


def _row(store, conversation: dict, now: datetime) -> dict:
    """A conversation as the inbox lists it: its newest message, and for a handoff how long the
    customer has waited and whether a person has replied since."""
    newest = store.messages.newest(conversation["_id"]) or {}
    requested_at = (conversation.get("handoff") or {}).get("requested_at")
    person = requested_at and store.messages.newest(conversation["_id"], role="agent")
    return {"id": conversation["_id"], "wa_id": conversation["wa_id"], "status": conversation["status"],
            "channel": route_of(conversation)["channel"],
            "name": conversation.get("profile_name") or newest.get("profile_name") or "",
            "started_at": conversation["started_at"], "newest": newest,
            "waiting_seconds": (now - requested_at).total_seconds() if requested_at else None,
            "person_replied": bool(person and person["created_at"] >= requested_at)}
