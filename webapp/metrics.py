"""Prometheus metrics: what the web processes and the worker count, and `/metrics`' exposition.

Several processes count (gunicorn's workers and the reply worker). With PROMETHEUS_MULTIPROC_DIR
set (gunicorn.conf.py sets it; `make run` shares one with the worker), prometheus-client keeps
each process's values in files there and `/metrics` sums them, whichever process answers the
scrape. Without it (one process, or tests) the values live in this process only.

The queue's depth and age are read from MongoDB at scrape time: they belong to no one process.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from langchain_core.callbacks import BaseCallbackHandler
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

# Seconds: a WhatsApp answer should take a few; an LLM call or a Twilio send, well under one to tens.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120)
FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The app's metrics, in a registry of their own (an app may be created more than once in a
    process, and prometheus-client refuses a metric name twice in one registry)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.webhooks = Counter(
            "whatsapp_webhooks", "Customers' messages delivered to a channel's webhook, by channel and "
            "outcome: stored, duplicate, rate_limited, invalid (400), forbidden (bad signature, 403)",
            ["channel", "outcome"], registry=self.registry)
        self.rate_limit_hits = Counter(
            "whatsapp_rate_limit_hits", "Requests refused by a rate limit: customer (per wa_id), admin "
            "(per IP), admin_lockout (too many wrong tokens)", ["limit"], registry=self.registry)
        self.reply_latency = Histogram(
            "whatsapp_reply_latency_seconds", "From the customer's (first unanswered) message reaching "
            "the webhook to the reply's first part accepted by Twilio", buckets=LATENCY_BUCKETS,
            registry=self.registry)
        self.answers = Counter(
            "whatsapp_answers", "Answers produced, by outcome: answered, unknown (I don't know), "
            "fallback (answered offline: the LLM failed), small_talk, unreadable, error, handoff, feedback "
            "(thanks for a 👍), disliked (the reply to a 👎)", ["outcome"],
            registry=self.registry)
        self.ratings = Counter("whatsapp_answer_ratings", "Answers rated by customers: up (👍) or down (👎)",
                               ["rating"], registry=self.registry)
        self.retrieval_latency = Histogram(
            "whatsapp_retrieval_seconds", "Searching the knowledge index for one question",
            buckets=FAST_BUCKETS, registry=self.registry)
        self.llm_latency = Histogram(
            "whatsapp_llm_seconds", "One call to the chat model (OpenAI or compatible)",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.llm_errors = Counter(
            "whatsapp_llm_errors", "Failed chat-model calls, by exception type", ["error"], registry=self.registry)
        self.send_latency = Histogram(
            "whatsapp_send_seconds", "One message sent through a channel's API, answered or not",
            ["channel"], buckets=FAST_BUCKETS + (20, 30), registry=self.registry)
        self.send_errors = Counter(
            "whatsapp_send_errors", "Sends the provider refused or did not answer, by its error code "
            "(http_<status> without one, timeout, unreachable)", ["channel", "error_code"], registry=self.registry)

    def llm_callbacks(self) -> list[BaseCallbackHandler]:
        """For the chat model: LangChain reports each call's start, end and failure to these."""
        return [LlmCallMetrics(self)]

    def exposition(self, store, chatwoot: bool = False) -> bytes:
        """The Prometheus text format: every process's counts, and the queue (and with `chatwoot`,
        what Chatwoot is still to be told) as MongoDB has it."""
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            MultiProcessCollector(registry)
        else:
            registry.register(self.registry)
        registry.register(BacklogCollector(store.jobs.backlog, "whatsapp_queue_depth",
                                           "whatsapp_queue_oldest_age_seconds",
                                           "Conversations with work queued for the worker"))
        if chatwoot:  # it catches up on its own: a backlog to watch, not a failure
            registry.register(BacklogCollector(store.chatwoot_sync.backlog, "whatsapp_chatwoot_backlog",
                                               "whatsapp_chatwoot_oldest_age_seconds", "Events not yet told to Chatwoot"))
        return generate_latest(registry)


def send_error_label(error) -> str:
    """A SendError as a label: the provider's code, else what happened."""
    if error.code:
        return str(error.code)
    if error.maybe_sent:
        return "timeout"
    return f"http_{error.http_status}" if error.http_status else "unreachable"


class LlmCallMetrics(BaseCallbackHandler):
    """Times chat-model calls; LangChain calls these hooks from the thread that made the call."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self._started: dict = {}
        self._lock = threading.Lock()

    def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs) -> None:
        with self._lock:
            self._started[run_id] = time.perf_counter()

    def on_llm_end(self, response, *, run_id, **kwargs) -> None:
        self._observe(run_id)

    def on_llm_error(self, error: BaseException, *, run_id, **kwargs) -> None:
        self._observe(run_id)
        self.metrics.llm_errors.labels(error=type(error).__name__).inc()

    def _observe(self, run_id) -> None:
        with self._lock:
            started = self._started.pop(run_id, None)
        if started is not None:
            self.metrics.llm_latency.observe(time.perf_counter() - started)


@dataclass(frozen=True)
class BacklogCollector:
    """A backlog as MongoDB has it at scrape time: how much waits (`read` gives that and since when
    the oldest item has waited), as the gauges `name` and `age_name`."""

    read: Callable[[], tuple[int, datetime | None]]
    name: str
    age_name: str
    what: str  # what waits ("Conversations with work queued for the worker")

    def collect(self):
        try:
            count, oldest = self.read()
        except PyMongoError as exc:
            log.warning("metrics: %s could not be read: %s", self.name, type(exc).__name__)
            return
        yield GaugeMetricFamily(self.name, self.what, value=count)
        yield GaugeMetricFamily(self.age_name, f"{self.what}: the oldest one's age (0 when none)", value=age_of(oldest))


def age_of(oldest: datetime | None) -> float:
    """Seconds since `oldest` (0 for None)."""
    return max((datetime.now(timezone.utc) - oldest).total_seconds(), 0.0) if oldest else 0.0
