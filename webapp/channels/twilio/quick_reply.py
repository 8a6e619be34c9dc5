"""Quick-reply buttons through Twilio: a WhatsApp message with buttons is a `twilio/quick-reply`
content (Content API), created once and sent by its SID (`HX…`) with `ContentVariables`.

One content serves every message with the same button titles in the same language: its body is
the variable {{1}} (the text) and its buttons' ids are {{2}}, {{3}}… (Twilio takes variables in
both), so any text and any ids fit (a rating's buttons name the answer they rate). A content is
created on first use; its SID is kept in MongoDB (`twilio_contents`) for every process, under a
key made of what the content holds, and in this process's memory, so a known content costs no
database call.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from datetime import datetime, timezone
from typing import Protocol

from pymongo.errors import PyMongoError

from rag.language import detect_language
from webapp.channels.base import Button, Failure, SendError

log = logging.getLogger(__name__)

# What Twilio takes in a quick-reply message sent within the customer's 24-hour window: its
# twilio/quick-reply document (a body of at most 1,024 characters; three buttons without an
# approved template), WhatsApp's reply buttons (a title of at most 20 characters) and Twilio's id
# limit; a variable holding a newline, a tab or more than four spaces in a row is refused (21656).
MAX_BUTTONS, MAX_BUTTON_TITLE, MAX_BUTTON_ID, MAX_BODY = 3, 20, 200, 1024
NOT_IN_A_VARIABLE = re.compile(r"[\n\t]| {5}")
# A content Twilio refused to create is not asked for again (by this process) before this long: the
# text goes alone meanwhile, without a request that would be refused again.
REFUSED_FOR_SECONDS = 3600.0


class ContentRefused(SendError):
    """Twilio refused a quick-reply content for good (creating it, or sending by it): the text goes alone."""

    def __init__(self, message: str, http_status: int | None = None, code: int | None = None):
        super().__init__(message, Failure.PERMANENT, http_status, code)


class ContentSids(Protocol):
    """Where the SIDs of the contents created are kept for every process (`twilio_contents`)."""

    def sid_of(self, key: str) -> str | None: ...

    def keep(self, key: str, sid: str, description: dict, now: datetime) -> str: ...

    def forget(self, key: str, sid: str) -> None: ...


def problem(text: str, buttons: list[Button]) -> str | None:
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        return f"a quick-reply message has 1 to {MAX_BUTTONS} buttons, not {len(buttons)}"
    if not 0 < len(text) <= MAX_BODY or NOT_IN_A_VARIABLE.search(text):
        return f"a quick-reply text is 1 to {MAX_BODY} characters on one line"
    for button in buttons:
        if not 0 < len(button.title) <= MAX_BUTTON_TITLE or not 0 < len(button.id) <= MAX_BUTTON_ID:
            return f"a button's title is 1 to {MAX_BUTTON_TITLE} characters and its id 1 to {MAX_BUTTON_ID}"
        if NOT_IN_A_VARIABLE.search(button.id):
            return "a button's id is on one line"
    return None


def definition(buttons: list[Button]) -> dict:
    """The content for these buttons: its language (that of their titles) and its types."""
    language = detect_language(" ".join(button.title for button in buttons))
    actions = [{"type": "QUICK_REPLY", "title": button.title, "id": f"{{{{{number}}}}}"}
               for number, button in enumerate(buttons, start=2)]
    return {"language": language, "types": {"twilio/quick-reply": {"body": "{{1}}", "actions": actions}}}


def key_of(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def variables_of(text: str, buttons: list[Button]) -> dict[str, str]:
    return {"1": text, **{str(number): button.id for number, button in enumerate(buttons, start=2)}}


class QuickReplyContents:
    """The SIDs of the quick-reply contents: from memory, from `kept`, or created by `create`
    (given the content's key, the content and sample values of its variables; returns its SID)."""

    def __init__(self, create, kept: ContentSids | None = None):
        self.create = create
        self.kept = kept
        self.sids: dict[str, str] = {}  # key → SID
        self.refused: dict[str, float] = {}  # key → when (time.monotonic) it may be asked for again
        self._lock = threading.Lock()

    def sid(self, text: str, buttons: list[Button]) -> tuple[str, str]:
        """The key and SID of the content for these buttons, created now if there is none."""
        content = definition(buttons)
        key = key_of(content)
        with self._lock:
            known, refused_until = self.sids.get(key), self.refused.get(key, 0.0)
        if known is None and time.monotonic() < refused_until:
            raise ContentRefused("Twilio refused this quick-reply content less than an hour ago")
        sid = known or self._stored(key) or self._created(key, content, variables_of(text, buttons))
        with self._lock:
            self.sids[key] = sid
        return key, sid

    def forget(self, key: str, sid: str) -> None:
        """A SID Twilio no longer knows (the content was deleted): the next message creates another."""
        with self._lock:
            self.sids.pop(key, None)
        if self.kept is not None:
            try:
                self.kept.forget(key, sid)
            except PyMongoError as exc:
                log.warning("could not forget quick-reply content %s: %s", sid, exc)

    def _stored(self, key: str) -> str | None:
        if self.kept is None:
            return None
        try:
            return self.kept.sid_of(key)
        except PyMongoError as exc:
            raise SendError(f"the quick-reply content's SID could not be read: {exc}", Failure.RETRY) from None

    def _created(self, key: str, content: dict, samples: dict[str, str]) -> str:
        """Create the content. Two processes may both create it: the SID stored first is the one
        both use (the other content stays unused in Twilio)."""
        try:
            sid = self.create(key, content, samples)
        except ContentRefused:
            with self._lock:
                self.refused[key] = time.monotonic() + REFUSED_FOR_SECONDS
            raise
        actions = content["types"]["twilio/quick-reply"]["actions"]
        description = {"language": content["language"], "titles": [action["title"] for action in actions]}
        log.info("quick-reply content %s created (%s)", sid, ", ".join(description["titles"]))
        if self.kept is None:
            return sid
        try:
            return self.kept.keep(key, sid, description, datetime.now(timezone.utc))
        except PyMongoError as exc:
            log.warning("quick-reply content %s not kept (%s): this process remembers it", sid, exc)
            return sid
