"""Measure how the knowledge gaps are grouped (webapp.gaps) on questions whose groups are known.

The questions: every unanswerable question of the evaluation sets (eval/*.jsonl but gaps_*, `"kind":
"unanswerable"`) and two paraphrases of each (eval/gaps_paraphrases.jsonl, written for this). A
question's true group is its `topic`: source questions that ask for the same thing (the price of car
insurance, asked in two sets) share one, as one page would answer both; the figures by source
question, where each source is a group of its own, are shown beside. They are embedded with the e5
embedder as the worker embeds a question (`embed_query`) and grouped at each similarity:

- purity: the share of questions that are in their group's majority topic (1: no group mixes topics);
- inverse purity: the share of questions in the group that holds most of their topic (1: no topic
  is split);
- V-measure: the harmonic mean of homogeneity and completeness (entropy-based, 1 at best).

    .venv/bin/python scripts/eval_gaps.py [--similarities 0.86,0.87,0.88,0.89,0.90]

`--holdout eval/gaps_holdout.jsonl` scores instead the questions of a file kept out of choosing the threshold
(one `{"topic": ..., "questions": [...]}` a line; a question's true group is its topic), without the columns
by source question.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.embed import E5Embeddings  # noqa: E402
from webapp.config import Settings  # noqa: E402
from webapp.gaps import NEAR_DUPLICATE, cluster  # noqa: E402

PARAPHRASES = ROOT / "eval" / "gaps_paraphrases.jsonl"
IN_USE = Settings.model_fields["gap_similarity"].default


def labelled_questions() -> tuple[list[str], list[str], list[str]]:
    """The questions, each one's source question id and each one's topic."""
    unanswerable = {}
    for path in sorted((ROOT / "eval").glob("*.jsonl")):
        if not path.name.startswith("gaps_"):  # not question sets: these paraphrases, the held-out gaps
            for line in path.read_text(encoding="utf-8").splitlines():
                item = json.loads(line)
                if item["kind"] == "unanswerable":
                    unanswerable[item["id"]] = item["question"]
    questions, sources, topics = [], [], []
    for line in PARAPHRASES.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        for question in [unanswerable.pop(item["source"]), *item["paraphrases"]]:
            questions.append(question)
            sources.append(item["source"])
            topics.append(item["topic"])
    if unanswerable:
        sys.exit(f"unanswerable questions without paraphrases: {', '.join(sorted(unanswerable))}")
    return questions, sources, topics


def holdout_questions(path: Path) -> tuple[list[str], list[str]]:
    """The questions of a held-out file and each one's topic."""
    questions, topics = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        questions += item["questions"]
        topics += [item["topic"]] * len(item["questions"])
    return questions, topics


def scores(found: list[int], truth: list[str]) -> dict:
    n = len(truth)
    pairs, groups, classes = Counter(zip(found, truth)), Counter(found), Counter(truth)
    best_class, best_group = Counter(), Counter()
    for (group, label), count in pairs.items():
        best_class[group] = max(best_class[group], count)
        best_group[label] = max(best_group[label], count)
    homogeneity = 1 - _conditional_entropy(pairs, groups, n, 0) / _entropy(classes, n)
    completeness = 1 - _conditional_entropy(pairs, classes, n, 1) / _entropy(groups, n) if len(groups) > 1 else 1.0
    return {"groups": len(groups), "purity": sum(best_class.values()) / n, "inverse": sum(best_group.values()) / n,
            "v": 2 * homogeneity * completeness / (homogeneity + completeness)}


def _entropy(counts: Counter, n: int) -> float:
    return -sum(c / n * math.log(c / n) for c in counts.values())


def _conditional_entropy(pairs: Counter, given: Counter, n: int, side: int) -> float:
    """H(the other label | the `side` one of each pair)."""
    return -sum(count / n * math.log(count / given[pair[side]]) for pair, count in pairs.items())


def group_of_each(vectors: np.ndarray, similarity: float, near_duplicate: float = NEAR_DUPLICATE) -> list[int]:
    found = [0] * len(vectors)
    for number, members in enumerate(cluster(vectors, similarity, near_duplicate)):
        for index in members:
            found[index] = number
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--similarities", default="0.84,0.86,0.87,0.88,0.89,0.90,0.92",
                        type=lambda text: sorted({float(s) for s in text.split(",")} | {IN_USE}))
    parser.add_argument("--holdout", type=Path, metavar="PATH",
                        help="score the questions of this file (one {topic, questions} a line) instead")
    args = parser.parse_args(argv)
    if args.holdout:
        (questions, topics), sources = holdout_questions(args.holdout), None
    else:
        questions, sources, topics = labelled_questions()
    embedder = E5Embeddings()
    vectors = np.array([embedder.embed_query(q) for q in questions], dtype="<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    if sources is None:
        print(f"questions: {len(questions)} (held out, {args.holdout}); true groups: {len(set(topics))} topics; "
              f"near duplicates at {NEAR_DUPLICATE}")
    else:
        print(f"questions: {len(questions)} ({len(set(sources))} unanswerable and two paraphrases of each); "
              f"true groups: {len(set(topics))} topics ({len(set(sources))} source questions); "
              f"near duplicates at {NEAR_DUPLICATE}")
    print(f"{'similarity':>12}{'groups':>8}{'purity':>8}{'inverse':>9}{'V':>7}"
          + (f"  |  by source:{'purity':>7}{'inverse':>9}{'V':>7}" if sources else ""))
    for similarity in args.similarities:
        found = group_of_each(vectors, similarity)
        by_topic = scores(found, topics)
        mark = "*" if similarity == IN_USE else " "
        row = (f"{mark}{similarity:>11.2f}{by_topic['groups']:>8}{by_topic['purity']:>8.2f}{by_topic['inverse']:>9.2f}"
               f"{by_topic['v']:>7.3f}")
        if sources:
            by_source = scores(found, sources)
            row += f"  |  {'':10}{by_source['purity']:>7.2f}{by_source['inverse']:>9.2f}{by_source['v']:>7.3f}"
        print(row)
    print(f"* in use (GAP_SIMILARITY's default); at {IN_USE}:")
    describe_mistakes(group_of_each(vectors, IN_USE), questions, topics)
    print(f"at {IN_USE}, by the near-duplicate step's threshold (in use: {NEAR_DUPLICATE}; 1.00: none, average "
          "linkage alone), by topic:")
    for near_duplicate in (0.88, 0.90, 0.92, 0.95, 1.00):
        by_topic = scores(group_of_each(vectors, IN_USE, near_duplicate), topics)
        print(f"{near_duplicate:>12.2f}{by_topic['groups']:>8}{by_topic['purity']:>8.2f}{by_topic['inverse']:>9.2f}"
              f"{by_topic['v']:>7.3f}")
    return 0


def describe_mistakes(found: list[int], questions: list[str], topics: list[str]) -> None:
    """The groups that mix topics, and the topics split over groups."""
    members: dict[int, list[int]] = {}
    for index, group in enumerate(found):
        members.setdefault(group, []).append(index)
    for indexes in members.values():
        if len({topics[i] for i in indexes}) > 1:
            print("  mixed: " + "; ".join(f"{topics[i]}: {questions[i]!r}" for i in indexes))
    for topic in dict.fromkeys(topics):
        split = Counter(found[i] for i in range(len(found)) if topics[i] == topic)
        if len(split) > 1:
            print(f"  split: {topic} in {len(split)} groups of {', '.join(map(str, split.values()))}")


if __name__ == "__main__":
    sys.exit(main())
