"""Benchmark: the web console's pages over a large seeded database.

Starts its own MongoDB-protocol server (SecantusDB, loopback) unless given --mongodb-uri, seeds
`--customers` conversations (1 in 4 closed, 3 in 100 waiting for a person, half with the customer's
WhatsApp name) with their sessions, and `--messages` messages over 30 days, as scripts/bench_stats.py
seeds them (one turn in 100 in one long conversation; each "I don't know" answer keeps its question,
as scripts/bench_gaps.py's do, with random stand-ins for its vector). Then, signed in through the
Flask test client, checks that each page shows what it should and times it: the inbox (all, in
handoff, searched by a number's last digits and by a name), a long conversation and its live part
(what the page refreshes), the dashboard, knowledge and settings, against a baseline measured in the
same run: one plain `count_documents({})` over the same messages, the cheapest query that reads them
all. Each page's first load, untimed, is the one checked and whose database commands are counted
(the session's and the lock-out check's among them); the dashboard's also rolls up the history
(scripts/bench_stats.py times that one apart).

    .venv/bin/python scripts/bench_console.py                 # 100,000 messages
    .venv/bin/python scripts/bench_console.py --messages 2000 --customers 50 --repeats 2
"""
from __future__ import annotations

import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from markupsafe import escape
from pymongo import monitoring
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench_gaps import Paraphrases  # noqa: E402
from scripts.bench_stats import benchmark_args, benchmark_database, timed  # noqa: E402
from scripts.bench_stats import message as answered_message  # noqa: E402
from scripts.eval_gaps import labelled_questions  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import load_settings  # noqa: E402
from webapp.console.conversation import MAX_MESSAGES  # noqa: E402
from webapp.console.inbox import MOST_WAITING, PER_PAGE  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789"
BATCH = 5000
CLOSED, HANDOFF, NAMED = 0.25, 0.03, 0.5  # shares of the conversations
LONG_EVERY = 100  # one turn in this many is in the long conversation
VECTOR_SIZE = 384  # e5-small's
FIRST_NAMES = ["Ana", "Lucía", "María", "Carmen", "Laura", "Marta", "Javier", "David", "Carlos", "Pablo", "Sergio",
               "Jorge", "Elena", "Raúl", "Sofía", "Nuria", "Iván", "Rocío", "Andrés", "Pilar"]
SURNAMES = ["García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Ruiz", "Díaz", "Moreno", "Romero"]


class CommandCount(monitoring.CommandListener):
    """How many commands the clients created from now on send to the databases whose names start
    with `prefix` (the app's own and its rate limits')."""

    def __init__(self):
        self.prefix = None
        self.count = 0
        monitoring.register(self)  # pymongo has no unregister

    def started(self, event):
        if self.prefix and event.database_name.startswith(self.prefix):
            self.count += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    shows: Callable[[str], bool]  # whether the page's HTML shows what it should


def seed_conversations(store, customers: int, now: datetime, rng: random.Random) -> list[dict]:
    """The conversations, customer n's number 3460 and n in 7 digits (as bench_stats' messages
    deal them), and a session for each one not closed."""
    conversations = [conversation(n, now, rng) for n in range(customers)]
    store.conversations.collection.insert_many(conversations)
    store.sessions.collection.insert_many([
        {"wa_id": c["wa_id"], "channel": "twilio", "conversation_id": c["_id"],
         "last_inbound_at": now - timedelta(hours=rng.uniform(0, 720))}
        for c in conversations if c["status"] != "closed"])
    return conversations


def conversation(n: int, now: datetime, rng: random.Random) -> dict:
    started = {"_id": uuid.UUID(int=rng.getrandbits(128)).hex, "wa_id": f"3460{n:07d}", "channel": "twilio",
               "status": "open", "started_at": now - timedelta(seconds=rng.uniform(0, 30 * 86400))}
    if rng.random() < NAMED:
        started["profile_name"] = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
    draw = rng.random()
    if draw < HANDOFF:
        requested_at = now - timedelta(minutes=rng.uniform(1, 1440))
        handoff = {"requested_at": requested_at, "until": requested_at + timedelta(days=1),
                   "reason": rng.choice(["asked", "unanswered"])}
        return dict(started, status="handoff", handoff=handoff)
    return dict(started, status="closed") if draw < HANDOFF + CLOSED else started


def seed_messages(store, messages: int, conversation_ids: list[str], paraphrases: Paraphrases, now: datetime,
                  rng: random.Random) -> None:
    with tqdm(total=messages, unit="msg", desc="seeding") as progress:
        for start in range(0, messages, BATCH):
            batch = [message(k, conversation_ids, paraphrases, now, rng)
                     for k in range(start, min(start + BATCH, messages))]
            store.messages.collection.insert_many(batch, ordered=False)
            progress.update(len(batch))


def message(k: int, conversation_ids: list[str], paraphrases: Paraphrases, now: datetime, rng: random.Random) -> dict:
    """bench_stats' k-th message, in the first (the long) conversation on one turn in LONG_EVERY;
    an answer that said "I don't know" with its question, as the worker keeps it."""
    dealt = conversation_ids[:1] if (k // 2) % LONG_EVERY == 0 else conversation_ids
    seeded = answered_message(k, dealt, now, rng)
    return dict(seeded, **paraphrases.ask()) if seeded.get("outcome") == "unknown" else seeded


def random_paraphrases(rng: random.Random) -> Paraphrases:
    """The evaluation sets' unanswerable questions and their paraphrases, each with a random unit
    vector standing in for its e5 one (no model is loaded)."""
    questions, _, _ = labelled_questions()
    vectors = np.random.default_rng(rng.randrange(2**32)).normal(size=(len(questions), VECTOR_SIZE))
    return Paraphrases(questions, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), rng)


def main(argv: list[str] | None = None) -> int:
    args = benchmark_args(argv, __doc__)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as scratch, \
            benchmark_database(args.mongodb_uri, Path(scratch), "bench_console") as uri:
        return run(args, uri, Path(scratch))


def run(args, uri: str, scratch: Path) -> int:
    commands = CommandCount()  # before the app's clients are created
    settings = load_settings(_env_file=None, mongodb_uri=uri, admin_token=ADMIN_TOKEN, chroma_path=scratch / "chroma",
                             validate_twilio_signature=False, log_level="WARNING")
    app = create_app(settings)  # creates the indexes, as a deployed app has them
    services = app.extensions["whatsapp_assistant"]
    if services.store.messages.collection.estimated_document_count():
        services.close()
        sys.exit("the database is not empty: give an empty one")
    commands.prefix = services.store.db.name
    try:
        return measure(args, services.store, app.test_client(), commands)
    finally:
        if args.mongodb_uri:  # a server of our own goes with its folder (dropping takes it minutes)
            services.store.client.drop_database(services.store.db.name)
        services.close()  # the rate limiter's client too: left to interpreter exit, closing it hangs


def measure(args, store, client, commands: CommandCount) -> int:
    rng, now = random.Random(1), datetime.now(timezone.utc)
    seeded_at = time.perf_counter()
    conversations = seed_conversations(store, args.customers, now, rng)
    paraphrases = random_paraphrases(rng)
    seed_messages(store, args.messages, [c["_id"] for c in conversations], paraphrases, now, rng)
    seeded_s = time.perf_counter() - seeded_at
    print(f"seeded {args.messages:,} messages from {args.customers:,} customers in {seeded_s:.1f} s")
    pages = console_pages(store, conversations, most_asked=paraphrases.questions[0])
    sign_in(client)
    counted = {page.name: checked_commands(client, page, commands) for page in pages}
    timings = {page.name: timed(args.repeats, lambda page=page: get(client, page.path)) for page in pages}
    baseline_s = timed(args.repeats, lambda: store.messages.collection.count_documents({}))
    print_results(timings, counted, baseline_s)
    return 0


def console_pages(store, conversations: list[dict], most_asked: str) -> list[Page]:
    """The pages to time, each with what it must show (the knowledge page: the gap `most_asked`);
    what the searches look for is printed."""
    waiting = sorted((c for c in conversations if c["status"] == "handoff"),
                     key=lambda c: c["handoff"]["requested_at"])
    number = conversations[len(conversations) // 2]["wa_id"]
    digits = number[-4:]
    name = next(c["profile_name"] for c in reversed(conversations) if "profile_name" in c).split()[0]
    by_number = sum(digits in c["wa_id"] for c in conversations)
    by_name = sum(name.lower() in c.get("profile_name", "").lower() for c in conversations)
    long_id = conversations[0]["_id"]
    long_messages = store.messages.collection.count_documents({"conversation_id": long_id})
    print(f"{len(waiting)} conversations in handoff; {sum('profile_name' in c for c in conversations):,} named; "
          f"searched {digits!r} ({by_number} found) and {name!r} ({by_name} found); "
          f"the long conversation has {long_messages:,} messages")
    waiting_shown = [f"+{c['wa_id']}" for c in waiting[:MOST_WAITING]]  # the longest waits first

    def whole_transcript(html: str) -> bool:
        return html.count('<li class="bubble') == min(long_messages, MAX_MESSAGES)

    return [
        Page("inbox", "/console/inbox",
             lambda html: rows(html) == min(len(conversations), PER_PAGE) and all(n in html for n in waiting_shown)),
        Page("inbox?status=handoff", "/console/inbox?status=handoff",
             lambda html: rows(html, "handoff") == rows(html) == min(len(waiting), PER_PAGE)),
        Page("inbox?q=number", f"/console/inbox?q={digits}",
             lambda html: rows(html) == by_number and f"+{number}" in listed(html)),
        Page("inbox?q=name", f"/console/inbox?{urlencode({'q': name})}",
             lambda html: rows(html) == names_shown(listed(html), name) == min(by_name, PER_PAGE)),
        Page("conversation", f"/console/conversations/{long_id}", whole_transcript),
        Page("conversation/live", f"/console/conversations/{long_id}/live", whole_transcript),
        Page("dashboard", "/console/dashboard", lambda html: f'id="in-handoff">{len(waiting)}<' in html),
        Page("knowledge", "/console/knowledge", lambda html: 'class="gaps"' in html and escape(most_asked) in html),
        Page("settings", "/console/settings", lambda html: 'name="company_name"' in html),
    ]


def listed(html: str) -> str:
    """The inbox's list of conversations (below the handoffs waiting)."""
    return html.partition('id="conversations-title"')[2]


def rows(html: str, status: str = "") -> int:
    """How many conversations the inbox lists (or `status` ones)."""
    return listed(html).count(f'<li class="row {status}')


def names_shown(html: str, name: str) -> int:
    return len(re.findall(rf'<span class="name">[^<]*{re.escape(name)}', html, re.I))


def sign_in(client) -> None:
    """As a browser does: the form's CSRF token, posted back with the admin token."""
    form = client.get("/console/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    signed = client.post("/console/sign-in", data={"csrf_token": csrf, "token": ADMIN_TOKEN})
    assert signed.status_code == 303 and signed.headers["Location"] == "/console/inbox", signed.status_code


def checked_commands(client, page: Page, commands: CommandCount) -> int:
    """Load `page` once (the warm-up): check it, and count the database commands it sent."""
    before = commands.count
    html = get(client, page.path)
    assert page.shows(html), f"{page.name} does not show what it should:\n{html}"
    return commands.count - before


def get(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def print_results(timings: dict[str, list[float]], counted: dict[str, int], baseline_s: list[float]) -> None:
    print(f"{'':28}{'median':>10}{'max':>10}{'commands':>10}")
    for name, durations in timings.items():
        print(f"{timing_row('GET ' + name, durations)}{counted[name]:>10}")
    print(timing_row("baseline count_documents", baseline_s))
    ratios = {name: statistics.median(durations) / statistics.median(baseline_s) for name, durations in timings.items()}
    for name, ratio in ratios.items():
        print(f"ratio {name}/baseline (median) {ratio:.3f}")
    slowest = max(ratios, key=ratios.get)
    print(f"slowest page: {slowest}, ratio {ratios[slowest]:.3f} of the baseline (median)")


def timing_row(name: str, durations: list[float]) -> str:
    return f"{name:28}{statistics.median(durations) * 1000:>8.0f}ms{max(durations) * 1000:>8.0f}ms"


if __name__ == "__main__":
    sys.exit(main())
