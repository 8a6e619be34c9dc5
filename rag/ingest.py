"""Ingest: load → split → embed → store, incrementally.

Chunk ids are stable (source + content hash), so an unchanged file embeds nothing, a changed file
gets only its new chunks embedded and its stale ones removed (a chunk that only moved, like a
reordered FAQ row, keeps its vector and gets its new metadata), and `prune` removes the chunks of
files that are gone. New chunks are written before stale ones are deleted, so a reader never
finds a document missing while it is being replaced.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.embeddings import Embeddings
from tqdm import tqdm

from rag.load import EmptyDocument, LoadFailure, find_files, load_file
from rag.split import split_documents
from rag.store import KnowledgeIndex


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_embedded / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        lines = [
            f"files: {len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.removed)} removed, {len(self.empty)} empty (skipped), "
            f"{len(self.failures)} failed",
            f"chunks: {self.chunks_embedded} embedded, {self.chunks_removed} removed "
            f"in {self.seconds:.1f} s ({self.chunks_per_second:.1f} chunks/s)",
        ]
        lines += [f"FAILED {f.source}: {f.reason}" for f in self.failures]
        return "\n".join(lines)


def ingest(
    paths: list[Path],
    index: KnowledgeIndex,
    embedder: Embeddings,
    *,
    exclude: tuple[str, ...] = (),
    prune: bool = False,
    dry_run: bool = False,
    show_progress: bool = False,
) -> IngestReport:
    if prune and any(not path.is_dir() for path in paths):
        raise ValueError("prune needs folders: with a single file, every other document would count as deleted")
    started = time.perf_counter()
    report = IngestReport()
    indexed = index.metadata_by_source()
    files, report.failures = find_files(paths, exclude)
    bar = tqdm(files, unit="file", disable=not show_progress, desc="ingest")
    for file in bar:
        try:
            chunks = split_documents(load_file(file), file.source)
        except EmptyDocument:
            report.empty.append(file.source)
            chunks = []  # nothing to index now: chunks of an earlier version are stale
        except Exception as exc:  # any unreadable file is reported and skipped, never fatal
            indexed.pop(file.source, None)  # keep its last good chunks rather than prune them
            report.failures.append(LoadFailure(file.source, f"{type(exc).__name__}: {exc}"))
            continue
        existing = indexed.pop(file.source, {})
        new_chunks = [c for c in chunks if c.id not in existing]
        moved = [c for c in chunks if c.id in existing and existing[c.id] != c.metadata]
        stale = set(existing) - {c.id for c in chunks}
        changed = bool(new_chunks or moved or stale)
        if chunks:
            bucket = report.added if not existing else report.updated if changed else report.unchanged
            bucket.append(file.source)
        if not dry_run:
            if new_chunks:
                index.add(new_chunks, embedder.embed_documents([c.text for c in new_chunks]))
            index.update_metadata(moved)
            index.delete(sorted(stale))
            if changed:
                index.mark_changed()
        report.chunks_embedded += len(new_chunks)
        report.chunks_removed += len(stale)
        bar.set_postfix(chunks=report.chunks_embedded, refresh=False)
    if prune:
        for source, ids in sorted(indexed.items()):
            report.removed.append(source)
            report.chunks_removed += len(ids)
            if not dry_run:
                index.delete(sorted(ids))
                index.mark_changed()
    report.seconds = time.perf_counter() - started
    return report
