"""The admin API: stats, conversations (list, detail, close) and session reset, each refusing a
request without the admin token."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import ADMIN_TOKEN, inbound_form, signed_post
from webapp.db.events import event

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
W = "/api/v1/whatsapp"
ROUTES = [("get", f"{W}/stats"), ("get", f"{W}/conversations"), ("get", f"{W}/conversations/{'a' * 32}"),
          ("post", f"{W}/conversations/{'a' * 32}/close"), ("delete", f"{W}/sessions/34600111222"), ("get", "/metrics"),
          ("post", f"{W}/messages/{'a' * 24}/resend")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_admin_route_refuses_a_missing_or_wrong_token(client, store, method, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}):
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code == 401 and response.get_json()["error"]
    assert store.conversations.collection.count_documents({}) == 0


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_admin_route_answers_with_the_token(client, method, path):
    status = getattr(client, method)(path, headers=ADMIN).status_code
    assert status in (200, 404)  # 404: the conversation or session named does not exist


def test_stats_are_exact_on_a_seeded_dataset(client, store):
    now = datetime.now(timezone.utc)
    ago = lambda **delta: now - timedelta(**delta)  # noqa: E731
    store.conversations.collection.insert_many([
        {"_id": f"{n:032x}", "wa_id": f"3460000000{n}", "status": status, "started_at": ago(days=20)}
        for n, status in enumerate(["open", "open", "closed", "handoff"])
    ])
    store.events.record([event("handoff_requested", f"h{n}", f"{n:032x}", at) for n, at in
                         enumerate([ago(days=1), ago(days=8), ago(days=9)])]
                        + [event("lead_created", f"{n:032x}", f"{n:032x}", at) for n, at in
                           enumerate([ago(days=2), ago(days=30)])])
    store.leads.collection.insert_many([{"_id": f"{n:032x}", "wa_id": "x", "source": "whatsapp"} for n in range(2)])
    store.sessions.collection.insert_many([
        {"wa_id": f"3460000000{n}", "conversation_id": f"{n:032x}", "last_inbound_at": at}
        for n, at in enumerate([ago(hours=1), ago(days=2), ago(days=10)])
    ])
    inbound = [{"direction": "inbound", "status": "answered", "created_at": at}
               for at in (ago(hours=2), ago(days=3), ago(days=10), ago(days=11))]
    answers = [{"direction": "outbound", "kind": "answer", "part": 0, "status": "delivered", "outcome": outcome,
                "received_at": ago(days=1), "sent_at": ago(days=1) + timedelta(seconds=seconds), "created_at": ago(days=1)}
               for seconds, outcome in [(1, "answered"), (2, "answered"), (3, "answered"), (4, "unknown"), (10, "answered")]]
    failures = [{"direction": "outbound", "kind": kind, "part": 1, "status": status, "created_at": ago(days=1), **code}
                for kind, status, code in [("answer", "failed", {"error_code": 63016}), ("answer", "failed", {"error_code": 63016}),
                                           ("answer", "undelivered", {"error_code": 30008}), ("notice", "failed", {}),
                                           ("answer", "unconfirmed", {})]]
    seeded = inbound + answers + failures
    store.messages.collection.insert_many([dict(m, dedup_key=f"seed:{n}") for n, m in enumerate(seeded)])

    response = client.get(f"{W}/stats", headers=ADMIN)

    assert response.status_code == 200
    body = response.get_json()
    assert body["conversations"] == {"total": 4, "open": 2, "handoff": 1, "active_24h": 1, "active_7d": 2}
    assert body["handoffs"] == {"requested": 3, "requested_7d": 1, "in_progress": 1}
    assert body["leads"] == {"total": 2, "created_7d": 1}
    assert body["messages"] == {
        "inbound": 4, "outbound": 10, "inbound_24h": 1, "inbound_7d": 2,
        "answers": {"answered": 4, "unknown": 1},
        "response_seconds_7d": {"count": 5, "average": 4.0, "p95": 10.0},
        "failed_by_error_code": {"63016": 2, "30008": 1, "none": 1},
        "unconfirmed": 1,
    }


def test_totals_are_rolled_up_once_and_stay_exact(client, store):
    """Messages from before yesterday are counted into the roll-up by the first stats call, once,
    however many calls follow, even two from the same reading at once; later ones are counted live."""
    now = datetime.now(timezone.utc)
    old = [{"direction": "inbound", "status": "answered", "created_at": now - timedelta(days=d)} for d in (3, 4, 40)]
    old.append({"direction": "outbound", "kind": "answer", "part": 0, "outcome": "unknown", "status": "delivered",
                "created_at": now - timedelta(days=3)})
    store.messages.collection.insert_many([dict(m, dedup_key=f"old:{n}") for n, m in enumerate(old)])

    first = client.get(f"{W}/stats", headers=ADMIN).get_json()["messages"]
    rolled = store.stats_rollup.get()
    assert (rolled["inbound"], rolled["outbound"], rolled["answers"]) == (3, 1, {"unknown": 1})
    assert store.stats_rollup.advance({"until": None}, rolled["until"], {"inbound": 3, "outbound": 1, "answers": {}}) is False
    assert store.stats_rollup.advance({**rolled, "until": now - timedelta(days=9)}, rolled["until"],
                                      {"inbound": 3, "outbound": 1, "answers": {}}) is False
    signed_post(client, inbound_form("hola"))
    second = client.get(f"{W}/stats", headers=ADMIN).get_json()["messages"]

    assert (first["inbound"], first["outbound"], first["answers"]) == (3, 1, {"unknown": 1})
    assert (second["inbound"], second["outbound"]) == (4, 1) and store.stats_rollup.get() == rolled


def test_stats_of_an_empty_database_are_zeros(client):
    body = client.get(f"{W}/stats", headers=ADMIN).get_json()
    assert body["conversations"] == {"total": 0, "open": 0, "handoff": 0, "active_24h": 0, "active_7d": 0}
    assert body["handoffs"] == {"requested": 0, "requested_7d": 0, "in_progress": 0}
    assert body["leads"] == {"total": 0, "created_7d": 0}
    assert body["messages"]["response_seconds_7d"] == {"count": 0, "average": None, "p95": None}
    assert body["messages"]["inbound"] == body["messages"]["outbound"] == 0


def test_conversations_are_listed_newest_first_filtered_and_paginated(client, store):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    store.conversations.collection.insert_many([
        {"_id": f"{n:032x}", "wa_id": f"3460000{n:04d}", "status": "closed" if n % 3 == 0 else "open",
         "started_at": start + timedelta(minutes=n)} for n in range(25)
    ])

    first = client.get(f"{W}/conversations?per_page=10", headers=ADMIN).get_json()
    third = client.get(f"{W}/conversations?per_page=10&page=3", headers=ADMIN).get_json()
    closed = client.get(f"{W}/conversations?status=closed&per_page=100", headers=ADMIN).get_json()

    assert first["total"] == 25 and [c["id"] for c in first["conversations"]] == [f"{n:032x}" for n in range(24, 14, -1)]
    assert [c["id"] for c in third["conversations"]] == [f"{n:032x}" for n in range(4, -1, -1)]
    assert closed["total"] == 9 and {c["status"] for c in closed["conversations"]} == {"closed"}
    for bad in ("status=lost", "page=0", "per_page=101", "page=x", "page=٣"):
        response = client.get(f"{W}/conversations?{bad}", headers=ADMIN)
        assert response.status_code == 400 and response.get_json()["error"]


def test_a_conversation_shows_its_messages_with_delivery_statuses(client, store, worker, fake_twilio):
    signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?"))
    worker.run_until_idle()
    (conversation,) = client.get(f"{W}/conversations", headers=ADMIN).get_json()["conversations"]

    detail = client.get(f"{W}/conversations/{conversation['id']}", headers=ADMIN).get_json()

    assert detail["wa_id"] == "34600111222" and detail["status"] == "open"
    question, *reply = detail["messages"]
    assert question["direction"] == "inbound" and question["status"] == "answered" and "fibra" in question["body"]
    assert reply and all(m["direction"] == "outbound" and m["status"] == "queued" and m["external_id"] for m in reply)
    assert [m["body"] for m in reply] == [m["body"] for m in fake_twilio.sent_messages()]
    assert client.get(f"{W}/conversations/not-an-id", headers=ADMIN).status_code == 404


@pytest.mark.parametrize("end", ["close", "reset"])
def test_closing_or_resetting_makes_the_next_message_start_a_new_conversation(client, store, worker, end):
    signed_post(client, inbound_form("hola"))
    worker.run_until_idle()
    (first,) = store.conversations.collection.find()
    if end == "close":
        response = client.post(f"{W}/conversations/{first['_id']}/close", headers=ADMIN)
        assert response.get_json() == {"id": first["_id"], "status": "closed", "already_closed": False}
        again = client.post(f"{W}/conversations/{first['_id']}/close", headers=ADMIN)
        assert again.status_code == 200 and again.get_json()["already_closed"] is True
    else:
        response = client.delete(f"{W}/sessions/whatsapp:+34600111222", headers=ADMIN)
        assert response.get_json() == {"wa_id": "34600111222", "ended_conversation": first["_id"],
                                       "ended_conversations": [first["_id"]]}
        assert client.delete(f"{W}/sessions/34600111222", headers=ADMIN).status_code == 404

    signed_post(client, inbound_form("vuelvo a escribir"))
    worker.run_until_idle()

    statuses = {c["_id"]: c["status"] for c in store.conversations.collection.find()}
    second = store.sessions.collection.find_one()["conversation_id"]
    assert statuses == {first["_id"]: "closed", second: "open"}
    latest = store.messages.collection.find_one({"body": "vuelvo a escribir"})
    assert latest["conversation_id"] == second
