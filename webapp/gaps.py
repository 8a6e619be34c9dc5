"""Knowledge gaps: the questions the bot could not answer, or answered with a 👎, grouped by meaning,
biggest group first: the pages to write next (`GET /api/v1/knowledge/gaps`, `scripts/admin.py gaps`).

The worker keeps each such question with its vector (`question`, `question_vector`, from the
embedder it has loaded); grouping reads those alone, so the web process loads no model. It runs in
two steps: each question, newest first, joins the earlier one it is most alike if they are near
duplicates (NEAR_DUPLICATE; a greedy pass that keeps the second step small), then those groups are
merged while the average similarity between their questions is at least GAP_SIMILARITY, the most
alike pair first (average linkage). scripts/eval_gaps.py measures both on paraphrased questions.

A question the bot could not answer stops being a gap once a re-ingest answers it
(`close_answered_gaps`, run by scripts/ingest_docs.py). A 👎 stays until it is older than the days
looked at: asking again shows whether the bot finds an answer now, not whether the customer would
like it.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
from bson import Binary

from webapp.csv_export import csv_lines
from webapp.db.messages import Messages

DEFAULT_DAYS, MAX_DAYS = 30, 365
DEFAULT_GROUPS, MAX_GROUPS = 100, 1000
# Read per request, newest first: bounds a request's time and memory. Grouping 10,000 questions
# of which none are alike (the worst case) takes ~3.5 s on 2 cores; 20,000, 12 s.
MAX_QUESTIONS = 10_000
# e5; on scripts/eval_gaps.py's questions the groups are those of average linkage alone from 0.92 up
NEAR_DUPLICATE = 0.92
# Near-duplicate groups merged by average linkage, the biggest; a 2,000 × 2,000 similarity matrix is
# 16 MB, and beyond that many groups the rest (the smallest) stay as they are
MAX_LINKED = 2000
BLOCK = 256  # questions compared with the earlier near-duplicate leaders at once
EXAMPLES = 3  # other questions shown with a group's example
RECHECKED = 300  # distinct unanswered questions asked again after a re-ingest, newest first
ANSWERED = ("answered", "fallback")  # outcomes of a question answered from the documents
CSV_COLUMNS = ("count", "customers", "unknown", "disliked", "first_seen", "last_seen", "example", "examples")


def vector_bytes(vector: list[float]) -> Binary:
    """A question's vector as stored: little-endian float32, L2-normalised."""
    array = np.asarray(vector, dtype="<f4")
    norm = float(np.linalg.norm(array))
    return Binary((array / norm if norm else array).astype("<f4").tobytes())


def vector_from_bytes(stored: bytes) -> np.ndarray:
    return np.frombuffer(stored, dtype="<f4")


def knowledge_gaps(messages: Messages, now: datetime, days: int, similarity: float, limit: int) -> dict:
    """The groups of the last `days` days' open gaps, biggest first, at most `limit` of them."""
    since = now - timedelta(days=days)
    read = messages.gap_questions(since, MAX_QUESTIONS)
    questions = [q for q in read if q.get("question")]  # answers kept before gaps were: no question
    groups = gap_groups(questions, similarity)
    return {"generated_at": now.isoformat(), "since": since.isoformat(), "days": days, "similarity": similarity,
            "questions": len(questions), "truncated": len(read) == MAX_QUESTIONS,
            "groups_total": len(groups), "groups": groups[:limit]}


def gap_groups(questions: list[dict], similarity: float) -> list[dict]:
    """`questions` (newest first) in groups of one meaning, summarised, biggest first. Vectors of
    different sizes (the embedder was changed) are grouped apart; a question kept without one
    (the embedder was out of reach) is grouped with the same text only."""
    by_size: dict[int, list[dict]] = {}
    by_text: dict[str, list[dict]] = {}
    for question in questions:
        if question.get("question_vector"):
            by_size.setdefault(len(question["question_vector"]), []).append(question)
        else:
            by_text.setdefault(" ".join(question["question"].lower().split()), []).append(question)
    groups = [_summary(same, None) for same in by_text.values()]
    for alike in by_size.values():
        vectors = np.stack([vector_from_bytes(q["question_vector"]) for q in alike])
        groups += [_summary([alike[i] for i in members], vectors[members])
                   for members in map(sorted, cluster(vectors, similarity))]
    return sorted(groups, key=lambda g: (-g["count"], -g["customers"],
                                         -datetime.fromisoformat(g["last_seen"]).timestamp(), g["example"]))


def cluster(vectors: np.ndarray, similarity: float, near_duplicate: float = NEAR_DUPLICATE) -> list[list[int]]:
    """The indexes of `vectors` (unit length) in groups: near duplicates, then average linkage."""
    near = sorted(_near_duplicates(vectors, near_duplicate), key=len, reverse=True)
    return _average_linkage(vectors, near[:MAX_LINKED], similarity) + near[MAX_LINKED:]


def _near_duplicates(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Each vector, in order, joins the group of the earlier group leader it is most alike if that is
    at least `threshold`, else leads a group of its own; a block of vectors is compared at a time."""
    leaders = np.empty_like(vectors)
    leader_ids: list[int] = []
    groups: dict[int, list[int]] = {}
    for start in range(0, len(vectors), BLOCK):
        block = vectors[start:start + BLOCK]
        to_earlier, within = block @ leaders[:len(leader_ids)].T, block @ block.T
        earlier, new = len(leader_ids), []  # leaders before the block, and those in it
        for k in range(len(block)):
            best, leader = -1.0, -1
            if earlier:
                j = int(np.argmax(to_earlier[k]))
                best, leader = to_earlier[k, j], leader_ids[j]
            if new:
                j = new[int(np.argmax(within[k, new]))]
                if within[k, j] > best:
                    best, leader = within[k, j], start + j
            if best >= threshold:
                groups[leader].append(start + k)
                continue
            new.append(k)
            leaders[len(leader_ids)] = block[k]
            leader_ids.append(start + k)
            groups[start + k] = [start + k]
    return list(groups.values())


def _average_linkage(vectors: np.ndarray, groups: list[list[int]], threshold: float) -> list[list[int]]:
    """`groups` merged while the mean similarity of two groups' vectors is at least `threshold`, the
    most alike pair first, by the nearest-neighbour chain (quadratic in the number of groups)."""
    if not groups:
        return []
    members = [list(group) for group in groups]
    sizes = np.array([len(group) for group in groups], dtype=vectors.dtype)
    sums = np.stack([vectors[group].sum(axis=0) for group in groups])
    alike = (sums @ sums.T) / np.outer(sizes, sizes)  # the mean of the pairs' cosine similarities
    np.fill_diagonal(alike, -np.inf)
    done = np.zeros(len(groups), dtype=bool)  # merged into another, or alike to none enough
    chain: list[int] = []
    first = 0
    while True:
        if not chain:
            while first < len(groups) and done[first]:
                first += 1
            if first == len(groups):
                break
            chain.append(first)
        a = chain[-1]
        b = int(np.argmax(alike[a]))
        if alike[a, b] < threshold:  # nor will it be to a merged group: average linkage never rises
            done[a] = True
            alike[a, :] = alike[:, a] = -np.inf
            chain.pop()
        elif len(chain) > 1 and alike[a, chain[-2]] >= alike[a, b]:  # each the other's most alike
            b = chain[-2]
            del chain[-2:]
            alike[a, :] = alike[:, a] = (sizes[a] * alike[a] + sizes[b] * alike[b]) / (sizes[a] + sizes[b])
            alike[b, :] = alike[:, b] = alike[a, a] = -np.inf
            sizes[a] += sizes[b]
            members[a] += members[b]
            members[b] = []
            done[b] = True
        else:
            chain.append(b)
    return [group for group in members if group]


def _summary(questions: list[dict], vectors: np.ndarray | None) -> dict:
    """A group (newest first) as listed: its most typical question (the most alike to the group's
    mean vector; without vectors the newest), a few other recent ones, who asked and when."""
    example = questions[int(np.argmax(vectors @ vectors.mean(axis=0))) if vectors is not None else 0]["question"]
    times = [q["created_at"] for q in questions]
    return {
        "count": len(questions),
        "customers": len({q.get("wa_id") for q in questions}),
        "unknown": sum(q.get("outcome") == "unknown" for q in questions),
        "disliked": sum(q.get("feedback") == "down" for q in questions),
        "first_seen": min(times).isoformat(),
        "last_seen": max(times).isoformat(),
        "example": example,
        "examples": list(dict.fromkeys(q["question"] for q in questions if q["question"] != example))[:EXAMPLES],
    }


def gaps_csv(groups: list[dict]) -> Iterator[str]:
    return csv_lines(CSV_COLUMNS, (dict(group, examples=" | ".join(group["examples"])) for group in groups))


def close_answered_gaps(messages: Messages, assistant, now: datetime) -> tuple[int, int]:
    """Ask `assistant` (a `rag.answer.Assistant`) again the open questions it could not answer,
    each distinct one once, the newest RECHECKED; those it answers now are no longer gaps.
    Returns how many questions it answers now, and how many were asked."""
    asked: dict[str, list] = {}
    for question in messages.gap_questions(now - timedelta(days=MAX_DAYS), MAX_QUESTIONS):
        if question.get("outcome") == "unknown" and question.get("question"):
            asked.setdefault(question["question"].strip(), []).append(question["_id"])
    answered = 0
    for text, answer_ids in list(asked.items())[:RECHECKED]:
        answer = assistant.answer(text)
        if answer.outcome in ANSWERED:
            messages.close_gaps(answer_ids, now, answer.text)
            answered += 1
    return answered, min(len(asked), RECHECKED)
