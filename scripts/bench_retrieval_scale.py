"""Benchmark: retrieval on a large index, the app's path against the raw embedder + Chroma query.

    python scripts/bench_retrieval_scale.py [--sizes 10000 50000] [--qa eval/cuidadodesalud_qa.jsonl]
                                            [--corpus ../shared/corpus/cuidadodesalud] [--base-vectors 300]

For each size, builds a Chroma index (a folder in a scratch directory) of that many chunks and
asks it every question twice, taking turns at going first:
1. raw: the configured embedder embeds the question, Chroma returns its RETRIEVAL_K nearest chunks;
2. the app: `Retriever.search` and `Retriever.relevant`, as the worker calls them (typo
   correction, BM25 over every chunk's text, the dense query, the lexical candidates' scores, the
   relevance check and its second embedding).
and prints p50 / p95 / mean milliseconds of both and their ratios (target: app / raw <= 1.15, and
p95 <= 60 ms at 50,000 chunks), with the app's warm-up (reading the texts, building BM25).

Embedding 50,000 chunks would take over an hour here, so the index is synthetic where that does
not change the cost of a query: its texts are the corpus's real chunks, repeated (each repeat
counts as another document), and its vectors are `--base-vectors` real embeddings of corpus chunks,
each repeat with a little noise (normalised). Questions are embedded for real, on every ask.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer import make_retriever  # noqa: E402
from rag.embed import make_embedder  # noqa: E402
from rag.load import EmptyDocument, find_files, load_file  # noqa: E402
from rag.retrieve import Turn  # noqa: E402
from rag.split import Chunk, split_documents  # noqa: E402
from rag.store import open_index  # noqa: E402
from scripts.eval_rag import percentile  # noqa: E402
from webapp.config import load_settings  # noqa: E402

NOISE = 0.05  # per dimension, before normalising: repeats stay near their base, never equal to it
BATCH = 5000


def corpus_chunks(folder: Path) -> list[Chunk]:
    """Every chunk of the corpus, as ingestion cuts them (empty pages skipped)."""
    files, failures = find_files([folder])
    if failures or not files:
        sys.exit(f"cannot read the corpus at {folder}: {failures or 'no documents'}")
    chunks = []
    for file in files:
        with contextlib.suppress(EmptyDocument):
            chunks += split_documents(load_file(file), file.source)
    return chunks


def build_index(settings, embedder_id: str, real: list[Chunk], base: np.ndarray, size: int, rng) -> None:
    index = open_index(settings, embedder_id)
    for start in range(0, size, BATCH):
        numbers = range(start, min(size, start + BATCH))
        chunks = [_repeat(real[n % len(real)], n // len(real)) for n in numbers]
        vectors = base[[n % len(base) for n in numbers]] + rng.normal(0, NOISE, (len(numbers), base.shape[1]))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index.add(chunks, vectors.tolist())
    index.mark_changed()


def _repeat(chunk: Chunk, copy: int) -> Chunk:
    source = f"{chunk.metadata.get('source', chunk.id.split('#')[0])}~{copy}"
    return Chunk(f"{chunk.id}~{copy}", chunk.text, dict(chunk.metadata, source=source))


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def figures(seconds: list[float]) -> dict:
    return {"p50": percentile(seconds, 50), "p95": percentile(seconds, 95), "mean": round(statistics.mean(seconds) * 1000, 1)}


def measure(settings, embedder, questions: list[dict]) -> tuple[dict, float]:
    retriever = make_retriever(settings, embedder)  # a fresh one: no question embedded before
    warm_up = timed(retriever.warm_up)
    index, k = retriever.index, settings.retrieval_k

    def app(question: dict):
        history = [Turn("user", text) for text in question.get("history", [])]
        return lambda: retriever.relevant(question["question"], retriever.search(question["question"], history), history)

    def raw(question: dict):
        return lambda: index.nearest(embedder.embed_query(question["question"]), k)

    seconds = {"raw": [], "app": []}
    for number, question in enumerate(questions):
        paths = [("raw", raw), ("app", app)]
        for name, path in paths if number % 2 else paths[::-1]:
            seconds[name].append(timed(path(question)))
    return {name: figures(values) for name, values in seconds.items()}, warm_up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--qa", type=Path, default=ROOT / "eval" / "cuidadodesalud_qa.jsonl")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "cuidadodesalud")
    parser.add_argument("--base-vectors", type=int, default=300, help="real embeddings the vectors are made from")
    args = parser.parse_args(argv)
    if min(*args.sizes, args.base_vectors) < 1:
        parser.error("sizes and --base-vectors must be positive")
    questions = [json.loads(line) for line in args.qa.read_text().splitlines() if line.strip()]
    settings = load_settings(_env_file=None, validate_twilio_signature=False)
    embedder = make_embedder(settings)
    getattr(embedder, "warm_up", lambda: None)()
    real = corpus_chunks(args.corpus)
    started = time.perf_counter()
    base = np.asarray(embedder.embed_documents([c.text for c in real[: args.base_vectors]]))
    print(f"corpus: {len(real)} chunks; {len(base)} embedded for real in {time.perf_counter() - started:.0f} s; "
          f"{len(questions)} questions; embedder {embedder.embedder_id}; k={settings.retrieval_k}")
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as scratch:
        for size in args.sizes:
            sized = load_settings(_env_file=None, validate_twilio_signature=False, chroma_path=Path(scratch) / str(size))
            build_seconds = timed(lambda: build_index(sized, embedder.embedder_id, real, base, size, rng))
            results, warm_up = measure(sized, embedder, questions)
            print(f"{size:,} chunks (built in {build_seconds:.0f} s; the app's warm-up {warm_up:.1f} s)")
            for name in ("raw", "app"):
                r = results[name]
                label = "raw embed + Chroma" if name == "raw" else "app retrieve path"
                print(f"  {label:20} p50 {r['p50']:6.1f} ms   p95 {r['p95']:6.1f} ms   mean {r['mean']:6.1f} ms")
            app, raw = results["app"], results["raw"]
            print("  app / raw:  " + "   ".join(f"{key} {app[key] / raw[key]:.2f}" for key in ("p50", "p95", "mean"))
                  + "   (target <= 1.15; p95 <= 60 ms at 50,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
