"""What the webhook and the worker ask of MongoDB: which commands each step sends (the load
benchmark showed the database is the bottleneck, so a step that grows a round trip should fail
here, not only in a benchmark), and what the less obvious queries return."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from pymongo import monitoring

from tests.conftest import chatwoot_settings, inbound_form, signed_post
from webapp.db.jobs import NEVER_LEASED


class CommandLog(monitoring.CommandListener):
    """Commands sent to databases whose name starts with `prefix`, while recording."""

    def __init__(self):
        self.prefix = None
        self.commands: list[tuple[str, str]] = []

    def started(self, event):
        if self.prefix and event.database_name.startswith(self.prefix):
            name = event.command_name
            self.commands.append((name, str(event.command.get(name))))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture(scope="module")
def command_log() -> CommandLog:
    log = CommandLog()
    monitoring.register(log)  # for the clients created from now on; pymongo has no unregister
    return log


@pytest.fixture
def settings_overrides(settings_overrides, command_log):
    """Listen before the app (and its MongoDB clients) is built. A lease as long as allowed: on a
    loaded machine an answer can outlast a third of the default one, and its renewal would be one
    more command than these tests count."""
    settings_overrides["worker_lease_seconds"] = 3600
    settings_overrides["bot_config_refresh_seconds"] = 300  # read once per process and interval, not per job
    return settings_overrides


@pytest.fixture
def commands(store, command_log):
    command_log.commands = []
    command_log.prefix = store.db.name
    yield command_log.commands
    command_log.prefix = None


def test_webhook_from_a_known_customer_makes_five_database_calls(client, store, commands):
    signed_post(client, inbound_form("hola"))  # the first message creates the session and the conversation
    assert commands[:3] == [("find", "whatsapp_sessions"), ("insert", "whatsapp_sessions"), ("insert", "conversations")]
    commands.clear()

    assert signed_post(client, inbound_form("cuánto cuesta la fibra?")).status_code == 200

    assert commands == [
        ("find", "whatsapp_sessions"),  # read on every message: a reset must be seen at once
        ("insert", "messages"),
        ("update", "windows"),  # RATE_LIMIT_PER_WA_ID, per minute
        ("update", "windows"),  # and per hour
        ("update", "reply_jobs"),
    ]


def test_a_job_answered_in_one_part_makes_eleven_database_calls_and_the_next_claim(client, store, worker, fake_twilio, commands):
    signed_post(client, inbound_form("cuánto cuesta la fibra de 600 megas?"))
    worker.bot_config.current()  # as an earlier job of the process did
    commands.clear()

    assert worker.run_until_idle() == 1

    assert len(fake_twilio.sent_messages()) == 1
    assert commands == [
        ("findAndModify", "reply_jobs"),  # claim
        ("find", "messages"),  # replies left by an earlier attempt, and messages to answer
        ("update", "whatsapp_sessions"),  # touch: last_inbound_at, profile name
        ("find", "conversations"),  # in a handoff? (then the bot stays silent)
        ("find", "messages"),  # history
        ("insert", "messages"),  # the reply
        ("update", "messages"),  # the question is answered
        ("update", "messages"),  # submitting
        ("update", "messages"),  # Twilio's status and SID
        ("insert", "events"),  # message_received, message_sent: the job's events at once
        ("delete", "reply_jobs"),  # done
        ("findAndModify", "reply_jobs"),  # the next claim finds nothing
    ]


def test_a_deleted_session_means_the_next_message_starts_a_new_conversation(client, store, worker, fake_twilio):
    signed_post(client, inbound_form("hola"))
    worker.run_until_idle()
    first = store.sessions.collection.find_one()["conversation_id"]
    assert store.sessions.end("34600111222") == [first]

    signed_post(client, inbound_form("sigo aquí"))
    worker.run_until_idle()

    session = store.sessions.collection.find_one()
    assert session["conversation_id"] != first
    assert session["wa_id"] == "34600111222" and session["profile_name"] == "Ana"
    assert [m["conversation_id"] for m in store.messages.collection.find({"direction": "inbound"}).sort("created_at")] \
        == [first, session["conversation_id"]]
    assert {c["_id"]: c["status"] for c in store.conversations.collection.find()} \
        == {first: "open", session["conversation_id"]: "open"}  # closing is the admin route's part


def test_a_late_touch_for_a_conversation_reset_since_does_not_bring_it_back(store):
    now = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
    conversation_id, _ = store.sessions.conversation_id("twilio", "34600111222", now)
    store.sessions.end("34600111222")

    store.sessions.touch("34600111222", conversation_id, now, "Ana")

    assert store.sessions.collection.count_documents({}) == 0


def test_history_is_the_last_turns_skipping_what_is_not_a_turn(store):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    at = [start + timedelta(seconds=n) for n in range(20)]
    base = {"conversation_id": "c1", "wa_id": "34600111222"}
    store.messages.collection.insert_many([dict(m, dedup_key=f"k{n}") for n, m in enumerate([
        dict(base, direction="inbound", status="answered", body="q1", created_at=at[0]),
        dict(base, direction="outbound", kind="answer", part=0, body="a1 (1/2)", answer_text="a1", created_at=at[1]),
        dict(base, direction="outbound", kind="answer", part=1, body="a1 (2/2)", created_at=at[2]),
        dict(base, direction="inbound", status="rate_limited", body="spam", created_at=at[3]),
        dict(base, direction="outbound", kind="notice", part=0, body="slow down", created_at=at[4]),
        dict(base, direction="inbound", status="answered", body="q2", created_at=at[5]),
        dict(base, direction="outbound", kind="answer", part=0, body="a2", answer_text="a2", created_at=at[6]),
        dict(base, direction="inbound", status="received", body="q3 (being answered)", created_at=at[7]),
        dict(base, conversation_id="c2", direction="inbound", status="answered", body="other", created_at=at[6]),
    ])])

    def bodies(limit: int, before: datetime = at[7]) -> list[str]:
        return [m["body"] for m in store.messages.history("c1", before, limit)]

    assert bodies(10) == ["q1", "a1 (1/2)", "q2", "a2"]
    assert bodies(3) == ["a1 (1/2)", "q2", "a2"]
    assert bodies(2, before=at[6]) == ["a1 (1/2)", "q2"]
    assert bodies(0) == []


def test_a_lost_lease_is_noticed_before_anything_is_queued(client, store, worker, fake_twilio, monkeypatch):
    signed_post(client, inbound_form("cuánto cuesta la fibra de 600 megas?"))
    job = worker.claim()
    other = worker.store.jobs.collection
    taken = datetime.now(timezone.utc) + timedelta(minutes=5)

    def answer_while_the_lease_is_taken(*args):
        # as if this worker stalled past its lease and another one claimed the conversation
        job["lease_until"] = NEVER_LEASED
        other.update_one({"_id": job["_id"]}, {"$set": {"worker": "another", "lease_until": taken}})
        return original(*args)

    original = worker.reply_to
    monkeypatch.setattr(worker, "reply_to", answer_while_the_lease_is_taken)

    with pytest.raises(RuntimeError, match="lease lost"):
        worker.handle(job)
    assert store.messages.collection.count_documents({"direction": "outbound"}) == 0
    assert store.messages.collection.find_one({"direction": "inbound"})["status"] == "received"
    assert fake_twilio.sent_messages() == []


def test_a_late_touch_never_moves_the_session_back(store):
    earlier, later = datetime(2026, 1, 1, 9, tzinfo=timezone.utc), datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
    conversation_id, started = store.sessions.conversation_id("twilio", "34600111222", earlier)
    assert started and store.sessions.conversation_id("twilio", "34600111222", later) == (conversation_id, False)

    store.sessions.touch("34600111222", conversation_id, later, "Ana")
    store.sessions.touch("34600111222", conversation_id, earlier)  # a batch applied late

    session = store.sessions.collection.find_one()
    assert session["last_inbound_at"] == later and session["profile_name"] == "Ana"
    assert session["conversation_id"] == conversation_id


def test_queueing_a_reply_again_adds_nothing_and_returns_only_what_is_left_to_send(store):
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    question = store.messages.collection.insert_one({"dedup_key": "in:q", "direction": "inbound"}).inserted_id

    def queue() -> list[dict]:
        return store.messages.queue_reply("c1", "34600111222", [question], ["parte 1", "parte 2"], now, kind="answer",
                                           route={"channel": "twilio", "business": ""})

    first = queue()
    assert [p["body"] for p in first] == ["parte 1", "parte 2"] and all("_id" in p for p in first)
    store.messages.record_send(first[0]["_id"], "sent", now, external_id="SM" + "0" * 32)

    again = queue()  # as after a crash between queueing and marking the question answered

    assert [p["_id"] for p in again] == [first[1]["_id"]]
    assert store.messages.collection.count_documents({"direction": "outbound"}) == 2


def test_concurrent_first_messages_of_a_customer_share_one_conversation(store):
    now = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
    barrier = threading.Barrier(8)

    def first_message(_):
        barrier.wait(timeout=10)
        return store.sessions.conversation_id("twilio", "34600111222", now)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(first_message, range(8)))

    assert len({conversation_id for conversation_id, _ in results}) == 1
    assert sum(started for _, started in results) == 1
    assert store.sessions.collection.count_documents({}) == 1


@pytest.fixture
def with_meta(settings_overrides, fake_graph):
    """Meta served too, before the app is built."""
    from tests.conftest import meta_overrides
    settings_overrides.update(meta_overrides(settings_overrides, fake_graph))


def test_a_meta_message_costs_what_a_twilio_one_does(with_meta, client, store, worker, fake_graph, commands):
    """Meta's webhook and answer send the same database commands as Twilio's (the read receipt and
    the typing indicator are one call to Meta, none to the database)."""
    from scripts.chat import meta_delivery
    from tests.conftest import META_PHONE_NUMBER_ID, meta_post

    def delivery(text: str) -> dict:
        return meta_delivery("34600111222", META_PHONE_NUMBER_ID, {"type": "text", "text": {"body": text}})

    webhook, job = commands_of_a_second_message(lambda text: meta_post(client, delivery(text)), worker, commands)

    assert webhook == [("find", "whatsapp_sessions"), ("insert", "messages"), ("update", "windows"),
                       ("update", "windows"), ("update", "reply_jobs")]
    assert job == [
        ("findAndModify", "reply_jobs"), ("find", "messages"), ("update", "whatsapp_sessions"),
        ("find", "conversations"), ("find", "messages"), ("insert", "messages"), ("update", "messages"),
        ("update", "messages"), ("update", "messages"), ("insert", "events"), ("delete", "reply_jobs"),
        ("findAndModify", "reply_jobs"),
    ]
    assert len(fake_graph.sent_messages()) == 2 and len(fake_graph.read_receipts()) == 2


def commands_of_a_second_message(post, worker, commands) -> tuple[list, list]:
    """The database commands of a known customer's message (`post` sends a text as the channel's
    provider does): the webhook's, then those of the job answering it. The first message creates
    the session and the conversation, and the bot settings are read as an earlier job had."""
    post("hola")
    worker.run_until_idle()
    worker.bot_config.current()
    commands.clear()
    assert post("cuánto cuesta la fibra de 600 megas?").status_code == 200
    webhook = list(commands)
    commands.clear()
    assert worker.run_until_idle() == 1
    return webhook, list(commands)


@pytest.fixture
def with_chatwoot(settings_overrides, fake_chatwoot):
    """Chatwoot configured (to be asked for before the app is built)."""
    settings_overrides.update({name.lower(): value for name, value in chatwoot_settings(fake_chatwoot).items()})


def test_with_chatwoot_a_message_and_its_answer_cost_one_database_call_more_each(with_chatwoot, client, store, worker,
                                                                                fake_twilio, commands):
    """What Chatwoot is to be told is queued on the reply path (the sync is the worker's other thread)."""
    webhook, job = commands_of_a_second_message(lambda text: signed_post(client, inbound_form(text)), worker, commands)

    assert webhook.count(("update", "chatwoot_sync")) == 1 and len(webhook) == 6
    assert job.count(("update", "chatwoot_sync")) == 1 and len(job) == 13
