"""Benchmark retrieval latency against a one-engine baseline, in one run on the same questions.

    python scripts/bench_retrieval.py --index DIR --qa FILE.jsonl [FILE.jsonl ...]

Answering a question embeds up to four short texts: the search text and, for the relevance check,
the same without the words the documents never use (and a follow-up alone). With several embedder
engines (EMBEDDER_ENGINES) they are embedded side by side. This asks every question (with its
history) of two retrievers over the same index, taking turns at going first:
1. baseline: one engine (EMBEDDER_THREADS threads, or every core when 0), texts embedded in turn;
2. configured: EMBEDDER_ENGINES engines, EMBEDDER_THREADS threads each (0: the cores shared out).
and prints p50 / p95 / mean milliseconds of retrieval (search and relevance check, as `eval_rag.py`
times it) for both, with their ratios, and of embedding each search text alone: the floor of any
retrieval with this embedder on this machine. Build the index first (`eval_rag.py --index DIR` does).
Needs the local embedder (EMBEDDER=e5).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import make_retriever  # noqa: E402
from rag.embed import E5Embeddings  # noqa: E402
from rag.retrieve import Retriever, Turn, search_text  # noqa: E402
from scripts.eval_rag import percentile  # noqa: E402
from webapp.config import load_settings  # noqa: E402


def retrieval_seconds(retriever: Retriever, question: dict) -> float:
    history = [Turn("user", text) for text in question.get("history", [])]
    started = time.perf_counter()
    retriever.relevant(question["question"], retriever.search(question["question"], history), history)
    return time.perf_counter() - started


def embedding_seconds(embedder: E5Embeddings, question: dict) -> float:
    history = [Turn("user", text) for text in question.get("history", [])]
    started = time.perf_counter()
    embedder.embed_query(search_text(question["question"], history))
    return time.perf_counter() - started


def figures(seconds: list[float]) -> dict:
    return {"p50_ms": percentile(seconds, 50), "p95_ms": percentile(seconds, 95),
            "mean_ms": round(statistics.mean(seconds) * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="Chroma folder, already built")
    parser.add_argument("--qa", type=Path, nargs="+", required=True, help="question sets (JSONL)")
    args = parser.parse_args(argv)
    settings = load_settings(validate_twilio_signature=False, chroma_path=args.index)
    if settings.embedder != "e5":
        parser.error("the baseline is the local embedder with one engine: set EMBEDDER=e5")
    questions = [json.loads(line) for path in args.qa for line in path.read_text().splitlines() if line.strip()]
    baseline = E5Embeddings(threads=settings.embedder_threads, engines=1)
    configured = E5Embeddings(threads=settings.embedder_threads, engines=settings.embedder_engines)
    retrievers = {f"1 engine x {baseline.threads} threads": make_retriever(settings, baseline),
                  f"{configured.engines} engines x {configured.threads} threads": make_retriever(settings, configured)}
    for retriever in retrievers.values():
        retriever.warm_up()
    seconds: dict[str, list[float]] = {name: [] for name in [*retrievers, "embedding alone"]}
    for number, question in enumerate(questions):
        turns = list(retrievers.items())
        for name, retriever in turns if number % 2 else reversed(turns):
            seconds[name].append(retrieval_seconds(retriever, question))
        seconds["embedding alone"].append(embedding_seconds(configured, question))
    results = {name: figures(values) for name, values in seconds.items()}
    one_engine, engines, _ = results.values()
    print(f"{len(questions)} questions; baseline: 1 engine; configured: EMBEDDER_ENGINES={configured.engines}")
    for name, result in results.items():
        print(f"  {name:26} p50 {result['p50_ms']:7.1f} ms   p95 {result['p95_ms']:7.1f} ms   "
              f"mean {result['mean_ms']:7.1f} ms")
    print("  configured / baseline:  " + "   ".join(
        f"{key[:-3]} {engines[key] / one_engine[key]:.2f}" for key in ("p50_ms", "p95_ms", "mean_ms")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
