"""Load benchmark: many WhatsApp customers at once, through the app as it runs in production.

    python scripts/bench_load.py [--customers 200] [--messages 10] [--rate 50] [--llm-delay SECONDS]
                                 [--web-instances 1] [--workers 1] [--worker-threads 4] [--chroma-server]
                                 [--debounce 2] [--channel twilio|meta] [--json] [--mongodb-uri URI]
                                 [--mongodb-options OPTIONS] [--keep]

Starts, all on 127.0.0.1 and in a scratch folder removed afterwards: a MongoDB-protocol server
(SecantusDB, fresh data), a Chroma index of the sample knowledge base (sample_kb/: a folder, or with
`--chroma-server` a `chroma run` server), the fake Twilio REST API, `--web-instances` gunicorn
instances of 2 workers each (one port each: the load is spread over them, as a load balancer would)
and `--workers` worker processes (`python -m webapp.worker`, with `--worker-threads` threads each),
all sharing the one database and index. Answers are offline (no LLM), unless `--llm-delay` is
given: then a fake OpenAI server answers every chat request after that many seconds.

Each customer sends `--messages` distinct Spanish questions about the sample knowledge base, in
order; all customers together send `--rate` messages per second, open-loop (every message leaves at
its scheduled time from a thread pool, whatever the earlier ones are waiting for). Each request is
what the `--channel`'s provider posts, signed as it signs: Twilio's form to its webhook, or Meta's
delivery (one message each) to /api/v1/meta/webhook, with the fake Graph API taking the replies
in place of the fake Twilio. When all are sent, the run waits (at most `--drain-timeout`) for every
reply to reach the fake provider, then reports:

- acknowledged (2xx), answered (inbound status), lost (acknowledged, but no reply covering it
  reached the fake provider), duplicated (an inbound message covered by more than one reply, or a send
  at the fake provider beyond one per stored reply part), out of order (per customer, a send at the
  fake provider that answers an earlier message than the send before it, by the parts' `reply_to`);
- webhook latency (client-measured over every request, a timed-out one at its 15 s; and gunicorn's
  own request time, which leaves out the wait for a free gunicorn thread), the time from a message's
  acknowledgement to the first reply covering it at the fake provider, how late each request left
  against its schedule, and the achieved send rate;
- CPU seconds used by each process group while sending and draining;
- a baseline measured first, in the same run: the webhook alone (Flask's test client in this
  process, 1 and 8 requests at a time, against the same database server), and the asked rate as
  a share of what it sustains.

The rate limit per customer (RATE_LIMIT_PER_WA_ID) is raised (`--rate-limit`) so the limiter never
refuses the benchmark's traffic, but it is still checked on every message, as is each provider's
signature (Twilio's over PUBLIC_BASE_URL, each gunicorn instance's own address). Handoffs after
unanswered questions are off (HANDOFF_AFTER_UNANSWERED=0): a customer handed to a person gets no
more answers from the bot, which would count as lost. The fakes make no status callbacks. Exits 1
if anything was lost, duplicated or out of order, 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path

import requests
from pymongo import MongoClient
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import embedded_mongo, run_local  # noqa: E402
from scripts.chat import WEBHOOK_PATHS, meta_delivery, meta_signature, twilio_form  # noqa: E402
from scripts.eval_rag import percentile  # noqa: E402
from tests.fakes.fake_graph import FakeGraph  # noqa: E402
from tests.fakes.fake_openai import FakeOpenAI  # noqa: E402
from tests.fakes.fake_twilio import FakeTwilio  # noqa: E402
from tests.processes import (  # noqa: E402
    app_env, cpu_seconds, database_uri, free_port, json_lines, log_count, process_tree, rss_mb, start_chroma_server,
    start_gunicorn, start_process, wait_until)
from webapp.config import Settings, load_settings  # noqa: E402
from webapp.db.messages import OPEN_OUTBOUND  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32
SENDER = "whatsapp:+14155238886"
META_PHONE_NUMBER_ID = "106540352242922"
WEB_WORKERS = 2
WEB_THREADS = 4
BASELINE_REQUESTS = 400
REQUEST_TIMEOUT_SECONDS = 15  # what Twilio waits for a webhook
START_TIMEOUT_SECONDS = 120
DEFAULT_RATE_LIMIT = "1000 per minute;10000 per hour"  # the default's two windows, far above the load
WARM_UP_CUSTOMERS = 9_000_000  # the warm-up's customers are numbered from here: none is a load customer
ENGINE_LOADED = r"embedding engine \d+ of \d+ loaded"  # rag.embed's log line
LLM_ANSWER = ("Con la Fibra 600 Mb pagas 32 € al mes, IVA incluido, con instalación y router sin coste. "
              "Si quieres, te cuento también los packs con móvil.")

# Casual WhatsApp-style questions about the sample knowledge base (sample_kb/); a customer asks
# `--messages` consecutive ones, starting at a different place for each customer.
QUESTIONS = [
    "hola, cuanto cuesta la fibra de 600?",
    "q precio tiene el pack familia",
    "la fibra de 1 gb cuanto sale al mes?",
    "las tarifas moviles tienen permanencia?",
    "si me quedo sin datos en el movil q pasa",
    "cuanto vale un bono extra de 5 gb",
    "el pack duo que incluye exactamente?",
    "puedo añadir otra linea al pack? cuanto cuesta",
    "como subo de velocidad la fibra",
    "cuantas veces puedo bajar de tarifa?",
    "q dia me pasais el recibo?",
    "puedo pagar la factura con tarjeta",
    "aceptais pagos en efectivo?",
    "como cambio la cuenta del banco para los recibos",
    "la factura en papel cuesta algo?",
    "como descargo un duplicado de una factura de hace un año",
    "me devolvieron un recibo, me vais a cortar el servicio?",
    "creo q me habeis cobrado de mas en la factura, q hago",
    "como compruebo si tengo cobertura de fibra en mi calle",
    "cuanto tardais en instalar la fibra",
    "el router va incluido o lo tengo q comprar?",
    "cuanto dura la permanencia de la fibra",
    "puedo mantener mi numero de fijo?",
    "no me funciona internet, que hago",
    "el movil no tiene cobertura desde ayer",
    "cuanto tardais en arreglar una averia?",
    "la visita del tecnico la tengo q pagar?",
    "me compensais si estoy dias sin internet?",
    "como me doy de baja",
    "cuanto tengo q pagar si me doy de baja antes de la permanencia",
    "tengo q devolver el router cuando me de de baja?",
    "si doy de baja la fibra del pack pierdo el movil?",
    "me puedo pasar a otra compañia sin llamaros?",
    "la sim me la mandais a casa o tengo q ir a la tienda",
    "se puede tener esim?",
    "cuanto tarda la portabilidad de mi numero",
    "voy a estados unidos de vacaciones, cuanto me cuesta usar el movil alli",
    "usar datos en francia me cuesta algo extra?",
    "a q hora atendeis por telefono los domingos?",
    "donde esta la tienda de madrid",
    "como pongo una reclamacion",
    "cuanto tiempo guardais mis datos personales",
    "el asistente de whatsapp guarda mis mensajes?",
    "como dejo de recibir publicidad vuestra",
]


# -- the fakes ----------------------------------------------------------------------------------


class Arrivals:
    """Notes when (monotonic clock) each message the fake provider accepted arrived."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrivals: list[tuple[float, str, str, str]] = []

    def note_arrival(self, arrived: float, external_id: str, to: str, body: str) -> None:
        with self._lock:
            self.arrivals.append((arrived, external_id, to, body))

    def sends(self) -> list[tuple[float, str, str, str]]:
        """(arrived, the provider's id, to as whatsapp:+…, body), in arrival order."""
        with self._lock:
            return sorted(self.arrivals)

    def forget_sends(self) -> None:
        """After the warm-up: only the measured load's sends count."""
        with self._lock:
            self.arrivals.clear()


class TimedFakeTwilio(Arrivals, FakeTwilio):
    def handle(self, method, path, headers, body):
        arrived = time.monotonic()
        reply = super().handle(method, path, headers, body)
        if method == "POST" and reply.status == 201:
            resource_ = json.loads(reply.body)
            self.note_arrival(arrived, resource_["sid"], resource_["to"], resource_["body"])
        return reply


class TimedFakeGraph(Arrivals, FakeGraph):
    def handle(self, method, path, headers, body):
        arrived = time.monotonic()
        reply = super().handle(method, path, headers, body)
        answer = json.loads(reply.body) if reply.status == 200 and method == "POST" else {}
        if answer.get("messages"):
            sent = json.loads(body)
            self.note_arrival(arrived, answer["messages"][0]["id"], f"whatsapp:+{sent['to']}", sent["text"]["body"])
        return reply


class TwilioTraffic:
    """A customer's message as Twilio posts it."""

    path = WEBHOOK_PATHS["twilio"]

    def __init__(self, secret: str):
        self.validator = RequestValidator(secret)

    def request(self, url: str, customer: int, text: str, name: str) -> tuple[dict, dict, str]:
        """(the body, its headers, the provider's id for the message)"""
        form = twilio_form(customer_number(customer), SENDER, text, name, ACCOUNT_SID)
        return form, {"X-Twilio-Signature": self.validator.compute_signature(url, form)}, form["MessageSid"]


class MetaTraffic:
    """A customer's message as Meta delivers it."""

    path = WEBHOOK_PATHS["meta"]

    def __init__(self, secret: str):
        self.secret = secret

    def request(self, url: str, customer: int, text: str, name: str) -> tuple[bytes, dict, str]:
        delivery = meta_delivery(customer_number(customer).removeprefix("whatsapp:+"), META_PHONE_NUMBER_ID,
                                 {"type": "text", "text": {"body": text}}, name)
        body = json.dumps(delivery).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(self.secret, body)}
        return body, headers, delivery["entry"][0]["changes"][0]["value"]["messages"][0]["id"]


TRAFFIC = {"twilio": TwilioTraffic, "meta": MetaTraffic}


def llm_reply(messages: list[dict]) -> str:
    """Rewrite requests get the customer's own last message back; answers get a fixed reply."""
    if str(messages[0].get("content", "")).startswith("Rewrite"):
        found = re.search(r"<last_message>\n(.*)\n</last_message>", str(messages[-1].get("content", "")), re.S)
        return found.group(1) if found else str(messages[-1].get("content", ""))
    return LLM_ANSWER


# -- the load -----------------------------------------------------------------------------------


def load_urls(ports: list[int], traffic) -> list[str]:
    return [f"http://127.0.0.1:{port}{traffic.path}" for port in ports]


def customer_number(customer: int) -> str:
    return f"whatsapp:+3460{customer:07d}"


def question(customer: int, seq: int) -> str:
    text = QUESTIONS[(customer * 7 + seq) % len(QUESTIONS)]
    return text if seq < len(QUESTIONS) else f"{text} ({seq // len(QUESTIONS) + 1})"


class Load:
    """Sends the planned messages open-loop and records what happened to each request."""

    def __init__(self, urls: list[str], traffic, customers: int, messages: int, rate: float,
                 client_threads: int, first_customer: int = 0):
        self.urls = urls  # message k goes to urls[k % len(urls)]
        self.traffic = traffic
        self.rate = rate
        self.client_threads = client_threads
        # interleaved: message k goes to customer k % customers, so each customer's messages are
        # `customers / rate` seconds apart and in order
        self.plan = [(first_customer + c, j) for j in range(messages) for c in range(customers)]
        self.records: list[dict | None] = [None] * len(self.plan)
        self.local = threading.local()

    def post(self, k: int, scheduled: float) -> None:
        customer, seq = self.plan[k]
        url = self.urls[k % len(self.urls)]
        body, headers, external_id = self.traffic.request(url, customer, question(customer, seq), f"Cliente {customer}")
        headers["Connection"] = "close"  # a fresh connection per webhook, as the providers' deliveries come
        record = {"customer": customer, "seq": seq, "sid": external_id, "scheduled": scheduled}
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        record["started"] = time.monotonic()
        try:
            response = session.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
            record["status"] = response.status_code
        except requests.RequestException as exc:
            record["status"] = None
            record["error"] = type(exc).__name__
            self.local.session = None
        record["ended"] = time.monotonic()
        self.records[k] = record

    def run(self, stop: threading.Event) -> None:
        pool = ThreadPoolExecutor(max_workers=self.client_threads, thread_name_prefix="client")
        try:
            start = time.monotonic() + 0.2
            for k in range(len(self.plan)):
                scheduled = start + k / self.rate
                if stop.wait(max(0.0, scheduled - time.monotonic())):
                    break
                pool.submit(self.post, k, scheduled)
        except BaseException:  # Ctrl-C: what has not started yet never will
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


def webhook_baseline(env: dict[str, str], mongodb_uri: str, traffic, concurrency: int) -> dict:
    """The webhook alone, before the load: BASELINE_REQUESTS signed messages through Flask's test
    client in this process, `concurrency` at a time, against the same database server (a database
    of its own, dropped afterwards), with nothing else running. What the app and the database can
    do without gunicorn, the network, the worker or the load generator."""
    from webapp import create_app  # imported here: the app logs its start-up warnings

    settings = load_settings(_env_file=None, **{
        **{name.lower(): value for name, value in env.items() if name.lower() in Settings.model_fields},
        "mongodb_uri": mongodb_uri,
        "public_base_url": "http://localhost",  # where the test client sends
        "log_level": "WARNING",  # its INFO lines would be mixed into the report
    })
    app = create_app(settings)
    seconds: list[float] = []

    def post(k: int) -> None:
        body, headers, _ = traffic.request("http://localhost" + traffic.path, 10_000 + k, question(k, 0), "Base")
        started = time.perf_counter()
        response = app.test_client().post(traffic.path, data=body, headers=headers)
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"baseline webhook answered {response.status_code}: {response.get_data(as_text=True)}")

    began = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(post, range(BASELINE_REQUESTS)))
        elapsed = time.perf_counter() - began
    finally:
        store = app.extensions["whatsapp_assistant"].store
        store.client.drop_database(store.db.name)
        store.client.drop_database(f"{store.db.name}_ratelimits")
        app.extensions["whatsapp_assistant"].close()
    return {"concurrency": concurrency, "per_second": round(len(seconds) / elapsed, 1), **summary_ms(seconds, 50, 99)}


# -- analysis -----------------------------------------------------------------------------------


def summary_ms(values: list[float], *ps: float) -> dict:
    out = {f"p{p:g}": percentile(values, p) if values else None for p in ps}
    out["max"] = _ms(max(values) if values else None)
    out["n"] = len(values)
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def match_sends(outbound: list[dict], sends: list[tuple[float, str, str, str]]) -> tuple[list, list, int]:
    """Pair each send at the fake provider with the stored part it delivered: by the SID the worker
    stored, else (the worker has not stored it yet) with a part of the same customer and body that
    has no SID, one send per part. Returns (send, part) pairs in arrival order, the sends left
    over (duplicates), and how many were paired by body."""
    by_sid = {m["external_id"]: m for m in outbound if m.get("external_id")}
    without_sid: dict[tuple[str, str], list[dict]] = {}
    for message in sorted((m for m in outbound if not m.get("external_id")), key=lambda m: m["_id"]):
        without_sid.setdefault((f"whatsapp:+{message['wa_id']}", message["body"]), []).append(message)
    pairs, extra, by_body = [], [], 0
    for send in sends:
        _, sid, to, body = send
        message = by_sid.get(sid)
        if message is None and without_sid.get((to, body)):
            message = without_sid[(to, body)].pop(0)
            by_body += 1
        if message is None:
            extra.append(send)
        else:
            pairs.append((send, message))
    return pairs, extra, by_body


def out_of_order(pairs: list, rank: dict, reply_key) -> tuple[int, set]:
    """Sends (in arrival order at the fake provider) that answer an earlier inbound message, by `rank`,
    than the customer's send before them; and the customers concerned."""
    errors, customers = 0, set()
    last_by_customer: dict[str, dict] = {}
    for (_, _, to, _), message in pairs:
        previous = last_by_customer.get(to)
        if previous is not None:
            if reply_key(previous) == reply_key(message):
                in_order = message.get("part", 0) > previous.get("part", 0)
            else:
                earlier = [rank[i] for i in previous["reply_to"] if i in rank]
                later = [rank[i] for i in message["reply_to"] if i in rank]
                # equal only for a message answered twice: a duplicate, counted as one
                in_order = not earlier or not later or min(later) >= max(earlier)
            if not in_order:
                errors += 1
                customers.add(to)
        last_by_customer[to] = message
    return errors, customers


def analyse(load: Load, inbound: list[dict], outbound: list[dict], sends: list[tuple[float, str, str, str]]) -> dict:
    records = [r for r in load.records if r is not None]
    acked = [r for r in records if r.get("status") and 200 <= r["status"] < 300]
    by_sid = {r["sid"]: r for r in records}
    acked_sids = {r["sid"] for r in acked}
    inbound_by_sid = {m["external_id"]: m for m in inbound}
    seq_of = {m["_id"]: by_sid[m["external_id"]]["seq"] for m in inbound if m["external_id"] in by_sid}

    # replies: one per (kind, messages answered); a reply may have several parts
    def reply_key(message: dict) -> tuple:
        return message.get("kind"), tuple(message["reply_to"])

    replies_covering: dict = {}
    for message in outbound:
        for inbound_id in message["reply_to"]:
            replies_covering.setdefault(inbound_id, set()).add(reply_key(message))
    covered_twice = [i for i, keys in replies_covering.items() if len(keys) > 1]

    pairs, unmatched_sends, matched_by_body = match_sends(outbound, sends)
    first_reply_at: dict = {}
    for (arrived, _, _, _), message in pairs:
        for inbound_id in message["reply_to"]:
            first_reply_at.setdefault(inbound_id, arrived)
    # in the order the customer sent them; and, to tell where a disorder comes from, in the order
    # the webhook stored them (`created_at`: what the worker goes by)
    order_errors, customers_out_of_order = out_of_order(pairs, seq_of, reply_key)
    stored_rank = {m["_id"]: m["created_at"] for m in inbound}
    order_errors_stored, _ = out_of_order(pairs, stored_rank, reply_key)
    stored_out_of_send_order = 0
    by_customer: dict[int, list[dict]] = {}
    for message in inbound:
        record = by_sid.get(message["external_id"])
        if record:
            by_customer.setdefault(record["customer"], []).append(message)
    for messages in by_customer.values():
        in_store_order = sorted(messages, key=lambda m: (m["created_at"], m["_id"]))
        seqs = [seq_of[m["_id"]] for m in in_store_order]
        stored_out_of_send_order += sum(1 for a, b in pairwise(seqs) if b < a)

    lost, reply_latency = [], []
    for record in acked:
        stored = inbound_by_sid.get(record["sid"])
        replied_at = first_reply_at.get(stored["_id"]) if stored else None
        if replied_at is None:
            lost.append(record["sid"])
        else:
            reply_latency.append(replied_at - record["ended"])

    statuses: dict[str, int] = {}
    for record in records:
        key = str(record.get("status") or record.get("error"))
        statuses[key] = statuses.get(key, 0) + 1
    inbound_statuses: dict[str, int] = {}
    for message in inbound:
        inbound_statuses[message["status"]] = inbound_statuses.get(message["status"], 0) + 1
    outcomes: dict[str, int] = {}
    for message in outbound:
        if message.get("part", 0) == 0:
            outcome = message.get("outcome") or message.get("kind", "?")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    started = sorted(r["started"] for r in records)
    duration = started[-1] - started[0] if len(started) > 1 else 0.0
    return {
        "planned": len(load.plan),
        "sent": len(records),
        "acknowledged": len(acked),
        "http_statuses": statuses,
        "stored_inbound": len(inbound),
        "inbound_statuses": inbound_statuses,
        "answered": inbound_statuses.get("answered", 0),
        "rate_limited": inbound_statuses.get("rate_limited", 0),
        "replies_queued": len({reply_key(m) for m in outbound}),
        "reply_parts_queued": len(outbound),
        "sends_at_provider": len(sends),
        "reply_outcomes": outcomes,
        "lost": len(lost),
        "duplicated": len(covered_twice) + len(unmatched_sends),
        "duplicated_detail": {"inbound_covered_by_several_replies": len(covered_twice),
                              "sends_matching_no_stored_part": len(unmatched_sends),
                              "sends_matched_by_body_sid_not_stored_yet": matched_by_body},
        "out_of_order": order_errors,
        "customers_out_of_order": len(customers_out_of_order),
        "out_of_order_detail": {"vs_stored_order": order_errors_stored,
                                "inbound_stored_out_of_send_order": stored_out_of_send_order},
        # every request, a timed-out one at the time it waited (Twilio gives up after 15 s too)
        "webhook_ms": summary_ms([r["ended"] - r["started"] for r in records], 50, 99),
        "stored_not_acknowledged": sum(1 for r in records if r["sid"] not in acked_sids and r["sid"] in inbound_by_sid),
        "reply_after_ack_ms": summary_ms(reply_latency, 50, 95),
        "send_lag_ms": summary_ms([r["started"] - r["scheduled"] for r in records], 50, 99),
        "achieved_rate": round((len(started) - 1) / duration, 2) if duration else None,
        "lost_sample": lost[:5],
    }


def gunicorn_request_ms(log_files: list[Path], path: str) -> dict:
    """gunicorn's own time for each acknowledged webhook request (its JSON access log)."""
    seconds = [line["duration_ms"] / 1000 for log_file in log_files if log_file.exists()
               for line in json_lines(log_file.read_text(errors="replace"))
               if line.get("logger") == "gunicorn.access" and line.get("path") == path
               and 200 <= line.get("status", 0) < 300]
    return summary_ms(seconds, 50, 99)


def memory(groups: dict[str, list[subprocess.Popen]]) -> dict[str, float]:
    """Resident MiB of every process that serves or answers: each gunicorn worker (not the master,
    which only forks and watches) and each worker process."""
    found = {}
    for name, processes in groups.items():
        for process in processes:
            tree = process_tree(process.pid)
            for pid in tree[1:] if name == "gunicorn" else tree[:1]:
                found[f"{name} pid {pid}"] = round(rss_mb(pid), 1)
    return found


def memory_report(before: dict[str, float], after: dict[str, float], engine_loads: dict[str, int]) -> dict:
    return {name: {"after_warm_up": before[name], "after_load": after.get(name),
                   "growth": round(after[name] / before[name] - 1, 3) if name in after else None}
            for name in before} | {"embedder_engines_loaded": engine_loads}


# -- report -------------------------------------------------------------------------------------


def print_table(report: dict) -> None:
    config, result = report["config"], report["result"]
    w = result["webhook_ms"]
    g = result["webhook_server_ms"]
    r = result["reply_after_ack_ms"]
    lag = result["send_lag_ms"]
    busy = max(0.1, report["seconds"]["sending"] + report["seconds"]["drain"] + report["config"]["settle"])
    llm = ("offline answers" if config["llm_delay"] is None
           else f"fake LLM, {config['llm_delay']} s per chat request")
    lines = [
        f"load: {config['customers']} customers x {config['messages']} messages at {config['rate']} msg/s, open-loop "
        f"({config['client_threads']} client threads)",
        f"app: {config['web_instances']} gunicorn instance(s) x {WEB_WORKERS} workers, {config['workers']} worker "
        f"process(es) x {config['worker_threads']} threads, {llm}; Chroma {config['chroma']}",
        f"database: {config['mongodb']}{', options ' + config['mongodb_options'] if config['mongodb_options'] else ''}",
        f"settings: REPLY_DEBOUNCE_SECONDS={config['debounce']}, RATE_LIMIT_PER_WA_ID={config['rate_limit']!r} "
        "(raised so the limiter never refuses this load)",
        "",
        f"sent                     {result['sent']:>8}   (planned {result['planned']}; HTTP {result['http_statuses']})",
        f"acknowledged (2xx)       {result['acknowledged']:>8}   ({result['stored_not_acknowledged']} more stored, "
        "but not acknowledged in time)",
        f"answered (inbound)       {result['answered']:>8}   (stored {result['stored_inbound']}: "
        f"{result['inbound_statuses']})",
        f"replies sent / inbound   {result['sends_at_provider']:>8} / {result['stored_inbound']}   "
        f"({result['replies_queued']} replies in {result['reply_parts_queued']} parts queued; "
        f"outcomes {result['reply_outcomes']})",
        f"lost                     {result['lost']:>8}",
        f"duplicated               {result['duplicated']:>8}   ({result['duplicated_detail']})",
        f"out of order             {result['out_of_order']:>8}   ({result['customers_out_of_order']} customers; "
        f"{result['out_of_order_detail']})",
        f"rate limited             {result['rate_limited']:>8}",
        f"contract errors          {report['contract_violations']:>8}   (the {config['channel']} requests the fake "
        "checked against the provider's OpenAPI document)",
        "",
        f"webhook latency (client, all requests) p50 {w['p50']} ms  p99 {w['p99']} ms  max {w['max']} ms"
        "   (target p99 <= 100 ms)",
        f"webhook time (gunicorn)  p50 {g['p50']} ms  p99 {g['p99']} ms  max {g['max']} ms",
        *(f"baseline, webhook alone {b['concurrency']} at a time: {b['per_second']} msg/s, p50 {b['p50']} ms  "
          f"p99 {b['p99']} ms  (asked rate / this: {config['rate'] / b['per_second']:.2f})"
          for b in report["webhook_baseline"]),
        f"ack -> reply at provider p50 {_s(r['p50'])} s  p95 {_s(r['p95'])} s  max {_s(r['max'])} s",
        f"send lag vs schedule     p50 {lag['p50']} ms  p99 {lag['p99']} ms  max {lag['max']} ms",
        f"achieved send rate       {result['achieved_rate']} msg/s (asked {config['rate']})",
        "",
        f"time: start-up {report['seconds']['startup']} s, sending {report['seconds']['sending']} s, "
        f"drain {report['seconds']['drain']} s{' (DEADLINE HIT)' if report['drain_deadline_hit'] else ''}, "
        f"total {report['seconds']['total']} s",
        "memory (resident MiB, after warm-up -> after the load): " + "; ".join(
            f"{name} {m['after_warm_up']} -> {m['after_load']} ({m['growth']:+.1%})"
            for name, m in report["memory"].items() if name != "embedder_engines_loaded"),
        f"embedding engines loaded (log lines): {report['memory']['embedder_engines_loaded']}",
        "CPU seconds while sending and draining: " + ", ".join(
            f"{name} {value} ({value / busy:.0%} of a core)" for name, value in report["cpu_seconds"].items()
            if value is not None),
    ]
    print("\n".join(lines))


def _s(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f}"


# -- main ---------------------------------------------------------------------------------------


def drain(store_db, deadline: float, stop: threading.Event) -> bool:
    """Wait until no job is queued and no message waits for an answer or a send; False on timeout."""
    while time.monotonic() < deadline and not stop.is_set():
        messages = store_db.messages
        if (store_db.reply_jobs.count_documents({}) == 0
                and messages.count_documents({"direction": "inbound", "status": "received"}) == 0
                and messages.count_documents({"direction": "outbound", "status": {"$in": list(OPEN_OUTBOUND)}}) == 0):
            return True
        stop.wait(1.0)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10, help="per customer")
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second, all customers together")
    parser.add_argument("--llm-delay", type=float, default=None, metavar="SECONDS",
                        help="answer with a fake OpenAI that takes this long on every chat request")
    parser.add_argument("--web-instances", type=int, default=1, help="gunicorn instances, one port each")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--chroma-server", action="store_true",
                        help="serve the index with `chroma run` (CHROMA_URL) instead of a folder")
    parser.add_argument("--worker-threads", type=int, default=4, help="WORKER_THREADS of each worker process")
    parser.add_argument("--warm-up", type=int, default=0, metavar="N",
                        help="conversations (one message each, other customers) answered before the load is "
                             "measured; memory is sampled after them")
    parser.add_argument("--debounce", type=float, default=2.0, help="REPLY_DEBOUNCE_SECONDS")
    parser.add_argument("--rate-limit", default=DEFAULT_RATE_LIMIT, help="RATE_LIMIT_PER_WA_ID")
    parser.add_argument("--client-threads", type=int, default=None,
                        help="threads sending the webhooks (default: enough for every request to wait its full "
                             f"{REQUEST_TIMEOUT_SECONDS} s timeout without delaying the next ones)")
    parser.add_argument("--mongodb-uri", default="",
                        help="use this MongoDB server (a fresh database on it, dropped afterwards) instead of "
                             "starting SecantusDB")
    parser.add_argument("--mongodb-options", default="", metavar="OPTIONS",
                        help="extra MONGODB_URI options for the app, e.g. w=majority")
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="seconds to wait for the last replies")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds to watch for late duplicates after the drain")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, data) and print its path")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--channel", choices=sorted(TRAFFIC), default="twilio",
                        help="the provider the customers write through")
    args = parser.parse_args(argv)
    if args.client_threads is None:
        args.client_threads = int(args.rate * REQUEST_TIMEOUT_SECONDS) + 16
    if min(args.customers, args.messages, args.web_instances, args.workers, args.worker_threads,
           args.client_threads) < 1 or args.rate <= 0:
        parser.error("counts and the rate must be positive")

    run_local.interrupt_on_signals()
    began = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="bench_load_"))
    processes: list[subprocess.Popen] = []
    database: subprocess.Popen | None = None
    client: MongoClient | None = None
    stop = threading.Event()
    fakes: list = []
    database_name = f"bench_{secrets.token_hex(4)}"
    interrupted = False
    try:
        def note(text: str) -> None:
            print(text, file=sys.stderr, flush=True)

        # a fresh database: on our own SecantusDB, or a new name on the server given
        if args.mongodb_uri:
            mongodb_uri = database_uri(args.mongodb_uri, database_name, args.mongodb_options)
            embedded_mongo.wait_until_up(mongodb_uri, timeout_seconds=10)
        else:
            mongo_port = free_port()
            mongodb_uri = database_uri(embedded_mongo.client_uri(mongo_port), database_name, args.mongodb_options)
            note(f"starting SecantusDB on 127.0.0.1:{mongo_port} (data in {scratch / 'mongo'})")
            database = embedded_mongo.start(mongo_port, scratch / "mongo", scratch / "mongo.log")
            embedded_mongo.wait_until_up(mongodb_uri, database)
        client = MongoClient(mongodb_uri, tz_aware=True)
        db = client.get_default_database()

        # knowledge index of sample_kb/, in a folder or a Chroma server
        auth_token = secrets.token_hex(16)
        chroma = {}
        if args.chroma_server:
            chroma_port = free_port()
            note(f"starting chroma run on 127.0.0.1:{chroma_port}")
            processes.append(start_chroma_server(scratch / "chroma-server", chroma_port, scratch / "chroma.log"))
            chroma["CHROMA_URL"] = f"http://127.0.0.1:{chroma_port}"
        settings = load_settings(_env_file=None, mongodb_uri=mongodb_uri, validate_twilio_signature=False,
                                 chroma_path=scratch / "chroma", **{name.lower(): value for name, value in chroma.items()})
        with contextlib.redirect_stdout(sys.stderr):
            run_local.load_sample_if_empty(settings)

        twilio = TimedFakeTwilio(ACCOUNT_SID, auth_token).start()
        graph = TimedFakeGraph(auth_token).start()
        fakes += [twilio, graph]
        provider = graph if args.channel == "meta" else twilio  # where the replies go
        traffic = TRAFFIC[args.channel](auth_token)
        llm = None
        if args.llm_delay is not None:
            llm = FakeOpenAI(reply=llm_reply, api_key="sk-bench").start()
            fakes.append(llm)
            # every chat request (a rewrite of a follow-up, or an answer) waits; at most two per message
            llm.delay_next(args.llm_delay, times=2 * args.customers * args.messages + 100)

        ports = [free_port() for _ in range(args.web_instances)]
        env = app_env(mongodb_uri, scratch / "chroma", twilio.base_url, ACCOUNT_SID, auth_token, SENDER,
                      PUBLIC_BASE_URL=f"http://127.0.0.1:{ports[0]}", REPLY_DEBOUNCE_SECONDS=str(args.debounce),
                      RATE_LIMIT_PER_WA_ID=args.rate_limit, WEB_THREADS=str(WEB_THREADS),
                      # a customer who gets two "I don't know"s in a row is handed to a person, whose
                      # messages the bot then keeps for them: not what this measures
                      HANDOFF_AFTER_UNANSWERED="0",
                      WORKER_THREADS=str(args.worker_threads), META_APP_SECRET=auth_token, META_VERIFY_TOKEN=auth_token,
                      META_ACCESS_TOKEN=auth_token, META_GRAPH_API_BASE=graph.base_url, **chroma)
        worker_env = dict(env)
        if llm is not None:
            worker_env.update(OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=llm.api_base,
                              OPENAI_TIMEOUT_SECONDS=str(min(120, args.llm_delay + 15)))
        note(f"baseline: the webhook alone, {BASELINE_REQUESTS} requests in this process, 1 and "
             f"{WEB_WORKERS * WEB_THREADS} at a time")
        baseline = [webhook_baseline(env, database_uri(mongodb_uri, f"{database_name}_baseline"), traffic, n)
                    for n in (1, WEB_WORKERS * WEB_THREADS)]
        note(f"starting {args.web_instances} gunicorn instance(s) ({WEB_WORKERS} workers each) on ports "
             f"{', '.join(map(str, ports))} and {args.workers} worker process(es) x {args.worker_threads} threads")
        # cwd is the scratch folder, so the repository's own .env is not read
        gunicorn_logs = [scratch / f"gunicorn-{port}.log" for port in ports]
        gunicorns = [start_gunicorn(dict(env, BIND=f"127.0.0.1:{port}", PUBLIC_BASE_URL=f"http://127.0.0.1:{port}"),
                                    scratch, log, WEB_WORKERS, START_TIMEOUT_SECONDS)
                     for port, log in zip(ports, gunicorn_logs)]
        processes += gunicorns
        worker_logs = [scratch / f"worker-{n}.log" for n in range(args.workers)]
        workers = [start_process([sys.executable, "-m", "webapp.worker"], worker_env, scratch, log)
                   for log in worker_logs]
        processes += workers
        wait_until(lambda: all(log_count(log, r"worker \S+ started") >= args.worker_threads for log in worker_logs),
                   "worker processes", START_TIMEOUT_SECONDS, 0.2, processes)
        startup_seconds = time.monotonic() - began
        if args.warm_up:
            note(f"warm-up: {args.warm_up} conversations")
            Load(load_urls(ports, traffic), traffic, args.warm_up, 1, args.rate, args.client_threads,
                 first_customer=WARM_UP_CUSTOMERS).run(stop)
            drain(db, time.monotonic() + args.drain_timeout, stop)
            provider.forget_sends()
        served = {"gunicorn": gunicorns, "worker": workers}
        memory_before = memory(served)
        measured_since = datetime.now(timezone.utc)

        load = Load(load_urls(ports, traffic), traffic, args.customers, args.messages, args.rate, args.client_threads)
        note(f"sending {len(load.plan)} messages at {args.rate} msg/s")
        cpu_before = {"secantusdb": cpu_seconds(database.pid) if database else 0.0,
                      "gunicorn": sum(cpu_seconds(g.pid) for g in gunicorns),
                      "workers": sum(cpu_seconds(w.pid) for w in workers), "bench": _own_cpu()}
        sending_started = time.monotonic()
        load.run(stop)
        sending_seconds = time.monotonic() - sending_started
        note(f"sent in {sending_seconds:.1f} s; waiting for the replies (at most {args.drain_timeout:.0f} s)")
        drained = drain(db, time.monotonic() + args.drain_timeout, stop)
        drain_seconds = time.monotonic() - sending_started - sending_seconds
        stop.wait(args.settle)  # room for a late duplicate, were there one

        cpu = {
            "secantusdb": round(cpu_seconds(database.pid) - cpu_before["secantusdb"], 1) if database else None,
            "gunicorn": round(sum(cpu_seconds(g.pid) for g in gunicorns) - cpu_before["gunicorn"], 1),
            "workers": round(sum(cpu_seconds(w.pid) for w in workers) - cpu_before["workers"], 1),
            "bench (client + fakes)": round(_own_cpu() - cpu_before["bench"], 1),
        }
        memory_after = memory(served)
        # the load's messages only, not the warm-up's
        inbound = list(db.messages.find({"direction": "inbound", "created_at": {"$gte": measured_since}},
                                        {"external_id": 1, "status": 1, "created_at": 1}))
        outbound = list(db.messages.find({"direction": "outbound", "created_at": {"$gte": measured_since}},
                                         {"reply_to": 1, "part": 1, "kind": 1, "external_id": 1, "status": 1,
                                          "outcome": 1, "wa_id": 1, "body": 1}))
        result = analyse(load, inbound, outbound, provider.sends())
        result["webhook_server_ms"] = gunicorn_request_ms(gunicorn_logs, traffic.path)
        report = {
            "config": {
                "channel": args.channel, "customers": args.customers, "messages": args.messages, "rate": args.rate,
                "llm_delay": args.llm_delay, "web_instances": args.web_instances, "workers": args.workers,
                "worker_threads": args.worker_threads, "chroma": "server (chroma run)" if args.chroma_server else "folder",
                "web_workers": WEB_WORKERS, "warm_up": args.warm_up, "debounce": args.debounce,
                "rate_limit": args.rate_limit,
                "client_threads": args.client_threads, "drain_timeout": args.drain_timeout, "settle": args.settle,
                "mongodb": "given server" if args.mongodb_uri else "SecantusDB (own, fresh)",
                "mongodb_options": args.mongodb_options,
            },
            "result": result,
            "webhook_baseline": baseline,
            "drain_deadline_hit": not drained,
            "contract_violations": len(provider.contract_violations),
            "llm_chat_requests": len(llm.chat_requests()) if llm else None,
            "seconds": {
                "startup": round(startup_seconds, 1), "sending": round(sending_seconds, 1),
                "drain": round(drain_seconds, 1), "total": round(time.monotonic() - began, 1),
            },
            "cpu_seconds": cpu,
            "memory": memory_report(memory_before, memory_after, {
                "gunicorn": sum(log_count(log, ENGINE_LOADED) for log in gunicorn_logs),
                "worker processes": sum(log_count(log, ENGINE_LOADED) for log in worker_logs)}),
            "scratch": str(scratch) if args.keep else None,
        }
        if args.json:
            print(json.dumps(report, ensure_ascii=False))
        else:
            print_table(report)
            if llm is not None:
                print(f"fake LLM chat requests: {report['llm_chat_requests']}")
            if args.keep:
                print(f"logs and data kept in {scratch}")
        failed = result["lost"] or result["duplicated"] or result["out_of_order"]
        return 1 if failed else 0
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        stop.set()
        run_local.ignore_signals()
        run_local.stop_all(processes)
        for fake in fakes:
            fake.stop()
        if client is not None:
            with contextlib.suppress(Exception):
                if not args.keep:
                    client.drop_database(database_name)
                    client.drop_database(f"{database_name}_ratelimits")
            client.close()
        if database is not None:
            run_local.stop_all([database])
        if not args.keep or interrupted:
            shutil.rmtree(scratch, ignore_errors=True)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
