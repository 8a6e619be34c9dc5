"""Benchmark ingestion against the raw embedder, in one run on the same chunks.

    python scripts/bench_ingest.py DIR [--limit N]

1. raw: load and split DIR, then embed every chunk text in one `embed_documents` call (the
   embedder alone: no Chroma, no bookkeeping);
2. ingest: `rag.ingest.ingest` of DIR into a fresh index folder;
3. re-ingest: the same, unchanged, again.
Prints chunks/s for 1 and 2, their ratio (target ≥ 0.85) and re-ingest time as a share of the
first ingest (target ≤ 5 %). Uses the configured embedder (EMBEDDER, EMBEDDER_ENGINES, EMBEDDER_THREADS).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.embed import make_embedder  # noqa: E402
from rag.ingest import ingest  # noqa: E402
from rag.load import EmptyDocument, find_files, load_file  # noqa: E402
from rag.split import split_documents  # noqa: E402
from rag.store import open_index  # noqa: E402
from webapp.config import load_settings  # noqa: E402


def subset(folder: Path, limit: int, scratch: Path) -> Path:
    """A folder of links to the first `limit` files, at the same relative paths."""
    files, _ = find_files([folder])
    for file in files[:limit]:
        link = scratch / file.source
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(file.path.resolve())
    return scratch


def chunk_texts(folder: Path) -> list[str]:
    files, _ = find_files([folder])
    texts = []
    for file in files:
        try:
            texts += [chunk.text for chunk in split_documents(load_file(file), file.source)]
        except EmptyDocument:
            continue
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--limit", type=int, help="only the first N files (sorted by path)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = subset(args.folder, args.limit, Path(scratch) / "docs") if args.limit else args.folder
        texts = chunk_texts(folder)
        settings = load_settings(validate_twilio_signature=False, chroma_path=Path(scratch) / "index", chroma_url="")
        embedder = make_embedder(settings)
        if hasattr(embedder, "warm_up"):  # a local embedder: model loading is not throughput
            embedder.warm_up()

        started = time.perf_counter()
        embedder.embed_documents(texts)
        raw_seconds = time.perf_counter() - started

        index = open_index(settings, embedder.embedder_id)
        first = ingest([folder], index, embedder)
        again = ingest([folder], index, embedder)
        files = len(first.added) + len(first.empty) + len(first.failures)

    raw_rate = len(texts) / raw_seconds
    print(f"files: {files}, chunks: {len(texts)}, embedder: {embedder.embedder_id}")
    print(f"raw embedder:  {raw_seconds:7.1f} s  {raw_rate:6.2f} chunks/s")
    print(f"ingest:        {first.seconds:7.1f} s  {first.chunks_per_second:6.2f} chunks/s "
          f"({first.chunks_embedded} embedded)")
    print(f"re-ingest:     {again.seconds:7.1f} s  ({again.chunks_embedded} embedded)")
    print(f"ingest / raw throughput: {first.chunks_per_second / raw_rate:.2f} (target >= 0.85)")
    print(f"re-ingest / ingest time: {again.seconds / first.seconds:.1%} (target <= 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
