"""Benchmark: the admin API's `GET /api/v1/whatsapp/stats` over a large seeded database.

Starts its own MongoDB-protocol server (SecantusDB, loopback) unless given --mongodb-uri, seeds
`--messages` messages from `--customers` customers (half inbound; outbound answers with outcomes
and response times; a few failed deliveries), then times the stats route through the Flask app
(its MongoDB aggregations and JSON) against a baseline measured in the same run: one plain
`count_documents({})` over the same messages, the cheapest query that reads them all. The first
call, which rolls up the messages from before yesterday (webapp.db.stats_rollup), is shown apart.

    .venv/bin/python scripts/bench_stats.py                 # 100,000 messages
    .venv/bin/python scripts/bench_stats.py --messages 2000 --repeats 2
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import embedded_mongo  # noqa: E402
from tests.processes import database_uri, free_port  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import load_settings  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789"
BATCH = 5000
OUTCOMES = ["answered"] * 8 + ["unknown", "small_talk"]
ERROR_CODES = [63016, 30008, 30003, None]


def seed(store, messages: int, customers: int, now: datetime, rng: random.Random) -> None:
    """`customers` conversations and sessions, then `messages` messages spread over 30 days: each
    inbound message followed by its answer, one answer in 50 failing."""
    conversations = [uuid.uuid4().hex for _ in range(customers)]
    store.conversations.collection.insert_many([
        {"_id": c, "wa_id": f"3460{n:07d}", "status": "open" if n % 4 else "closed", "started_at": now - timedelta(days=30)}
        for n, c in enumerate(conversations)])
    store.sessions.collection.insert_many([
        {"wa_id": f"3460{n:07d}", "conversation_id": c, "last_inbound_at": now - timedelta(hours=rng.uniform(0, 720))}
        for n, c in enumerate(conversations)])
    with tqdm(total=messages, unit="msg", desc="seeding") as progress:
        for start in range(0, messages, BATCH):
            batch = [message(k, conversations, now, rng) for k in range(start, min(start + BATCH, messages))]
            store.messages.collection.insert_many(batch, ordered=False)
            progress.update(len(batch))


def message(k: int, conversations: list[str], now: datetime, rng: random.Random) -> dict:
    turn = k // 2
    received = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
    common = {"conversation_id": conversations[turn % len(conversations)], "created_at": received}
    if k % 2 == 0:
        return dict(common, direction="inbound", status="answered", body="¿Cuánto cuesta la fibra?",
                    dedup_key=f"in:SM{turn:032x}", external_id=f"SM{turn:032x}")
    answer = dict(common, direction="outbound", kind="answer", part=0, parts=1, body="La fibra cuesta 32 €.",
                  outcome=rng.choice(OUTCOMES), received_at=received, dedup_key=f"reply:{turn}:answer:0")
    if turn % 50 == 0:
        return dict(answer, status="failed", error_code=rng.choice(ERROR_CODES))
    return dict(answer, status="delivered", sent_at=received + timedelta(seconds=rng.lognormvariate(1, 0.5)))


def timed(repeats: int, call) -> list[float]:
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def main(argv: list[str] | None = None) -> int:
    args = benchmark_args(argv, __doc__)
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as scratch, \
            benchmark_database(args.mongodb_uri, Path(scratch), "bench_stats") as uri:
        return run(args, uri, Path(scratch))


def benchmark_args(argv: list[str] | None, description: str) -> argparse.Namespace:
    """The options of a benchmark over seeded messages (this one's, scripts/bench_gaps.py's)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each (after one warm-up)")
    parser.add_argument("--mongodb-uri", help="an empty database on a running server (default: start SecantusDB)")
    args = parser.parse_args(argv)
    if not (1 <= args.customers <= args.messages // 2) or args.repeats < 1:
        parser.error("need 1 <= customers <= messages / 2 and repeats >= 1")
    return args


@contextmanager
def benchmark_database(uri: str | None, scratch: Path, name: str) -> Iterator[str]:
    """`uri`, or else the URI of database `name` on a SecantusDB started on loopback for the time
    of the `with`, its data under `scratch`."""
    if uri is not None:
        yield uri
        return
    port = free_port()
    uri = database_uri(embedded_mongo.client_uri(port), name, "")
    server = embedded_mongo.start(port, scratch / "mongo", scratch / "mongo.log")
    try:
        embedded_mongo.wait_until_up(uri, server)
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(args, uri: str, scratch: Path) -> int:
    settings = load_settings(_env_file=None, mongodb_uri=uri, admin_token=ADMIN_TOKEN, chroma_path=scratch / "chroma", validate_twilio_signature=False,
                             log_level="WARNING")
    app = create_app(settings)  # creates the indexes, as a deployed app has them
    services = app.extensions["whatsapp_assistant"]
    store = services.store
    client = app.test_client()
    if store.messages.collection.estimated_document_count():
        sys.exit("the database is not empty: give an empty one")
    seeded_at = time.perf_counter()
    seed(store, args.messages, args.customers, datetime.now(timezone.utc), random.Random(1))
    print(f"seeded {args.messages:,} messages from {args.customers:,} customers in {time.perf_counter() - seeded_at:.1f} s")

    def stats():
        response = client.get("/api/v1/whatsapp/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def baseline():
        store.messages.collection.count_documents({})

    (first_s,) = timed(1, stats)  # the first call rolls up the history before yesterday
    body = stats()  # the figures to check the seeding against
    assert body["messages"]["inbound"] + body["messages"]["outbound"] == args.messages, body
    stats_s, baseline_s = timed(args.repeats, stats), timed(args.repeats, baseline)
    store.client.drop_database(store.db.name)
    services.close()  # the rate limiter's client too: left to interpreter exit, closing it hangs

    median_stats, median_base = statistics.median(stats_s), statistics.median(baseline_s)
    print(f"{'':28}{'median':>10}{'max':>10}")
    print(f"{'GET stats, first (roll-up)':28}{first_s * 1000:>8.0f}ms")
    print(f"{'GET stats':28}{median_stats * 1000:>8.0f}ms{max(stats_s) * 1000:>8.0f}ms")
    print(f"{'baseline count_documents':28}{median_base * 1000:>8.0f}ms{max(baseline_s) * 1000:>8.0f}ms")
    print(f"ratio stats/baseline (median) {median_stats / median_base:.1f}")
    messages = body["messages"]
    print(f"stats answered: conversations {body['conversations']}; messages in {messages['inbound']} "
          f"out {messages['outbound']}, answers {messages['answers']}; response_seconds_7d {messages['response_seconds_7d']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
