"""Outbound faults against the fake Twilio: busy or failing Twilio is retried with backoff (never
sooner than its Retry-After), permanent refusals are not, a timeout is never retried (it may have
been sent), and whatever happens the customer gets each part at most once, in order."""
from __future__ import annotations

import pytest

from tests.conftest import inbound_form, signed_post, work_until_done

QUESTION = "a qué hora abre la tienda?"


@pytest.fixture
def settings_overrides(settings_overrides):
    return dict(settings_overrides, send_retry_base_seconds=0.05, send_retry_max_seconds=0.2,
                send_max_attempts=4, twilio_timeout_seconds=1)


def ask_and_work(client, worker, question: str = QUESTION, seconds: float = 10) -> None:
    """Post a question and run the worker until nothing is due or postponed (bounded in time)."""
    assert signed_post(client, inbound_form(question)).status_code == 200
    work_until_done(worker, seconds)


def reply(store) -> dict:
    (message,) = store.messages.collection.find({"direction": "outbound"})
    return message


def message_posts(fake_twilio) -> list:
    return [r for r in fake_twilio.requests if r.method == "POST" and r.path.endswith("/Messages.json")]


def test_429_is_retried_after_twilios_retry_after(client, store, worker, fake_twilio):
    fake_twilio.fail_next(429, code=20429, retry_after=1)

    ask_and_work(client, worker)

    first, second = message_posts(fake_twilio)
    assert second.at - first.at >= 0.99  # waited as Twilio asked, not the 0.05 s backoff
    assert len(fake_twilio.sent_messages()) == 1
    stored = reply(store)
    assert (stored["status"], stored["attempts"]) == ("queued", 1)
    assert stored["last_error"]["error_code"] == 20429


def test_server_errors_are_retried_until_one_attempt_goes_through(client, store, worker, fake_twilio):
    fake_twilio.fail_next(500, times=2)

    ask_and_work(client, worker)

    assert len(message_posts(fake_twilio)) == 3
    assert len(fake_twilio.sent_messages()) == 1
    assert reply(store)["status"] == "queued"
    assert fake_twilio.contract_violations == []


@pytest.mark.parametrize(
    ("fault", "posts", "recorded"),
    [
        (dict(status=400, code=63016), 1, {"error_code": 63016, "attempts": 1}),  # permanent: never retried
        (dict(status=503, times=10), 4, {"http_status": 503, "attempts": 4}),  # SEND_MAX_ATTEMPTS reached
    ],
)
def test_a_part_that_cannot_be_sent_is_recorded_as_failed(client, store, worker, fake_twilio, fault, posts, recorded):
    fake_twilio.fail_next(**fault)

    ask_and_work(client, worker)

    assert len(message_posts(fake_twilio)) == posts
    stored = reply(store)
    assert stored["status"] == "failed" and {key: stored[key] for key in recorded} == recorded


def test_a_timeout_is_not_retried_because_twilio_may_have_sent_it(client, store, worker, fake_twilio):
    fake_twilio.delay_next(3)  # longer than TWILIO_TIMEOUT_SECONDS

    ask_and_work(client, worker)

    assert len(message_posts(fake_twilio)) == 1
    stored = reply(store)
    assert stored["status"] == "unconfirmed" and "in time" in stored["error_message"]


def test_later_messages_wait_for_an_earlier_reply_being_retried(client, store, worker, fake_twilio):
    fake_twilio.fail_next(429, retry_after=1)
    assert signed_post(client, inbound_form(QUESTION)).status_code == 200
    worker.run_until_idle()  # the first reply is now waiting for its retry

    ask_and_work(client, worker, "y los domingos?")

    bodies = [m["body"] for m in fake_twilio.sent_messages()]
    answers = list(store.messages.collection.find({"direction": "outbound"}).sort("created_at", 1))
    assert bodies == [a["body"] for a in answers] and len(bodies) == 2  # each once, in order
