"""The background worker: claims conversations with pending messages, answers, sends.

Run it as its own process (`python -m webapp.worker`), as many as you like: a conversation is
claimed by one worker at a time under a lease (see `webapp.db.jobs`), and its messages are
answered in order. Messages that arrive together (a burst, or while the bot was busy) are
answered as one question.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from pymongo.errors import PyMongoError

from rag.answer import Answer, Assistant
from rag.language import detect_language, phrase, small_talk
from rag.retrieve import Turn
from webapp.backoff import backoff_seconds
from webapp.bot_config import BotConfig, BotConfigReader
from webapp.channels import Channels, route_of
from webapp.channels.base import Button, Failure, SendError, Template
from webapp.chatwoot import client_of, outbox_of
from webapp.chatwoot import sync as chatwoot
from webapp.chatwoot.sync import ChatwootSyncer, keep_syncing
from webapp.db import Store
from webapp.db.events import event, message_event
from webapp.db.messages import HELD
from webapp.feedback import RATED_OUTCOMES, asks_now, question_part, rating_in
from webapp.gaps import vector_bytes
from webapp.handoff import (OFFERS_PERSON, UNANSWERED, HandoffNotifier, asked_for_person, handoff_event, notice,
                            person_button, tapped_person, unanswered_in_a_row)
from webapp.leads import contact_details, only_contact_details
from webapp.logs import bind, log_context, mask_phone
from webapp.formatting import MAX_REPLY_CHARS, format_reply
from webapp.metrics import Metrics, send_error_label

log = logging.getLogger(__name__)

# A reaction (an emoji on one of our messages) is kept, but answering it would only be noise.
UNANSWERED_TYPES = ("reaction",)
CHATWOOT_POLL_SECONDS = 1.0  # how soon an idle Chatwoot sync sees new events
DRY_RUN_POLL_SECONDS = 1.0  # how soon an idle worker sees a question asked from the console
DRY_RUN_LEASE_SECONDS = 120.0  # a dry run held by a worker that died is answered by another after this
PASSAGE_CHARS = 300  # of each passage retrieved, kept with a dry run's answer


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ReplyWorker:
    def __init__(self, store: Store, assistant: Assistant, channels: Channels, settings,
                 metrics: Metrics | None = None, bot_config: BotConfigReader | None = None):
        self.store = store
        self.assistant = assistant
        self.channels = channels
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.bot_config = bot_config or BotConfigReader(store.bot_config, settings, settings.bot_config_refresh_seconds)
        self.worker_id = process_id()
        self.events: list[dict] = []  # the job in hand's, recorded when it ends
        self.notifier = HandoffNotifier.from_settings(settings)
        self.chatwoot = outbox_of(settings, store)

    def run(self, stop: threading.Event, poll_turn: threading.Lock | None = None) -> None:
        """Process jobs until `stop` is set; the job in hand is always finished first. A job that
        fails is released (logged) and the loop carries on. Idle threads of one process share
        `poll_turn`: one of them polls the database at a time, so idle polling costs one query
        per WORKER_POLL_SECONDS per process, however many threads wait."""
        poll_turn = poll_turn or threading.Lock()
        log.info("worker %s started (%s)", self.worker_id, ", ".join(
            f"{channel.name}: {'dry-run' if channel.dry_run else 'sending'}" for channel in self.channels))
        while not stop.is_set():
            try:
                with poll_turn:
                    job = None if stop.is_set() else self.claim()
                    if job is None:
                        stop.wait(self.settings.worker_poll_seconds)
                        continue
                self.handle(job)
            except Exception:  # the database is unreachable, or a job failed: keep serving the rest
                log.exception("worker %s: carrying on after an error", self.worker_id)
                stop.wait(self.settings.worker_poll_seconds)
        log.info("worker %s stopped", self.worker_id)

    def run_once(self) -> bool:
        """Claim and process one due job; False when there was none."""
        job = self.claim()
        if job is None:
            return False
        self.handle(job)
        return True

    def claim(self) -> dict | None:
        return self.store.jobs.claim(self.worker_id, utcnow(), self.settings.worker_lease_seconds)

    def handle(self, job: dict) -> None:
        """Process a claimed job, then complete it, postpone it to its retry time, or (when it
        failed) release it for another attempt."""
        self.events = []
        try:
            with log_context(conversation_id=job["_id"]):
                retry_at = self.process(job)
        except Exception:
            log.warning("job for conversation %s failed; released for a retry", job["_id"])
            self.store.jobs.release(job)
            raise
        finally:
            self.record_events()
        if retry_at:
            self.store.jobs.postpone(job, retry_at)
        else:
            self.store.jobs.complete(job)

    def record_events(self) -> None:
        """The job's events, in one command. Analytics: a failure to record them is logged, and
        the job's outcome stands (the messages themselves are the record)."""
        try:
            self.store.events.record(self.events)
        except PyMongoError as exc:
            log.warning("%d event(s) not recorded: %s", len(self.events), exc)

    def run_until_idle(self, max_jobs: int = 100) -> int:
        """Process due jobs until none is left (bounded); how many were processed."""
        for done in range(max_jobs):
            if not self.run_once():
                return done
        return max_jobs

    def process(self, job: dict) -> datetime | None:
        """Send what is queued, answer what is new, send that. Returns when to come back if a
        part must wait for a retry: nothing later in the conversation goes out before it."""
        conversation_id = job["_id"]
        left, pending = self.store.messages.open_work(conversation_id)
        held = [m for m in left if m["status"] == HELD]
        left = [m for m in left if m["status"] != HELD]
        if held and pending:
            left, pending = self.release_held(job, held, left, pending)
        if left:  # queued by an earlier attempt, an agent's reply or a re-send
            # Queued means answered, even if the attempt that queued it died before saying so.
            covered = {i for m in left for i in m["reply_to"]}
            self.store.messages.mark_taken_up(list(covered), utcnow())
            retry_at = self.send_replies(job, left)
            if retry_at:
                return retry_at
            pending = [m for m in pending if m["_id"] not in covered]
        if not pending:
            return None
        self.take_up(job, pending)
        if self.kept_for_agent(job, pending) or self.acknowledged(pending):
            return None
        history = self.store.messages.history(conversation_id, pending[0]["created_at"], self.history_limit)
        questions, thanks = self.take_ratings(pending, history)
        if not questions and thanks is None:  # a rating given before, tapped again
            self.store.messages.mark_taken_up([m["_id"] for m in pending], utcnow(), status="acknowledged")
            return None
        self.show_typing(pending[-1])
        config = self.bot_config.current()
        if questions:
            with self.lease_kept(job):  # an LLM may take longer than a lease
                answer, handoff_reason = self.reply_to(questions, history, config)
        else:
            answer, handoff_reason = thanks, None
        # If the lease was lost all the same (the database was out of reach), another worker's
        # answer covers these messages and newer ones: queueing this one would mark those
        # answered with no reply.
        self.hold_lease(job)
        # Before the reply is queued: from here on, the customer's next message waits for a person.
        handoff = self.start_handoff(conversation_id, handoff_reason) if handoff_reason else None
        now = utcnow()
        route = route_of(pending[-1])  # the way the customer's latest message came in
        bodies = format_reply(answer.text, self.channels.part_chars(route["channel"]), config.max_answer_chars)
        bodies, buttons, extra = self.around_answer(conversation_id, answer, bodies, pending[0]["_id"],
                                                    question_of(questions))
        parts = self.store.messages.queue_reply(
            conversation_id, job["wa_id"], [m["_id"] for m in pending], bodies, now,
            kind="answer", route=route, answer_text=answer.text, outcome=answer.outcome, sources=answer.sources,
            buttons=buttons, language=answer.language, received_at=pending[0]["created_at"], **extra,
        )
        self.store.messages.mark_taken_up([m["_id"] for m in pending], now)
        told = [*map(chatwoot.outgoing, bodies), chatwoot.outcome(answer.outcome, answer.sources)]  # as sent
        self.chatwoot.tell(conversation_id, job["wa_id"], now, *told, *([chatwoot.handoff(handoff["reason"])]
                                                                       if handoff else []))
        log.info("answered %d message(s): %s, %d part(s) to send", len(pending), answer.outcome, len(parts))
        retry_at = self.send_replies(job, parts)
        if handoff:
            self.notify_handoff(job, handoff, pending)
        return retry_at

    def release_held(self, job: dict, held: list[dict], left: list[dict],
                     pending: list[dict]) -> tuple[list[dict], list[dict]]:
        """The customer wrote after a person's reply was held for the 24-hour window: the window is
        open, and their message (most likely their answer to the template) is answered by the held
        reply, sent now. A template not sent yet is not sent at all. What is left to send, and to
        answer (nothing)."""
        self.take_up(job, pending)
        self.store.messages.release_held([m["_id"] for m in held], utcnow())
        self.store.messages.mark_taken_up([m["_id"] for m in pending], utcnow())
        unsent = [m for m in left if m.get("template") and m["status"] == "pending"]
        for template in unsent:
            self.store.messages.record_send(template["_id"], "canceled", utcnow(),
                                            error_message="the customer wrote first")
        log.info("the customer wrote again: %d held part(s) of a person's reply go now", len(held))
        released = [dict(m, status="pending") for m in held]
        rest = [m for m in left if m not in unsent]
        return sorted(rest + released, key=lambda m: (m["created_at"], m["part"])), []

    @property
    def history_limit(self) -> int:
        """Turns to read: those the assistant is given, and enough to count unanswered questions."""
        return max(self.settings.history_turns, 2 * self.settings.handoff_after_unanswered)

    def take_up(self, job: dict, pending: list[dict]) -> None:
        """What every message taken up gets, answered or not: its event, and the session touched
        (here, once per batch, not by the webhook: one database call less on the path Twilio
        waits for)."""
        bind(message_sid=pending[-1].get("external_id"))  # the newest message answered; until the job ends
        self.events += [message_event("message_received", m, m["created_at"]) for m in pending]
        profile_name = profile_name_of(pending)
        self.store.sessions.touch(job["wa_id"], job["_id"], pending[-1]["created_at"], profile_name)
        details = {}
        for message in pending:  # a later message's details win
            details.update(contact_details(message["body"]))
        if details and self.store.leads.note(job["_id"], job["wa_id"], profile_name, details, utcnow()):
            self.events.append(event("lead_created", job["_id"], job["_id"], utcnow()))
        if details:
            self.chatwoot.tell(job["_id"], job["wa_id"], utcnow(), chatwoot.lead(details))

    def take_ratings(self, pending: list[dict], history: list[dict]) -> tuple[list[dict], Answer | None]:
        """Store the ratings (👍 / 👎) among `pending`, each answer's first only: the messages left
        to answer, and when there are none, the reply to the newest rating stored now (None when
        every rating had been given before)."""
        last_answer = next((turn for turn in reversed(history) if turn["direction"] == "outbound"), None)
        ratings = [rating for rating in (rating_in(m, last_answer) for m in pending) if rating]
        rated = {rating.message_id for rating in ratings}
        stored = None
        for rating in ratings:
            answer = self.store.messages.rate(rating.answer_key, rating.value, utcnow())
            if answer:
                stored = answer
                self.events.append(event("answer_rated", rating.answer_key, answer["conversation_id"], utcnow(),
                                         rating=rating.value))
                self.metrics.ratings.labels(rating=rating.value).inc()
        questions = [m for m in pending if m["_id"] not in rated]
        if questions or stored is None:
            return questions, None
        language = stored.get("language") or self.assistant.fallback_language
        if stored["feedback"] == "down":
            return [], Answer(phrase("feedback_sorry", language), language, "disliked")
        return [], Answer(phrase("feedback_thanks", language), language, "feedback")

    def around_answer(self, conversation_id: str, answer: Answer, bodies: list[str], first_answered,
                      question: str) -> tuple[list[str], list[dict] | None, dict]:
        """The parts to send (the answer's, and "¿Te sirvió?" when it asks for a rating), the buttons
        under the last (a person offered with "I don't know" and after a 👎), and what the answer's
        first part keeps besides: whether it asked, and for a question the bot could not answer or
        asked about, the question and its vector (the knowledge gaps)."""
        if answer.outcome in OFFERS_PERSON:
            return bodies, [person_button(answer.language)], self.gap(question) if answer.outcome == "unknown" else {}
        if answer.outcome not in RATED_OUTCOMES or not self.asks_rating(conversation_id):
            return bodies, None, {}
        body, buttons = question_part(answer.language, first_answered)
        return [*bodies, body], buttons, {"feedback_asked": True, **self.gap(question)}

    def asks_rating(self, conversation_id: str) -> bool:
        """Counts the answer (only when feedback is on: the count costs a database call)."""
        every_n = self.settings.feedback_every_n_answers
        return every_n > 0 and asks_now(every_n, self.store.conversations.count_answer(conversation_id))

    def gap(self, question: str) -> dict:
        """The question, and its vector, which groups it with others of the same meaning."""
        if not question:
            return {}
        try:
            return {"question": question, "question_vector": vector_bytes(
                self.assistant.retriever.question_vector(question))}
        except Exception as exc:  # an embedding server out of reach: the gap is kept, in no group
            log.warning("the question's vector was not kept: %s", exc)
            return {"question": question}

    def show_typing(self, newest: dict) -> None:
        """The customer sees their messages read and the bot typing, where the channel can show it
        (one call for the newest: WhatsApp marks the earlier ones read with it)."""
        route = route_of(newest)
        channel = self.channels.get(route["channel"])
        if channel is None or not newest.get("external_id"):
            return
        try:
            channel.acknowledge(route["business"], newest["external_id"])
        except SendError as exc:  # only a courtesy: the answer goes out all the same
            log.info("could not mark the customer's message read: %s", exc.message)

    def acknowledged(self, pending: list[dict]) -> bool:
        """Nothing to answer (reactions only): kept as acknowledged."""
        if not all(m.get("type") in UNANSWERED_TYPES and not m["body"] for m in pending):
            return False
        self.store.messages.mark_taken_up([m["_id"] for m in pending], utcnow(), status="acknowledged")
        return True

    def kept_for_agent(self, job: dict, pending: list[dict]) -> bool:
        """In a handoff the bot stays silent: the messages wait for the person (status `handoff`).
        A handoff whose time has run out is released here, and the bot answers again."""
        conversation_id = job["_id"]
        handoff = (self.store.conversations.get(conversation_id) or {}).get("handoff")
        if handoff is None:
            return False
        if handoff["until"] > utcnow():
            self.store.messages.mark_taken_up([m["_id"] for m in pending], utcnow(), status="handoff")
            log.info("%d message(s) kept for the person answering this conversation", len(pending))
            if "notified_at" not in handoff and "notify_error" not in handoff:  # its job died before telling
                self.notify_handoff(job, handoff, pending)
            return True
        released = self.store.conversations.release(conversation_id, utcnow(), by="timeout")
        if released:
            self.events.append(handoff_event("handoff_released", conversation_id, released, by="timeout"))
            self.chatwoot.tell(conversation_id, job["wa_id"], utcnow(), chatwoot.released("timeout"))
        return False

    def reply_to(self, pending: list[dict], history: list[dict], config: BotConfig) -> tuple[Answer, str | None]:
        """The answer to the pending messages, and why the conversation goes to a person now, if
        it does: "asked" (for a person), or "unanswered" (too many answers in a row the bot could
        not give; this one would be one more)."""
        question = question_of(pending)
        turns = [Turn("user" if m["direction"] == "inbound" else "assistant", m.get("answer_text") or m["body"])
                 for m in history[max(0, len(history) - self.settings.history_turns):]]
        reason = None
        if not question:  # media, a location…: nothing we can read yet
            language = detect_language(" ".join(t.text for t in turns if t.role == "user"))
            voice_only = all(m.get("type") == "audio" for m in pending)
            answer = Answer(phrase("send_voice_as_text" if voice_only else "send_text", language), language,
                            "unreadable")
        elif asked_for_person(question, history) or tapped_person(pending):
            answer, reason = self.handoff_answer(question, turns, config), "asked"
        elif only_contact_details(question):  # noted as a lead in take_up; nothing to look up
            language = self.assistant.language(question, turns)
            answer = Answer(phrase("contact_noted", language), language, "small_talk")
        else:
            answer = self.assistant.answer(question, turns, config.persona())
            limit = self.settings.handoff_after_unanswered
            if answer.outcome in UNANSWERED and limit and unanswered_in_a_row(history) + 1 >= limit:
                answer, reason = self.handoff_answer(question, turns, config), "unanswered"
        if config.greeting and not history and reason is None:  # the conversation's first message
            alone = small_talk(question) == "greeting"
            answer = replace(answer, text=config.greeting if alone else f"{config.greeting}\n\n{answer.text}")
        self.metrics.answers.labels(outcome=answer.outcome).inc()
        if answer.retrieval_seconds:
            self.metrics.retrieval_latency.observe(answer.retrieval_seconds)
        return answer, reason

    def handoff_answer(self, question: str, turns: list[Turn], config: BotConfig) -> Answer:
        """A person will answer; out of business hours, the business's own message for that."""
        language = self.assistant.language(question, turns)
        closed = config.out_of_hours_message and config.out_of_hours(utcnow())
        return Answer(config.out_of_hours_message if closed else phrase("handoff", language), language, "handoff")

    def start_handoff(self, conversation_id: str, reason: str) -> dict | None:
        now = utcnow()
        until = now + timedelta(minutes=self.settings.handoff_timeout_minutes)
        handoff = self.store.conversations.start_handoff(conversation_id, now, until, reason)
        if handoff:
            log.info("conversation handed to a person (%s) until %s", reason, until.isoformat())
            self.events.append(handoff_event("handoff_requested", conversation_id, handoff, reason=reason))
        return handoff

    def notify_handoff(self, job: dict, handoff: dict, pending: list[dict]) -> None:
        error = self.notifier.notify(notice(job["_id"], job["wa_id"], handoff, question_of(pending),
                                            profile_name_of(pending)))
        if self.notifier.url:
            self.store.conversations.record_notice(job["_id"], handoff["requested_at"], utcnow(), error)

    def hold_lease(self, job: dict) -> None:
        """Make sure the job's lease has at least half of its length left (renewing it if not),
        or raise: another worker may own the conversation now. No other worker can take a job
        before its lease ends, so a lease known to have time left needs no database call."""
        lease_seconds = self.settings.worker_lease_seconds
        if job["lease_until"] - utcnow() > timedelta(seconds=lease_seconds / 2):
            return
        if not self.store.jobs.renew(job, utcnow(), lease_seconds):
            raise RuntimeError("lease lost: another worker owns this conversation now")

    @contextmanager
    def lease_kept(self, job: dict):
        """Renew the job's lease in the background while the block runs (every third of a lease),
        so a slow answer is not taken over by another worker while this one is alive."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.settings.worker_lease_seconds / 3):
                try:
                    if not self.store.jobs.renew(job, utcnow(), self.settings.worker_lease_seconds):
                        return
                except PyMongoError as exc:  # try again next time; the lease outlasts two misses
                    log.warning("could not renew the lease of conversation %s: %s", job["_id"], exc)

        heartbeat = threading.Thread(target=renew, name=f"lease-{job['_id']}", daemon=True)
        heartbeat.start()
        try:
            yield
        finally:
            done.set()
            heartbeat.join()

    def send_replies(self, job: dict, replies: list[dict]) -> datetime | None:
        """Send queued parts in order; a failed part fails the rest of its reply. Stops at a part
        that must wait for a retry, and returns when it is due."""
        failed_reply = None
        for message in replies:
            self.hold_lease(job)
            if failed_reply == message["reply_to"]:
                self.store.messages.record_send(message["_id"], "failed", utcnow(), error_message="an earlier part failed")
                self.events.append(message_event("message_failed", message, utcnow()))
                continue
            retry_at = message.get("retry_at")
            if retry_at and retry_at > utcnow():
                return retry_at
            status, retry_at = self.send(message)
            if retry_at:
                return retry_at
            if status == "failed":
                failed_reply = message["reply_to"]
        return None

    def send(self, message: dict) -> tuple[str, datetime | None]:
        """Hand one part to its channel: its status, and when to try again if the provider was busy
        or out of reach (the part is then pending again)."""
        route = route_of(message)
        channel = self.channels.get(route["channel"])
        if channel is None:  # a channel this deployment no longer serves
            log.warning("message %s not sent: channel %s is not configured", message["_id"], route["channel"])
            self.store.messages.record_send(message["_id"], "failed", utcnow(),
                                            error_message=f"channel {route['channel']} is not configured")
            self.events.append(message_event("message_failed", message, utcnow()))
            return "failed", None
        self.store.messages.record_send(message["_id"], "submitting", utcnow())
        started = time.perf_counter()
        buttons = [Button(**button) for button in message.get("buttons", [])]
        try:
            if message.get("template"):
                result = channel.send_template(route["business"], message["wa_id"],
                                               Template.from_record(message["template"]), reference=str(message["_id"]))
            elif buttons and channel.shows_buttons(message["body"], buttons):
                result = channel.send_buttons(route["business"], message["wa_id"], message["body"], buttons,
                                              reference=str(message["_id"]))
            else:
                result = channel.send_text(route["business"], message["wa_id"], message["body"],
                                           reference=str(message["_id"]))
        except SendError as exc:
            self.metrics.send_latency.labels(channel=channel.name).observe(time.perf_counter() - started)
            self.metrics.send_errors.labels(channel=channel.name, error_code=send_error_label(exc)).inc()
            return self.failed_send(message, exc)
        sent_at = utcnow()
        self.metrics.send_latency.labels(channel=channel.name).observe(time.perf_counter() - started)
        if message.get("received_at"):  # an answer's first part
            self.metrics.reply_latency.observe((sent_at - message["received_at"]).total_seconds())
        self.store.messages.record_send(message["_id"], result.status, sent_at, external_id=result.external_id,
                                        sent_at=sent_at)
        self.events.append(message_event("message_sent", message, sent_at))
        return result.status, None

    def failed_send(self, message: dict, exc: SendError) -> tuple[str, datetime | None]:
        """A part the provider refused or did not confirm: pending again with a retry time while
        a retry is worth it, else `unconfirmed` (it may have gone out) or `failed`."""
        attempts = message.get("attempts", 0) + 1
        error = {"http_status": exc.http_status, "error_code": exc.code, "error_message": exc.message}
        to = mask_phone(f"+{message['wa_id']}")
        if exc.retryable and attempts < self.settings.send_max_attempts:
            retry_at = utcnow() + timedelta(seconds=self.retry_delay(attempts, exc.retry_after))
            log.warning("sending to %s failed (attempt %d, HTTP %s code %s: %s); retrying at %s",
                        to, attempts, exc.http_status, exc.code, exc.message, retry_at.isoformat())
            self.store.messages.defer_send(message["_id"], attempts, retry_at, utcnow(), **error)
            return "pending", retry_at
        status = "unconfirmed" if exc.failure is Failure.UNCONFIRMED else "failed"
        log.warning("sending to %s: %s (attempt %d, HTTP %s code %s: %s)",
                    to, status, attempts, exc.http_status, exc.code, exc.message)
        self.store.messages.record_send(message["_id"], status, utcnow(), attempts=attempts, **error)
        if status == "failed":
            self.events.append(message_event("message_failed", message, utcnow(), error_code=exc.code))
        if status == "failed" and message.get("template"):  # what waited for the customer's answer never goes
            self.store.messages.fail_held(message["conversation_id"], utcnow(),
                                          f"the template was refused: {exc.message}")
        return status, None

    def retry_delay(self, attempts: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter, never shorter than what the provider asked for."""
        settings = self.settings
        return max(retry_after or 0.0, backoff_seconds(attempts, settings.send_retry_base_seconds,
                                                       settings.send_retry_max_seconds))


def question_of(pending: list[dict]) -> str:
    """The customer's messages taken up together, as one question."""
    return "\n".join(m["body"] for m in pending if m["body"])


def profile_name_of(pending: list[dict]) -> str:
    return next((m["profile_name"] for m in reversed(pending) if m.get("profile_name")), "")


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def keep_beating(store: Store, index, every_seconds: float, stop: threading.Event) -> None:
    """Say every `every_seconds` that this process is alive and what its index holds (chunks, and
    its description: documents recounted only after an ingest), until `stop`; then take the
    heartbeat back. `/readyz` and the console read it."""
    beat_id = process_id()
    described = None
    while True:
        try:
            described, error = index.describe(described), ""
        except Exception as exc:  # Chroma's server is down, or its files are unreadable
            described, error = None, type(exc).__name__
        try:
            store.heartbeats.beat(beat_id, utcnow(), described and described["chunks"], error, described)
        except PyMongoError:
            log.warning("heartbeat not recorded: the database is unreachable")
        if stop.wait(every_seconds):
            break
    try:
        store.heartbeats.remove(beat_id)
    except PyMongoError:
        pass  # it goes stale on its own


def keep_answering_dry_runs(store: Store, assistant: Assistant, bot_config: BotConfigReader, every_seconds: float,
                            stop: threading.Event) -> None:
    """Answer the questions asked from the console (`webapp.db.dry_runs`) as a customer's would be
    answered, checking every `every_seconds` while there are none, until `stop`. An answer is only
    stored for the console: nothing is sent, and no conversation, message or event is touched."""
    worker_id = process_id()
    while not stop.is_set():
        try:
            dry_run = store.dry_runs.claim(worker_id, utcnow(), DRY_RUN_LEASE_SECONDS)
            if dry_run:
                answer_dry_run(store, assistant, bot_config, dry_run)
        except PyMongoError as exc:
            log.warning("dry runs: the database is unreachable (%s)", type(exc).__name__)
            dry_run = None
        except Exception:  # anything else: the thread must outlive it, as the reply threads do
            log.exception("dry runs: unexpected error")
            dry_run = None
        if dry_run is None:
            stop.wait(every_seconds)


def answer_dry_run(store: Store, assistant: Assistant, bot_config: BotConfigReader, dry_run: dict) -> None:
    """Store the answer to a claimed dry run, or that it failed (why: the exception's type)."""
    dry_run_id = str(dry_run["_id"])
    try:
        result = dry_run_result(assistant, bot_config.current(), dry_run["question"])
    except Exception as exc:
        log.exception("dry run %s failed", dry_run_id)
        store.dry_runs.fail(dry_run_id, type(exc).__name__, utcnow())
        return
    store.dry_runs.finish(dry_run_id, result, utcnow())


def dry_run_result(assistant: Assistant, config: BotConfig, question: str) -> dict:
    """The answer a customer asking `question` in a new conversation would get, with the passages
    retrieved for it (highest score first) and how long it took."""
    started = time.perf_counter()
    answer = assistant.answer(question, [], config.persona())
    answer_seconds = time.perf_counter() - started
    # Capped at MAX_REPLY_CHARS or less, so in one part (none for an empty answer).
    text = "\n\n".join(format_reply(answer.text, MAX_REPLY_CHARS, config.max_answer_chars))
    passages = sorted(answer.retrieved, key=lambda hit: hit.score, reverse=True)
    return {"text": text, "outcome": answer.outcome, "language": answer.language, "sources": answer.sources,
            "passages": [{"source": hit.source, "title": hit.metadata.get("title", ""), "score": hit.score,
                          "text": hit.text[:PASSAGE_CHARS]} for hit in passages],
            "retrieval_seconds": answer.retrieval_seconds, "answer_seconds": answer_seconds}


def main() -> None:
    from rag.answer import build_assistant
    from webapp import warn_about_unsafe_settings
    from webapp.config import load_settings
    from webapp.db import open_store
    from webapp.logs import configure_logging
    from webapp.retention import keep_purging
    from webapp.channels import build_channels

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    warn_about_unsafe_settings(settings)
    store = open_store(settings.mongodb_uri, int(settings.mongodb_timeout_seconds * 1000))
    store.ensure_indexes()
    metrics = Metrics()
    assistant = build_assistant(settings, callbacks=metrics.llm_callbacks())
    assistant.retriever.warm_up()
    channels = build_channels(settings, store.sessions, store.twilio_contents)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    # Threads share the store, the model and the channels' clients; each claims its own conversations.
    # Waiting on the LLM or a provider dominates a job, so threads multiply throughput.
    poll_turn = threading.Lock()
    bot_config = BotConfigReader(store.bot_config, settings, settings.bot_config_refresh_seconds)
    threads = [
        threading.Thread(target=ReplyWorker(store, assistant, channels, settings, metrics, bot_config).run,
                         args=(stop, poll_turn),
                         name=f"reply-{n}")
        for n in range(settings.worker_threads)
    ]
    threads.append(threading.Thread(target=keep_beating, name="heartbeat",
                                    args=(store, assistant.retriever.index, settings.worker_heartbeat_seconds, stop)))
    threads.append(threading.Thread(target=keep_answering_dry_runs, name="dry-runs",
                                    args=(store, assistant, bot_config, DRY_RUN_POLL_SECONDS, stop)))
    if settings.chatwoot_on:
        syncer = ChatwootSyncer(store.chatwoot_sync, client_of(settings), process_id(), settings.worker_lease_seconds,
                                retry_base_seconds=settings.send_retry_base_seconds,
                                retry_max_seconds=settings.send_retry_max_seconds)
        threads.append(threading.Thread(target=keep_syncing, name="chatwoot",
                                        args=(syncer, CHATWOOT_POLL_SECONDS, stop)))
    if settings.retention_days:
        threads.append(threading.Thread(target=keep_purging, name="retention",
                                        args=(store, settings.retention_days, stop)))
    for thread in threads:
        thread.start()
    # Join in slices: the main thread stays free to run the signal handler. (Not stop.wait(), which
    # returns at once after a stop: the loop would spin a CPU while the job in hand finishes.)
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)
    store.close()

if __name__ == "__main__":
    main()
