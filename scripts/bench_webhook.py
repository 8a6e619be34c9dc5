"""Benchmark: how fast the webhook acknowledges, against the least a webhook can do.

    python scripts/bench_webhook.py [--requests 2000] [--concurrency 8] [--rounds 4] [--mongodb-uri URI]

Starts, on 127.0.0.1: a MongoDB-protocol server (SecantusDB, fresh) unless --mongodb-uri, and two
gunicorn servers with the same settings (gunicorn.conf.py: 2 workers x WEB_THREADS threads):

1. the app: the real webhook (signature check, validation, session, store, the rate limit per
   customer, the reply job), Twilio's own form signed as Twilio signs it;
2. the baseline: a bare Flask route that does one insert of the same form into the same
   database, and answers the same empty TwiML (`bare_app` below).

Each gets `--requests` webhooks from `--concurrency` keep-alive client threads, in `--rounds`
rounds taking turns (so a noisy machine slows both alike), from many customers (the rate limit is
raised so it counts but never refuses). Prints requests per second and p50 / p99 latency of both,
and the app's throughput as a share of the baseline's (target >= 0.6).
"""
from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import embedded_mongo, run_local  # noqa: E402
from scripts.chat import WEBHOOK_PATH, twilio_form  # noqa: E402
from scripts.eval_rag import percentile  # noqa: E402
from tests.processes import app_env, database_uri, free_port, start_gunicorn  # noqa: E402

ACCOUNT_SID = "AC" + "c" * 32
SENDER = "whatsapp:+14155238886"
WEB_WORKERS = 2
CUSTOMERS = 1000
START_TIMEOUT_SECONDS = 120
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def bare_app():
    """The baseline's WSGI app (gunicorn 'scripts.bench_webhook:bare_app()'): one insert per POST."""
    import os

    from flask import Flask, Response, request
    from pymongo import MongoClient

    app = Flask(__name__)
    collection = MongoClient(os.environ["MONGODB_URI"], tz_aware=True).get_default_database().bare_webhooks

    @app.post(WEBHOOK_PATH)
    def receive():
        collection.insert_one(request.form.to_dict())
        return Response(TWIML, mimetype="application/xml")

    return app


class Client:
    """Signed webhooks to one server, `concurrency` at a time; each request's seconds."""

    def __init__(self, url: str, auth_token: str):
        self.url = url
        self.validator = RequestValidator(auth_token)
        self.local = threading.local()

    def post(self, k: int) -> float:
        form = twilio_form(f"whatsapp:+3461{k % CUSTOMERS:07d}", SENDER, "¿cuánto cuesta la fibra de 600?", "Ana",
                           ACCOUNT_SID)
        headers = {"X-Twilio-Signature": self.validator.compute_signature(self.url, form)}
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        started = time.perf_counter()
        response = session.post(self.url, data=form, headers=headers, timeout=15)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{self.url} answered {response.status_code}: {response.text[:200]}")
        return elapsed

    def run(self, first: int, count: int, concurrency: int) -> tuple[list[float], float]:
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            seconds = list(pool.map(self.post, range(first, first + count)))
        return seconds, time.perf_counter() - began


def figures(seconds: list[float], wall: float) -> dict:
    return {"per_second": len(seconds) / wall, "p50_ms": percentile(seconds, 50), "p99_ms": percentile(seconds, 99)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="per server")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--mongodb-uri", default="", help="a MongoDB server to use instead of starting SecantusDB")
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.rounds) < 1 or args.requests < args.rounds:
        parser.error("requests, concurrency and rounds must be positive, and requests at least rounds")

    run_local.interrupt_on_signals()
    scratch = Path(tempfile.mkdtemp(prefix="bench_webhook_"))
    processes = []
    try:
        name = f"bench_webhook_{secrets.token_hex(4)}"
        if args.mongodb_uri:
            mongodb_uri = database_uri(args.mongodb_uri, name)
        else:
            port = free_port()
            mongodb_uri = database_uri(embedded_mongo.client_uri(port), name)
            processes.append(embedded_mongo.start(port, scratch / "mongo", scratch / "mongo.log"))
            embedded_mongo.wait_until_up(mongodb_uri, processes[0])
        auth_token = secrets.token_hex(16)
        clients = {}
        servers = (("webhook (the app)", "wsgi:app"), ("bare insert (baseline)", "scripts.bench_webhook:bare_app()"))
        for label, target in servers:
            port = free_port()
            env = app_env(mongodb_uri, scratch / "chroma", "http://127.0.0.1:9", ACCOUNT_SID, auth_token, SENDER,
                          BIND=f"127.0.0.1:{port}", PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                          RATE_LIMIT_PER_WA_ID="100000 per minute;1000000 per hour")
            processes.append(start_gunicorn(env, scratch, scratch / f"{port}.log", WEB_WORKERS, START_TIMEOUT_SECONDS,
                                            target=target))
            clients[label] = Client(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", auth_token)
        per_round = args.requests // args.rounds
        results = {label: ([], 0.0) for label in clients}
        for number in range(args.rounds):
            order = list(clients.items()) if number % 2 == 0 else list(clients.items())[::-1]
            for label, client in order:
                seconds, wall = client.run(number * per_round, per_round, args.concurrency)
                results[label] = (results[label][0] + seconds, results[label][1] + wall)
        measured = {label: figures(*result) for label, result in results.items()}
        print(f"{per_round * args.rounds} webhooks per server, {args.concurrency} at a time, {args.rounds} rounds; "
              f"gunicorn {WEB_WORKERS} workers each; database: {'given' if args.mongodb_uri else 'SecantusDB'}")
        for label, result in measured.items():
            print(f"  {label:24} {result['per_second']:7.1f} req/s   p50 {result['p50_ms']:6.1f} ms   "
                  f"p99 {result['p99_ms']:6.1f} ms")
        app, bare = measured.values()
        print(f"  app / baseline throughput: {app['per_second'] / bare['per_second']:.2f} (target >= 0.6)")
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        run_local.ignore_signals()
        run_local.stop_all(processes)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
