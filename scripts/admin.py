"""The admin command: conversations, failed replies and the knowledge index, from a terminal.

    python scripts/admin.py stats
    python scripts/admin.py conversations [--status open|closed] [--page N] [--per-page N] [--json]
    python scripts/admin.py show CONVERSATION_ID [--json]
    python scripts/admin.py resend MESSAGE_ID
    python scripts/admin.py index [--json]
    python scripts/admin.py export [--status open|closed] [--output FILE]
    python scripts/admin.py purge [--older-than-days N]
    python scripts/admin.py gaps [--days N] [--limit N] [--csv]

Uses the app's settings (.env and the environment: MONGODB_URI, CHROMA_PATH / CHROMA_URL, …) and
talks to MongoDB and Chroma directly, so it works whether the web app runs or not.

- `resend` queues again the parts of a reply that Twilio never delivered (failed or undelivered),
  as new messages; the worker sends them in order. Refused outside the customer's 24-hour window.
- `export` writes one JSON object per line: a conversation with all its messages, oldest
  conversation first.
- `purge` deletes messages, events and emptied conversations older than N days (default
  RETENTION_DAYS), as the worker does every hour when RETENTION_DAYS is set.
- `gaps` lists the questions the bot could not answer, or answered with a 👎, grouped by meaning,
  biggest group first, as `GET /api/v1/knowledge/gaps` does.

Exit codes: 0 done, 1 refused or not found (the reason is printed), 2 bad arguments or settings.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.store import describe_index, open_client  # noqa: E402
from webapp.admin import (AdminError, conversation_record, find_conversation, message_record,  # noqa: E402
                          resend_failed_reply, stats)
from webapp.config import ConfigError, load_settings  # noqa: E402
from webapp.db import open_store  # noqa: E402
from webapp.db.conversations import STATUSES  # noqa: E402
from webapp.gaps import DEFAULT_DAYS, DEFAULT_GROUPS, MAX_DAYS, MAX_GROUPS, gaps_csv, knowledge_gaps  # noqa: E402
from webapp.retention import purge  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("stats", help="the admin API's stats, as JSON")

    listing = commands.add_parser("conversations", help="list conversations, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--page", type=positive, default=1)
    listing.add_argument("--per-page", type=positive, default=20)
    listing.add_argument("--json", action="store_true", help="one JSON object instead of a table")

    show = commands.add_parser("show", help="a conversation with its messages and delivery statuses")
    show.add_argument("conversation_id")
    show.add_argument("--json", action="store_true")

    resend = commands.add_parser("resend", help="queue again the undelivered parts of a reply")
    resend.add_argument("message_id", help="the id of any part of the reply (as `show` prints it)")

    index = commands.add_parser("index", help="what the knowledge index holds")
    index.add_argument("--json", action="store_true")

    export = commands.add_parser("export", help="conversations with their messages, as JSON lines")
    export.add_argument("--status", choices=STATUSES)
    export.add_argument("--output", type=Path, help="write here instead of to standard output")

    purging = commands.add_parser("purge", help="delete what is older than the retention period")
    purging.add_argument("--older-than-days", type=positive, help="default: RETENTION_DAYS")

    gaps = commands.add_parser("gaps", help="unanswered or disliked questions, grouped by meaning")
    gaps.add_argument("--days", type=up_to(MAX_DAYS), default=DEFAULT_DAYS, help=f"the last N days (at most {MAX_DAYS})")
    gaps.add_argument("--limit", type=up_to(MAX_GROUPS), default=DEFAULT_GROUPS, help="the N biggest groups")
    gaps.add_argument("--csv", action="store_true", help="as CSV instead of a table")
    return parser.parse_args(argv)


def positive(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"a whole number from 1 expected, not {text!r}")
    return int(text)


def up_to(most: int):
    """An argument type: a whole number from 1 to `most`."""
    def whole_number(text: str) -> int:
        if positive(text) > most:
            raise argparse.ArgumentTypeError(f"at most {most}, not {text}")
        return int(text)
    return whole_number


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(validate_twilio_signature=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "index":
        return show_index(settings, args.json)
    store = open_store(settings.mongodb_uri, int(settings.mongodb_timeout_seconds * 1000))
    args.retention_days, args.gap_similarity = settings.retention_days, settings.gap_similarity
    try:
        command = {"stats": show_stats, "conversations": list_conversations, "show": show_conversation, "resend": resend,
                   "export": export, "purge": purge_old, "gaps": show_gaps}[args.command]
        return command(store, args)
    except AdminError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()


def show_stats(store, _args) -> int:
    print(json.dumps(stats(store, datetime.now(timezone.utc))))
    return 0


def list_conversations(store, args) -> int:
    found, total = store.conversations.page(args.status, args.page, args.per_page)
    records = [conversation_record(c) for c in found]
    if args.json:
        print(json.dumps({"conversations": records, "page": args.page, "per_page": args.per_page, "total": total}))
        return 0
    print(f"{'id':32}  {'customer':15}  {'status':7}  {'started':25}  closed")
    for record in records:
        print(f"{record['id']:32}  {record['wa_id']:15}  {record['status']:7}  {record['started_at']:25}  "
              f"{record['closed_at'] or ''}")
    pages = max(1, -(-total // args.per_page))
    print(f"page {args.page} of {pages}, {total} conversation(s)")
    return 0


def show_conversation(store, args) -> int:
    conversation = conversation_record(find_conversation(store, args.conversation_id))
    messages = [message_record(m) for m in store.messages.of_conversation(args.conversation_id)]
    if args.json:
        print(json.dumps({**conversation, "messages": messages}, ensure_ascii=False))
        return 0
    print(f"conversation {conversation['id']}: customer {conversation['wa_id']}, {conversation['status']}, "
          f"started {conversation['started_at']}" + (f", closed {conversation['closed_at']}" if conversation['closed_at'] else ""))
    for message in messages:
        arrow = "<-" if message["direction"] == "inbound" else "->"
        error = f" (error {message['error_code']})" if message.get("error_code") else ""
        print(f"{message['created_at']}  {arrow} {message['status']}{error}  [{message['id']}]")
        print("    " + (message.get("body") or "").replace("\n", "\n    "))
    return 0


def resend(store, args) -> int:
    queued = resend_failed_reply(store, args.message_id, datetime.now(timezone.utc))
    print(f"queued {len(queued)} part(s) again: {', '.join(str(m['_id']) for m in queued)}; "
          "the worker sends them in order")
    return 0


def export(store, args) -> int:
    output = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    try:
        conversations = store.conversations.every(args.status)
        total = store.conversations.count(args.status)
        for conversation in tqdm(conversations, total=total, unit="conversation", desc="export", disable=None):
            messages = [message_record(m) for m in store.messages.of_conversation(conversation["_id"])]
            output.write(json.dumps({**conversation_record(conversation), "messages": messages}, ensure_ascii=False) + "\n")
    finally:
        if output is not sys.stdout:
            output.close()
    if args.output:
        print(f"exported {total} conversation(s) to {args.output}", file=sys.stderr)
    return 0


def purge_old(store, args) -> int:
    days = args.older_than_days or args.retention_days
    if not days:
        print("error: give --older-than-days N, or set RETENTION_DAYS", file=sys.stderr)
        return 2
    deleted = purge(store, datetime.now(timezone.utc) - timedelta(days=days))
    print(f"deleted {deleted['messages']} message(s), {deleted['events']} event(s), {deleted['conversations']} "
          f"conversation(s) and {deleted['sessions']} session(s) older than {days} days")
    return 0


def show_gaps(store, args) -> int:
    found = knowledge_gaps(store.messages, datetime.now(timezone.utc), args.days, args.gap_similarity, args.limit)
    if args.csv:
        sys.stdout.writelines(gaps_csv(found["groups"]))
        return 0
    print(f"{'count':>5}  {'customers':>9}  {'unknown':>7}  {'disliked':>8}  {'last seen':16}  example")
    for group in found["groups"]:
        print(f"{group['count']:>5}  {group['customers']:>9}  {group['unknown']:>7}  {group['disliked']:>8}  "
              f"{group['last_seen'][:16].replace('T', ' '):16}  {group['example']}")
    print(f"{found['questions']} question(s) of the last {args.days} days in {found['groups_total']} group(s)"
          + (" (the newest only)" if found["truncated"] else ""))
    return 0


def show_index(settings, as_json: bool) -> int:
    where = settings.chroma_url or str(settings.chroma_path)
    status = describe_index(open_client(settings.chroma_url, settings.chroma_path), settings.chroma_collection)
    if status is None:
        print(f"error: no index '{settings.chroma_collection}' at {where}: load documents with "
              "scripts/ingest_docs.py", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({**status, "location": where}))
        return 0
    print(f"index '{status['collection']}' at {where}")
    print(f"documents: {status['documents']}, chunks: {status['chunks']}")
    print(f"embedder: {status['embedder']}")
    print(f"last ingest: {status['last_ingest_at'] or 'not recorded (built before ingests were timed)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
