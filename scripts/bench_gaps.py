"""Benchmark: the admin API's `GET /api/v1/knowledge/gaps` over a large seeded database.

Starts its own MongoDB-protocol server (SecantusDB, loopback) unless given --mongodb-uri, seeds
`--messages` messages over 29 days (half customers' questions, half answers: 1 in 10 "I don't know",
a fifth of those closed by a re-ingest; 1 in 10 small talk; of the rest 1 in 10 asked for a rating,
a fifth of those rated 👎), then times the gaps route through the Flask app (reading the questions and
grouping them, each also timed alone) against a baseline measured in the same run: one plain
`count_documents({})` over the same messages, the cheapest query that reads them all.

Each question kept is a wording of one of the evaluation sets' unanswerable questions or of their
paraphrases (scripts/eval_gaps.py): its real e5 vector plus a little noise (two copies of a wording get a
cosine of ~0.97, as a typo or a word changed would), chosen with Zipf's weights, so that a few gaps
are asked often and most rarely, as customers do.

    .venv/bin/python scripts/bench_gaps.py                 # 100,000 messages
    .venv/bin/python scripts/bench_gaps.py --messages 2000 --repeats 2
"""
from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.embed import E5Embeddings  # noqa: E402
from scripts.bench_stats import benchmark_args, benchmark_database, timed  # noqa: E402
from scripts.eval_gaps import labelled_questions  # noqa: E402
from webapp import create_app  # noqa: E402
from webapp.config import load_settings  # noqa: E402
from webapp.gaps import DEFAULT_DAYS, MAX_QUESTIONS, gap_groups, vector_bytes  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789"
BATCH = 5000
NOISE = 0.009  # per dimension: two copies of a wording get a cosine of ~0.97 (a typo, a word changed)
SEEDED_DAYS = 29  # a run takes minutes: all its messages stay within the route's last 30 days


class Paraphrases:
    """Questions to ask, each time another wording: a real question's vector plus noise."""

    def __init__(self, questions: list[str], vectors: np.ndarray, rng: random.Random):
        order = rng.sample(range(len(questions)), len(questions))
        self.questions = [questions[i] for i in order]
        self.vectors = vectors[order]
        self.weights = [1 / (rank + 1) for rank in range(len(order))]
        self.noise = np.random.default_rng(rng.randrange(2**32))
        self.rng = rng

    def ask(self) -> dict:
        number = self.rng.choices(range(len(self.questions)), self.weights)[0]
        vector = self.vectors[number] + self.noise.normal(0, NOISE, self.vectors.shape[1])
        return {"question": self.questions[number], "question_vector": vector_bytes(vector)}


def seed(store, messages: int, customers: int, paraphrases: Paraphrases, now: datetime, rng: random.Random) -> Counter:
    """The messages, in batches; how many answers of each kind of gap were stored."""
    conversations = [uuid.uuid4().hex for _ in range(customers)]
    kept = Counter()
    with tqdm(total=messages, unit="msg", desc="seeding") as progress:
        for start in range(0, messages, BATCH):
            batch = [message(k, conversations, paraphrases, now, rng) for k in range(start, min(start + BATCH, messages))]
            store.messages.collection.insert_many(batch, ordered=False)
            kept.update(gap_kind(m) for m in batch if "question" in m)
            progress.update(len(batch))
    return kept


def message(k: int, conversations: list[str], paraphrases: Paraphrases, now: datetime, rng: random.Random) -> dict:
    turn = k // 2
    conversation = turn % len(conversations)
    common = {"conversation_id": conversations[conversation], "wa_id": f"3460{conversation:07d}",
              "created_at": now - timedelta(seconds=rng.uniform(0, SEEDED_DAYS * 86400))}
    if k % 2 == 0:
        return dict(common, direction="inbound", status="answered", body="¿Tenéis seguro para el perro?",
                    dedup_key=f"in:SM{turn:032x}", external_id=f"SM{turn:032x}")
    answer = dict(common, direction="outbound", kind="answer", part=0, parts=1, status="delivered",
                  body="No tengo esa información.", dedup_key=f"reply:{turn}:answer:0")
    draw = rng.random()
    if draw < 0.1:
        closed = {"gap_closed_at": now} if rng.random() < 0.2 else {}
        return dict(answer, outcome="unknown", **paraphrases.ask(), **closed)
    if draw < 0.2:
        return dict(answer, outcome="small_talk")
    if rng.random() < 0.1:
        rated = {"feedback": "down"} if rng.random() < 0.2 else {"feedback": "up"}
        return dict(answer, outcome="answered", feedback_asked=True, **paraphrases.ask(), **rated)
    return dict(answer, outcome="answered")


def gap_kind(answer: dict) -> str:
    if "gap_closed_at" in answer:
        return "closed"
    return "unknown" if answer["outcome"] == "unknown" else "disliked" if answer.get("feedback") == "down" else "liked"


def main(argv: list[str] | None = None) -> int:
    args = benchmark_args(argv, __doc__)
    with tempfile.TemporaryDirectory(prefix="bench-gaps-") as scratch, \
            benchmark_database(args.mongodb_uri, Path(scratch), "bench_gaps") as uri:
        return run(args, uri, Path(scratch))


def run(args, uri: str, scratch: Path) -> int:
    settings = load_settings(_env_file=None, mongodb_uri=uri, admin_token=ADMIN_TOKEN, chroma_path=scratch / "chroma",
                             validate_twilio_signature=False, log_level="WARNING")
    app = create_app(settings)  # creates the indexes, as a deployed app has them
    services = app.extensions["whatsapp_assistant"]
    if services.store.messages.collection.estimated_document_count():
        services.close()
        sys.exit("the database is not empty: give an empty one")
    try:
        return measure(args, settings, services.store, app.test_client())
    finally:
        if args.mongodb_uri:  # a server of our own goes with its folder (dropping takes it minutes)
            services.store.client.drop_database(services.store.db.name)
        services.close()  # the rate limiter's client too: left to interpreter exit, closing it hangs


def measure(args, settings, store, client) -> int:
    questions, _, _ = labelled_questions()
    embedder = E5Embeddings()
    paraphrases = Paraphrases(questions, np.array([embedder.embed_query(q) for q in questions]), random.Random(2))
    seeded_at = time.perf_counter()
    now = datetime.now(timezone.utc)
    kept = seed(store, args.messages, args.customers, paraphrases, now, random.Random(1))
    print(f"seeded {args.messages:,} messages from {args.customers:,} customers in {time.perf_counter() - seeded_at:.1f} s: "
          f"{kept['unknown'] + kept['closed']:,} unanswered ({kept['closed']:,} of them answered since), "
          f"{kept['disliked']:,} disliked, {kept['liked']:,} liked")

    def gaps():
        response = client.get("/api/v1/knowledge/gaps", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    since = now - timedelta(days=DEFAULT_DAYS)
    read = store.messages.gap_questions(since, MAX_QUESTIONS)
    body = gaps()
    assert body["questions"] == len(read) == min(kept["unknown"] + kept["disliked"], MAX_QUESTIONS), (body, kept)
    gaps_s, baseline_s = timed(args.repeats, gaps), timed(args.repeats, lambda: store.messages.collection.count_documents({}))
    read_s = timed(args.repeats, lambda: store.messages.gap_questions(since, MAX_QUESTIONS))
    group_s = timed(args.repeats, lambda: gap_groups(read, settings.gap_similarity))
    print(f"{'':30}{'median':>10}{'max':>10}")
    for name, durations in (("GET knowledge/gaps", gaps_s), ("  reading the questions", read_s),
                            ("  grouping them", group_s), ("baseline count_documents", baseline_s)):
        print(f"{name:30}{statistics.median(durations) * 1000:>8.0f}ms{max(durations) * 1000:>8.0f}ms")
    print(f"ratio gaps/baseline (median) {statistics.median(gaps_s) / statistics.median(baseline_s):.1f}")
    biggest = body["groups"][0]
    print(f"gaps answered: {body['questions']:,} questions in {body['groups_total']} groups; the biggest: "
          f"{biggest['count']} × {biggest['example']!r} ({biggest['unknown']} unanswered, {biggest['disliked']} disliked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
