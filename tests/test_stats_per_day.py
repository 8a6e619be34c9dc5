"""The stats' last 7 days one by one (`webapp.admin.per_day`): messages in and out, questions and
their outcomes, response times (p50, p95), handoffs, leads and ratings, each on its UTC day."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.conftest import ADMIN_TOKEN
from webapp.admin import RECENT, per_day
from webapp.db.events import event

NOW = datetime(2026, 3, 12, 15, 0, tzinfo=timezone.utc)
NEW_FIELDS = ("inbound", "outbound", "reply_seconds_p50", "reply_seconds_p95", "handoffs", "leads")


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=timezone.utc)


def inbound(created: datetime) -> dict:
    return {"direction": "inbound", "status": "answered", "created_at": created}


def answer(created: datetime, outcome: str = "answered", seconds: float | None = None) -> dict:
    """The first part of an answer queued at `created`, sent `seconds` after the customer's message
    was received (then), or not sent yet."""
    sent = {"received_at": created, "sent_at": created + timedelta(seconds=seconds)} if seconds is not None else {}
    return {"direction": "outbound", "kind": "answer", "part": 0, "outcome": outcome,
            "status": "delivered" if sent else "pending", "created_at": created, **sent}


def seed_messages(store, messages: list[dict]) -> None:
    store.messages.collection.insert_many([dict(m, dedup_key=f"seed:{n}") for n, m in enumerate(messages)])


def seed_events(store, events: list[tuple[str, datetime, dict]]) -> None:
    store.events.record([event(type_, f"e{n}", "c" * 32, when, **details)
                         for n, (type_, when, details) in enumerate(events)])


def test_each_day_counts_messages_response_times_handoffs_and_leads(store):
    seed_messages(store, [
        inbound(at(12)), inbound(at(12)), inbound(at(12)), inbound(at(12, 0, 0, 0)),
        answer(at(12), seconds=1), answer(at(12), seconds=2), answer(at(12), "unknown", seconds=4),
        answer(at(12), "fallback", seconds=10),
        {"direction": "outbound", "kind": "answer", "part": 1, "status": "delivered", "created_at": at(12)},
        inbound(at(11, 23, 59, 59)), inbound(at(11)),
        answer(at(11), seconds=1.25), answer(at(11), seconds=7),
        answer(at(11, 23, 59, 58), seconds=3),  # queued on the 11th (its day), sent on the 12th
        inbound(at(10)), answer(at(10), "unknown"),  # not sent: no response time that day
        inbound(at(5)), answer(at(5), seconds=1),  # before the 7 days
    ])
    seed_events(store, [
        ("handoff_requested", at(12), {}), ("handoff_requested", at(12, 0, 0, 0), {}),
        ("handoff_requested", at(10), {}), ("handoff_requested", at(5), {}), ("handoff_released", at(12), {}),
        ("lead_created", at(12), {}), ("lead_created", at(11), {}),
        ("answer_rated", at(12), {"rating": "up"}), ("answer_rated", at(11), {"rating": "down"}),
    ])

    days = per_day(store, NOW, store.messages.per_day(NOW - RECENT))

    assert {day["day"]: tuple(day[name] for name in NEW_FIELDS) for day in days} == {
        "2026-03-12": (4, 5, 2.0, 10.0, 2, 1),
        "2026-03-11": (2, 3, 3.0, 7.0, 0, 1),
        "2026-03-10": (1, 1, None, None, 1, 0),
        **{f"2026-03-0{d}": (0, 0, None, None, 0, 0) for d in range(6, 10)},
    }
    assert [day["day"] for day in days] == [f"2026-03-{d:02}" for d in range(12, 5, -1)]
    today, yesterday = days[0], days[1]
    assert (today["questions"], today["answered"], today["unknown"], today["answered_rate"]) == (4, 3, 1, 0.75)
    assert (today["thumbs_up"], today["thumbs_down"], yesterday["thumbs_down"], yesterday["questions"]) == (1, 0, 1, 3)


def test_the_stats_api_shows_the_new_fields_for_today(client, store):
    now = datetime.now(timezone.utc)
    seed_messages(store, [inbound(now), answer(now, seconds=0)])  # sent the same day, whatever the time
    seed_events(store, [("handoff_requested", now, {}), ("lead_created", now, {})])

    response = client.get("/api/v1/whatsapp/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    (today,) = [day for day in response.get_json()["days"] if day["day"] == now.date().isoformat()]
    assert tuple(today[name] for name in NEW_FIELDS) == (1, 1, 0.0, 0.0, 1, 1)
