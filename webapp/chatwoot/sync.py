"""Mirroring conversations to Chatwoot, off the reply path.

What happens in a conversation is queued as an event in `chatwoot_sync` (one database write, in
the process where it happens: `ChatwootOutbox`), and told to Chatwoot later by the worker's sync
thread (`ChatwootSyncer`), in order, each once: Chatwoot down or slow only delays them. The events:

- `message`: a customer's message (`incoming`), or one they were sent (`outgoing`: the bot's
  answer or notice, or a person's reply through our admin API);
- `outcome`: how the bot answered (answered / unknown / handoff…) and from which documents, as the
  Chatwoot conversation's custom attributes;
- `handoff`: the conversation goes to a person: opened for agents (`open`; priority `high` when the
  customer asked for one), labelled, with a private note saying why;
- `released`: the bot answers again (the conversation set back to `pending` in Chatwoot, unless
  that is where it was released);
- `lead`: contact details the customer gave, on the Chatwoot contact, labelled `lead`;
- `note`: a private note for the agents (a reply of theirs that could not be sent, and why);
- `closed`: an admin closed the conversation (or reset the customer's session): `resolved`.

A customer's first event creates (or finds, by phone number) their Chatwoot contact and opens a
Chatwoot conversation for ours, `pending` while the bot answers it, as Chatwoot expects of a bot.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from webapp.backoff import backoff_seconds
from webapp.chatwoot.client import ChatwootClient, ChatwootError, Contact
from webapp.db.chatwoot_sync import ChatwootSync

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 2.0  # the worker passes SEND_RETRY_BASE_SECONDS and SEND_RETRY_MAX_SECONDS
RETRY_MAX_SECONDS = 300.0
INVALID_ATTEMPTS = 5  # Chatwoot refused the request itself this many times: it never will take it
ECHO_WINDOW = timedelta(minutes=2)  # a message posted when a timeout left it unknown is at most this old
HANDOFF_LABEL, LEAD_LABEL = "handoff", "lead"
BOT_STATUS, AGENT_STATUS = "pending", "open"
HANDOFF_NOTES = {"asked": "El cliente pidió hablar con una persona.",  # the agents' private note: why
                 "unanswered": "El bot no supo responder varias veces seguidas."}


def incoming(text: str, name: str = "") -> dict:
    return {"kind": "message", "direction": "incoming", "text": text, "name": name}


def outgoing(text: str) -> dict:
    return {"kind": "message", "direction": "outgoing", "text": text}


def outcome(result: str, sources: list[str]) -> dict:
    return {"kind": "outcome", "outcome": result, "sources": sources}


def handoff(reason: str) -> dict:
    return {"kind": "handoff", "reason": reason}


def released(by: str) -> dict:
    return {"kind": "released", "by": by}


def lead(details: dict) -> dict:
    return {"kind": "lead", "details": details}


def note(text: str) -> dict:
    return {"kind": "note", "text": text}


def closed() -> dict:
    return {"kind": "closed"}


class ChatwootOutbox:
    """Where the reply path queues what Chatwoot is to be told; without a `sync` (Chatwoot not
    configured) it is false and tells nothing, so the reply path need not ask."""

    def __init__(self, sync: ChatwootSync | None):
        self.sync = sync

    def __bool__(self) -> bool:
        return self.sync is not None

    def tell(self, conversation_id: str, wa_id: str, now: datetime, *events: dict) -> None:
        if self.sync is not None:
            self.sync.add(conversation_id, wa_id, list(events), now)


class ChatwootSyncer:
    """Tells Chatwoot, one conversation at a time (under a lease), what its outbox holds."""

    def __init__(self, sync: ChatwootSync, client: ChatwootClient, worker_id: str, lease_seconds: float = 60.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 retry_base_seconds: float = RETRY_BASE_SECONDS, retry_max_seconds: float = RETRY_MAX_SECONDS):
        self.sync, self.client = sync, client
        self.worker_id, self.lease_seconds, self.clock = worker_id, lease_seconds, clock
        self.retry_base_seconds, self.retry_max_seconds = retry_base_seconds, retry_max_seconds

    def run_once(self) -> bool:
        """Sync one conversation that has events due; False when none has."""
        state = self.sync.claim(self.worker_id, self.clock(), self.lease_seconds)
        if state is None:
            return False
        self._sync(state)
        return True

    def run_until_idle(self, max_rounds: int = 1000) -> None:
        for _ in range(max_rounds):
            if not self.run_once():
                return

    def _sync(self, state: dict) -> None:
        while state["events"]:
            if not self._lease_held(state):
                log.warning("Chatwoot sync of %s: lease lost, left to the sync that has it", state["_id"])
                return
            event = state["events"][0]
            try:
                posted = self._tell(state, event)
            except ChatwootError as error:
                self._failed(state, error)
                return
            self.sync.done(state, posted)
        self.sync.finish(state, self.clock())

    def _lease_held(self, state: dict) -> bool:
        """Whether the lease has half its length left, renewed if not: a slow Chatwoot must not let
        another sync take the conversation while this one is still telling it."""
        now = self.clock()
        if state["lease_until"] - now > timedelta(seconds=self.lease_seconds / 2):
            return True
        return self.sync.renew(state, now, self.lease_seconds)

    def _failed(self, state: dict, error: ChatwootError) -> None:
        attempts = state.get("attempts", 0) + 1
        if error.not_found and state.get("chatwoot"):
            log.warning("the Chatwoot conversation of %s is gone; opening another", state["_id"])
            self.sync.unlink(state)
            self.sync.postpone(state, self.clock(), str(error))
        elif error.invalid and attempts >= INVALID_ATTEMPTS:
            log.error("Chatwoot refused a %s event of %s %d times; skipped: %s", state["events"][0]["kind"],
                      state["_id"], attempts, error)
            self.sync.skip(state, str(error))
            self._sync(state)
        else:
            delay = backoff_seconds(attempts, self.retry_base_seconds, self.retry_max_seconds)
            log.warning("Chatwoot sync of %s failed (%s); again in %.0f s", state["_id"], error, delay)
            self.sync.postpone(state, self.clock() + timedelta(seconds=delay), str(error))

    def _tell(self, state: dict, event: dict) -> int | None:
        """Tell Chatwoot one event; the id of the message it posted, if it posted one."""
        conversation = self._chatwoot_conversation(state, event)
        kind = event["kind"]
        if kind == "message":
            return self._post(state, conversation, event["text"], event["direction"])
        if kind == "note":
            return self._post(state, conversation, event["text"], "outgoing", private=True)
        if kind == "outcome":
            self.client.set_attributes(conversation, {"bot_outcome": event["outcome"],
                                                      "bot_sources": ", ".join(event["sources"])})
        elif kind == "handoff":  # (one an agent started in Chatwoot is not told back)
            self.client.set_status(conversation, AGENT_STATUS)
            if event["reason"] == "asked":
                self.client.set_priority(conversation, "high")
            self._label(state, conversation, add=HANDOFF_LABEL)
            why = HANDOFF_NOTES.get(event["reason"], event["reason"])
            return self._post(state, conversation, f"Traspaso a una persona: {why}", "outgoing", private=True)
        elif kind == "released":
            if event["by"] != "chatwoot":
                self.client.set_status(conversation, BOT_STATUS)
            self._label(state, conversation, remove=HANDOFF_LABEL)
        elif kind == "closed":
            self.client.set_status(conversation, "resolved")
        elif kind == "lead":
            contact = state["chatwoot"]["contact_id"]
            self.client.update_contact(contact, {f"lead_{key}": value for key, value in event["details"].items()})
            self.client.set_contact_labels(contact, [LEAD_LABEL])
            self._label(state, conversation, add=LEAD_LABEL)
        return None

    def _chatwoot_conversation(self, state: dict, event: dict) -> int:
        """The Chatwoot conversation mirroring ours, its contact found or created first."""
        if state.get("chatwoot"):
            return state["chatwoot"]["conversation_id"]
        phone = f"+{state['wa_id']}"
        contact = self.client.find_contact(phone) or self._new_contact(phone, event.get("name", ""))
        conversation = self.client.create_conversation(contact, BOT_STATUS, {})
        self.sync.link(state, {"contact_id": contact.id, "conversation_id": conversation, "labels": []})
        return conversation

    def _new_contact(self, phone: str, name: str) -> Contact:
        try:
            return self.client.create_contact(phone, name)
        except ChatwootError as error:
            found = self.client.find_contact(phone) if error.invalid else None  # created meanwhile elsewhere
            if found is None:
                raise
            return found

    def _post(self, state: dict, conversation: int, text: str, direction: str, private: bool = False) -> int:
        """Post a message once: after a timeout left it unknown whether Chatwoot took it, look first."""
        now = self.clock()
        flight = state.get("in_flight")
        if flight and flight["content"] == text:
            since = flight["at"].timestamp() - ECHO_WINDOW.total_seconds()
            taken = [m for m in self.client.recent_messages(conversation) if m.get("content") == text and
                     m.get("id") not in state.get("posted", []) and (m.get("created_at") or 0) >= since]
            if taken:
                return taken[-1]["id"]
        self.sync.posting(state, text, now)
        state["in_flight"] = {"content": text, "at": now}
        return self.client.post_message(conversation, text, direction, private=private)

    def _label(self, state: dict, conversation: int, add: str = "", remove: str = "") -> None:
        labels = sorted((set(state["chatwoot"].get("labels", [])) | {add}) - {remove, ""})
        self.client.set_labels(conversation, labels)
        self.sync.link(state, {**state["chatwoot"], "labels": labels})


def keep_syncing(syncer: ChatwootSyncer, poll_seconds: float, stop) -> None:
    """Sync conversations as their events come, until `stop`; idle, look again every `poll_seconds`."""
    while not stop.is_set():
        try:
            if not syncer.run_once():
                stop.wait(poll_seconds)
        except Exception:  # the database is unreachable: carry on later
            log.exception("Chatwoot sync: carrying on after an error")
            stop.wait(poll_seconds)
