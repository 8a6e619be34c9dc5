"""Measure retrieval and answer quality on a question set, through the assistant the worker uses.

    python scripts/eval_rag.py --docs DIR --qa FILE.jsonl --index DIR [--k 5] [--json]

Ingests DIR into the index folder (incremental: an up-to-date index is reused), then asks every
question (with its `history` as earlier customer turns) and prints Recall@1/3/5, MRR, answer
accuracy, refusal accuracy, false refusal rate and latency: `p50_ms`/`p95_ms` time retrieval
(search and the relevance judgement), `answer_p50_ms`/`answer_p95_ms` the whole answer.
Then what bounds a short answer: the share of answerable questions whose keywords are all in the
best retrieved chunk, the best two, the best three, and somewhere on the best page
(`ceiling_*`); and `suggested_relevance_threshold`, the highest RELEVANCE_THRESHOLD that refuses
at most 5 % of the answerable questions for their best score (calibrate it for another embedder).
With an LLM (OPENAI_API_KEY set; OPENAI_BASE_URL may name any OpenAI-compatible server) its
answers are scored the same way, and the tokens each answer cost are added (`prompt_tokens_*`,
`completion_tokens_mean`, as the server reports them). Format of FILE.jsonl: eval/README.md.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402

from rag.answer import Assistant, build_assistant, make_retriever  # noqa: E402
from rag.embed import make_embedder  # noqa: E402
from rag.language import plain  # noqa: E402
from rag.ingest import ingest  # noqa: E402
from rag.retrieve import Turn  # noqa: E402
from rag.store import open_index  # noqa: E402
from webapp.config import ConfigError, load_settings  # noqa: E402


@dataclass(frozen=True)
class Result:
    id: str
    question: str
    keywords: list[str]
    reply: str
    kind: str
    answerable: bool
    rank: int | None  # 1-based rank of the first chunk from a gold source, None if not in top k
    correct: bool  # answerable: every keyword present; unanswerable: the bot said it does not know
    refused: bool
    retrieval_seconds: float
    answer_seconds: float
    best_score: float | None  # the best retrieved passage's similarity to the question
    within: tuple[bool, ...]  # all keywords in: the best chunk, the best two, the best three, the best page
    prompt_tokens: int = 0
    completion_tokens: int = 0


class TokenCounter(BaseCallbackHandler):
    """The tokens the chat model's server reports for each call (rewrite and answer)."""

    def __init__(self):
        self.prompt = self.completion = 0

    def on_llm_end(self, response, **kwargs) -> None:
        for generations in response.generations:
            for generation in generations:
                usage = getattr(getattr(generation, "message", None), "usage_metadata", None) or {}
                self.prompt += usage.get("input_tokens", 0)
                self.completion += usage.get("output_tokens", 0)

    def take(self) -> tuple[int, int]:
        counted, self.prompt, self.completion = (self.prompt, self.completion), 0, 0
        return counted


def normalise(text: str) -> str:
    """Lower case, no accents, no thousands separators ("1.600" / "1,600" → "1600")."""
    return re.sub(r"(?<=\d)[.,](?=\d{3}\b)", "", plain(text))


def has_keywords(answer: str, keywords: list[str]) -> bool:
    text = normalise(answer)
    return all(any(normalise(option) in text for option in keyword.split("|")) for keyword in keywords)


def evaluate(assistant: Assistant, question: dict, tokens: TokenCounter) -> Result:
    history = [Turn("user", text) for text in question.get("history", [])]
    started = time.perf_counter()
    answer = assistant.answer(question["question"], history)
    seconds = time.perf_counter() - started
    gold = set(question["gold_sources"])
    keywords = question["answer_keywords"]
    rank = next((i for i, hit in enumerate(answer.retrieved, 1) if hit.source in gold), None)
    refused = answer.outcome == "unknown"
    correct = (not refused and has_keywords(answer.text, keywords)) if gold else refused
    found = answer.retrieved
    best_page = assistant.retriever.page(found[0].source) if found else []
    within = tuple(has_keywords("\n".join(hit.text for hit in hits), keywords) if hits else False
                   for hits in (found[:1], found[:2], found[:3], best_page))
    return Result(question.get("id", ""), question["question"], keywords, answer.text,
                  question.get("kind", ""), bool(gold), rank, correct, refused, answer.retrieval_seconds, seconds,
                  max((hit.score for hit in found), default=None), within, *tokens.take())


def summarise(results: list[Result]) -> dict:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]

    def share(items, predicate) -> float:
        return round(sum(1 for r in items if predicate(r)) / len(items), 3) if items else 0.0

    return {
        "n": len(results),
        "recall_at_1": share(answerable, lambda r: r.rank is not None and r.rank <= 1),
        "recall_at_3": share(answerable, lambda r: r.rank is not None and r.rank <= 3),
        "recall_at_5": share(answerable, lambda r: r.rank is not None and r.rank <= 5),
        "mrr": round(sum(1 / r.rank for r in answerable if r.rank) / len(answerable), 3) if answerable else 0.0,
        "answer_accuracy": share(answerable, lambda r: r.correct),
        "refusal_accuracy": share(unanswerable, lambda r: r.correct),
        "false_refusal_rate": share(answerable, lambda r: r.refused),
        "p50_ms": percentile([r.retrieval_seconds for r in results], 50),
        "p95_ms": percentile([r.retrieval_seconds for r in results], 95),
        "answer_p50_ms": percentile([r.answer_seconds for r in results], 50),
        "answer_p95_ms": percentile([r.answer_seconds for r in results], 95),
        **{f"ceiling_{name}": share(answerable, lambda r, i=i: r.within[i])
           for i, name in enumerate(("best_chunk", "best_two", "best_three", "best_page"))},
        "suggested_relevance_threshold": suggested_threshold(answerable),
        **token_figures(results),
    }


def suggested_threshold(answerable: list[Result], refused_at_most: float = 0.05) -> float | None:
    """The highest threshold that leaves at most `refused_at_most` of the answerable questions
    with no passage above it (their best score is below it)."""
    scores = sorted(r.best_score for r in answerable if r.best_score is not None)
    if not scores:
        return None
    return round(math.floor(scores[int(len(scores) * refused_at_most)] * 1000) / 1000, 3)


def token_figures(results: list[Result]) -> dict:
    """Tokens per question the chat model was called for (a rewrite, an answer); none offline."""
    asked = [r for r in results if r.prompt_tokens]
    if not asked:
        return {}
    prompts = [r.prompt_tokens for r in asked]
    return {"llm_questions": len(asked), "prompt_tokens_mean": round(sum(prompts) / len(prompts), 1),
            "prompt_tokens_p95": nearest_rank(prompts, 95),
            "completion_tokens_mean": round(sum(r.completion_tokens for r in asked) / len(asked), 1)}


def percentile(seconds: list[float], percent: int) -> float:
    """Nearest-rank percentile, in milliseconds."""
    return round(nearest_rank(seconds, percent) * 1000, 1) if seconds else 0.0


def nearest_rank(values: list, percent: int):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * percent / 100) - 1)]


def print_misses(results: list[Result], out) -> None:
    for result in results:
        if not result.correct:
            wanted = ", ".join(result.keywords) or "a refusal"
            print(f"\n[{result.id} {result.kind}] {result.question}\n  wanted: {wanted}\n  reply: "
                  + result.reply.replace("\n", "\n         ")[:600], file=out)


def by_kind(results: list[Result]) -> dict[str, dict]:
    kinds = sorted({r.kind for r in results})
    return {kind: summarise([r for r in results if r.kind == kind]) for kind in kinds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=Path, required=True, help="folder of documents")
    parser.add_argument("--qa", type=Path, required=True, help="question set (JSONL)")
    parser.add_argument("--index", type=Path, required=True, help="Chroma folder to build or reuse")
    parser.add_argument("--k", type=int, default=5, help="passages retrieved per question")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--misses", action="store_true", help="also print each question answered wrongly, with the reply")
    args = parser.parse_args(argv)
    for path in (args.docs, args.qa):
        if not path.exists():
            print(f"error: no such file or folder: {path}", file=sys.stderr)
            return 2
    try:
        settings = load_settings(validate_twilio_signature=False, chroma_path=args.index, chroma_url="")
        questions = [json.loads(line) for line in args.qa.read_text().splitlines() if line.strip()]
    except (ConfigError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    embedder = make_embedder(settings)
    index = open_index(settings, embedder.embedder_id)
    report = ingest([args.docs], index, embedder, show_progress=not args.json)
    if not args.json:
        print(report.summary())
    tokens = TokenCounter()
    assistant = build_assistant(settings, make_retriever(settings, embedder, k=args.k), callbacks=[tokens])
    assistant.retriever.warm_up()  # latency figures are per question, not the one-off start-up
    results = [evaluate(assistant, question, tokens) for question in questions]
    summary = summarise(results)
    if args.misses:
        print_misses(results, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(summary))
        return 0
    for name, value in summary.items():
        print(f"{name:>29}: {value}")
    print("\nby kind:")
    for kind, figures in by_kind(results).items():
        print(f"  {kind:<14} n={figures['n']:<3} R@5={figures['recall_at_5']:.2f} MRR={figures['mrr']:.2f} "
              f"answer={figures['answer_accuracy']:.2f} refusal={figures['refusal_accuracy']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
