"""Load documents into the knowledge index.

    python scripts/ingest_docs.py PATH [PATH ...] [--exclude GLOB] [--prune] [--reset] [--dry-run]

Files and folders (recursive): Markdown, text, PDF, DOCX, HTML, CSV/TSV (an FAQ table: a chunk per
question and its answer). Re-running is cheap: only new or changed text is embedded. Uses the same
settings (CHROMA_PATH / CHROMA_URL, EMBEDDER, …) as the app.
Exits non-zero when any file could not be read (the others are still ingested).

When documents were added or changed, the questions customers asked that the bot could not answer
are asked again (MONGODB_URI): those it answers now are no longer knowledge gaps. Without MongoDB
in reach the ingest still succeeds and says so.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from pymongo.errors import PyMongoError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import Assistant, make_retriever  # noqa: E402
from rag.embed import make_embedder  # noqa: E402
from rag.ingest import ingest  # noqa: E402
from rag.store import EmbedderMismatch, KnowledgeIndex, open_client  # noqa: E402
from webapp.config import ConfigError, load_settings  # noqa: E402
from webapp.db import open_store  # noqa: E402
from webapp.gaps import close_answered_gaps  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders to ingest")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip matching files")
    parser.add_argument("--prune", action="store_true", help="remove chunks of files no longer present")
    parser.add_argument("--reset", action="store_true", help="drop the whole index and rebuild it")
    parser.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.prune and any(p.is_file() for p in args.paths):
        print("error: --prune needs folders (with a single file every other document would count as deleted)",
              file=sys.stderr)
        return 2
    try:
        settings = load_settings(validate_twilio_signature=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    embedder = make_embedder(settings)
    client = open_client(settings.chroma_url, settings.chroma_path)
    if args.reset and not args.dry_run:
        if settings.chroma_collection in [c.name for c in client.list_collections()]:
            client.delete_collection(settings.chroma_collection)
    try:
        index = KnowledgeIndex(client, settings.chroma_collection, embedder.embedder_id)
    except EmbedderMismatch as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = ingest(
        args.paths, index, embedder, exclude=tuple(args.exclude), prune=args.prune,
        dry_run=args.dry_run, show_progress=not args.quiet,
    )
    print(("DRY RUN, nothing changed\n" if args.dry_run else "") + report.summary())
    print(f"index now holds {index.count()} chunks ({embedder.embedder_id})")
    if not args.dry_run and (report.added or report.updated):
        print(recheck_gaps(settings, embedder))
    return 1 if report.failures else 0


def recheck_gaps(settings, embedder) -> str:
    """Ask again the questions the bot could not answer; those it answers now are no longer gaps.
    Offline, whatever the settings: for a question asked alone, whether it is answered is decided
    before any model writes, so a model would add only cost."""
    store = open_store(settings.mongodb_uri, int(settings.mongodb_timeout_seconds * 1000))
    try:
        store.client.admin.command("ping")
        assistant = Assistant(make_retriever(settings, embedder), fallback_language=settings.knowledge_language)
        answered, asked = close_answered_gaps(store.messages, assistant, datetime.now(timezone.utc))
    except PyMongoError as exc:
        return f"knowledge gaps not re-checked: MongoDB is out of reach ({type(exc).__name__})"
    finally:
        store.close()
    return f"knowledge gaps: {answered} of {asked} unanswered question(s) asked again are answered now"


if __name__ == "__main__":
    sys.exit(main())
