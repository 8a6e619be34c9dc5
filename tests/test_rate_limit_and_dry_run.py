"""Per-customer rate limit (a limited message is still recorded; one notice per window) and the
dry-run mode used when Twilio is not configured."""
from __future__ import annotations

import pytest

from tests.conftest import inbound_form, signed_post


@pytest.fixture
def settings_overrides(settings_overrides):
    return dict(settings_overrides, rate_limit_per_wa_id="3 per minute")


def test_limited_messages_are_recorded_and_get_one_notice(client, store, worker, fake_twilio):
    for n in range(6):
        assert signed_post(client, inbound_form(f"pregunta número {n} sobre la fibra")).status_code == 200
    other = signed_post(client, inbound_form("cuánto cuesta la fibra de 300?", sender="whatsapp:+34600999888"))
    assert other.status_code == 200
    worker.run_until_idle()

    statuses = [m["status"] for m in store.messages.collection.find({"direction": "inbound", "wa_id": "34600111222"})]
    assert statuses == ["answered"] * 3 + ["rate_limited"] * 3
    last_limited = store.messages.collection.find_one({"status": "rate_limited"}, sort=[("created_at", -1)])
    # a limited message is never seen by the worker: the webhook itself records it on the session
    assert store.sessions.collection.find_one({"wa_id": "34600111222"})["last_inbound_at"] == last_limited["created_at"]
    to_customer = [m["body"] for m in fake_twilio.sent_messages() if m["to"] == "whatsapp:+34600111222"]
    notices = [body for body in to_customer if "muchos mensajes" in body]
    assert len(notices) == 1
    assert len(to_customer) == 2  # the three allowed arrived together and got one answer, plus the notice
    # another customer is not affected
    assert [m["status"] for m in store.messages.collection.find({"wa_id": "34600999888"})][0] == "answered"


@pytest.fixture
def dry_run_overrides(settings_overrides):
    return dict(settings_overrides, twilio_account_sid="", twilio_whatsapp_from="")


def test_without_twilio_credentials_replies_are_stored_not_sent(dry_run_overrides, embedder, fake_twilio):
    from tests.conftest import make_assistant
    from webapp import create_app
    from webapp.config import load_settings
    from webapp.channels import build_channels
    from webapp.worker import ReplyWorker

    settings = load_settings(**dry_run_overrides)
    app = create_app(settings)
    store = app.extensions["whatsapp_assistant"].store
    worker = ReplyWorker(store, make_assistant(settings, embedder), build_channels(settings, store.sessions), settings)

    assert signed_post(app.test_client(), inbound_form("cuánto cuesta la fibra de 600?")).status_code == 200
    worker.run_until_idle()

    reply = store.messages.collection.find_one({"direction": "outbound"})
    assert reply["status"] == "dry_run" and "32 €" in reply["body"]
    assert fake_twilio.requests == []
    store.client.drop_database(store.db.name)
