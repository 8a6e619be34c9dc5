"""Human handoff: when a conversation goes to a person, and telling the business's own system.

A conversation is handed off when the customer asks for a person (or says yes to the bot's offer
of one, which comes with "I don't know"), or when the bot could not answer HANDOFF_AFTER_UNANSWERED
times in a row. The worker then keeps the bot silent in it (`webapp.worker`), and
HANDOFF_WEBHOOK_URL, if set, receives a JSON notice.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime

import requests

from rag.language import phrase, says_yes, wants_person
from webapp.db.events import event

log = logging.getLogger(__name__)

UNANSWERED = ("unknown", "error")  # outcomes of an answer the bot could not give
OFFERS_PERSON = ("unknown", "disliked")  # "I don't know", and the reply to a 👎: a "sí" hands over
NOTIFY_ATTEMPTS = 3
NOTIFY_TIMEOUT_SECONDS = 5.0
NOTIFY_BACKOFF_SECONDS = 0.5  # doubled after each failed attempt


PERSON_BUTTON = "talk_to_person"  # the id of the button that offers a person, under "I don't know"


def person_button(language: str) -> dict:
    return {"id": PERSON_BUTTON, "title": phrase("talk_to_person", language)}


def tapped_person(pending: list[dict]) -> bool:
    """The customer tapped the button that offers a person (its id decides, not its title)."""
    contexts = (m.get("context") or {} for m in pending)
    return any(PERSON_BUTTON in (context.get("button_id"), context.get("button_payload")) for context in contexts)


def asked_for_person(question: str, history: list[dict]) -> bool:
    """The customer asks for a person, or says yes to the bot's last answer, which offered one
    ("I don't know", or the reply to a 👎). `history`: the conversation's turns as stored, oldest first."""
    if wants_person(question):
        return True
    answers = [turn for turn in history if turn["direction"] == "outbound"]
    return bool(answers) and answers[-1].get("outcome") in OFFERS_PERSON and says_yes(question)


def unanswered_in_a_row(history: list[dict]) -> int:
    """How many of the bot's latest answers in `history` it could not give, in a row."""
    count = 0
    for turn in reversed([turn for turn in history if turn["direction"] == "outbound"]):
        if turn.get("outcome") not in UNANSWERED:
            break
        count += 1
    return count


class HandoffNotifier:
    """POSTs each handoff to HANDOFF_WEBHOOK_URL as JSON, signed with HANDOFF_WEBHOOK_SECRET when
    one is set (`X-Assistant-Signature: sha256=<HMAC-SHA256 of the body, hex>`). Without a URL it
    does nothing. A failed POST is tried again a few times; 4xx other than 408 and 429 are final."""

    def __init__(self, url: str, secret: str = "", timeout_seconds: float = NOTIFY_TIMEOUT_SECONDS):
        self.url = url
        self.secret = secret.encode()
        self.timeout_seconds = timeout_seconds

    @classmethod
    def from_settings(cls, settings) -> HandoffNotifier:
        return cls(settings.handoff_webhook_url, settings.handoff_webhook_secret.get_secret_value())

    def notify(self, notice: dict) -> str | None:
        """Deliver `notice`; None once the receiver took it (2xx), else what went wrong last."""
        if not self.url:
            return None
        body = json.dumps(notice, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "X-Assistant-Event": notice["event"],
                   "X-Assistant-Delivery": notice["id"]}
        if self.secret:
            headers["X-Assistant-Signature"] = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        error = None
        for attempt in range(NOTIFY_ATTEMPTS):
            if attempt:
                time.sleep(NOTIFY_BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                response = requests.post(self.url, data=body, headers=headers, timeout=self.timeout_seconds)
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}"
                continue
            if response.status_code < 300:
                return None
            error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code not in (408, 429):
                break
        log.warning("handoff notice %s not delivered: %s", notice["id"], error)
        return error


def handoff_key(conversation_id: str, handoff: dict) -> str:
    """Names one handoff of a conversation: its events, and the notice's delivery id."""
    return f"{conversation_id}:{_iso(handoff['requested_at'])}"


def handoff_event(type_: str, conversation_id: str, handoff: dict, **details) -> dict:
    at = handoff["released_at"] if type_ == "handoff_released" else handoff["requested_at"]
    return event(type_, handoff_key(conversation_id, handoff), conversation_id, at, **details)


def notice(conversation_id: str, wa_id: str, handoff: dict, question: str, profile_name: str) -> dict:
    """What the handoff webhook receives. It carries the customer's number: the business needs it
    to answer, and the URL is the operator's own."""
    admin = f"/api/v1/whatsapp/conversations/{conversation_id}"
    return {
        "event": "handoff_requested",
        "id": handoff_key(conversation_id, handoff),
        "conversation_id": conversation_id,
        "customer": {"wa_id": wa_id, "profile_name": profile_name},
        "reason": handoff["reason"],
        "last_message": question,
        "requested_at": _iso(handoff["requested_at"]),
        "bot_silent_until": _iso(handoff["until"]),
        "admin_api": {"conversation": admin, "reply": f"{admin}/reply", "release": f"{admin}/release"},
    }


def _iso(value: datetime) -> str:
    return value.isoformat()
