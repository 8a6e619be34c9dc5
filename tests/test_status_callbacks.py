"""Delivery status callbacks: our sends ask Twilio for them, and a report only moves a message
forward, whatever order reports arrive in, even before we stored the message's SID."""
from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from bson import ObjectId

from tests.conftest import inbound_form, signed_post

PUBLIC = "https://bot.example.com"
STATUS = "/api/v1/whatsapp/status"


@pytest.fixture
def settings_overrides(settings_overrides):
    return dict(settings_overrides, public_base_url=PUBLIC)


def report(client, reference, sid: str, status: str, error_code: str = "", signed: bool = True):
    path = f"{STATUS}?ref={reference}"
    form = {"MessageSid": sid, "MessageStatus": status, **({"ErrorCode": error_code} if error_code else {})}
    if not signed:
        return client.post(path, data=form)
    return signed_post(client, form, signed_url=PUBLIC + path, path=path)


def sent_reply(client, store, worker) -> dict:
    assert signed_post(client, inbound_form("a qué hora abre la tienda?"), PUBLIC + "/api/v1/whatsapp/webhook").status_code == 200
    worker.run_until_idle()
    (reply,) = store.messages.collection.find({"direction": "outbound"})
    return reply


def test_replies_ask_twilio_for_status_reports_tagged_with_our_message_id(client, store, worker, fake_twilio):
    reply = sent_reply(client, store, worker)

    (request,) = [r for r in fake_twilio.requests if r.method == "POST"]
    callback = urlsplit(request.form["StatusCallback"][0])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == PUBLIC + STATUS
    assert parse_qs(callback.query) == {"ref": [str(reply["_id"])]}
    assert fake_twilio.contract_violations == []  # Twilio's own spec accepts it


def test_status_only_moves_forward_whatever_order_reports_arrive_in(client, store, worker):
    reply = sent_reply(client, store, worker)
    assert reply["status"] == "queued"

    for status in ("sent", "read", "delivered", "sent"):  # the last two are late
        assert report(client, reply["_id"], reply["external_id"], status).status_code == 204

    stored = store.messages.collection.find_one({"_id": reply["_id"]})
    assert stored["status"] == "read"


def test_a_report_that_beats_the_send_result_is_kept(store, client):
    now = datetime.now(timezone.utc)
    message_id = store.messages.insert_outbound(
        {"dedup_key": "test:early", "kind": "test", "wa_id": "34600111222", "body": "hola",
         "status": "submitting", "created_at": now, "updated_at": now}
    )
    sid = "SM" + "a" * 32

    assert report(client, message_id, sid, "sent").status_code == 204
    store.messages.record_send(message_id, "queued", now, external_id=sid)  # the API call returns only now

    stored = store.messages.collection.find_one({"_id": message_id})
    assert (stored["status"], stored["external_id"]) == ("sent", sid)


def test_undelivered_report_records_twilio_error_code(client, store, worker):
    reply = sent_reply(client, store, worker)

    assert report(client, reply["_id"], reply["external_id"], "undelivered", "63016").status_code == 204

    stored = store.messages.collection.find_one({"_id": reply["_id"]})
    assert (stored["status"], stored["error_code"]) == ("undelivered", 63016)


def test_reports_for_messages_that_are_not_ours_are_refused(client, store, worker):
    reply = sent_reply(client, store, worker)

    assert report(client, ObjectId(), reply["external_id"], "read").status_code == 404
    assert report(client, reply["_id"], "SM" + "b" * 32, "read").status_code == 404  # another message's SID
    assert store.messages.collection.find_one({"_id": reply["_id"]})["status"] == "queued"


def test_unsigned_reports_are_refused(client, store, worker):
    reply = sent_reply(client, store, worker)

    assert report(client, reply["_id"], reply["external_id"], "read", signed=False).status_code == 403
    assert store.messages.collection.find_one({"_id": reply["_id"]})["status"] == "queued"


@pytest.mark.parametrize(
    ("reference", "sid", "status", "error_code", "field"),
    [
        ("nope", "SM" + "a" * 32, "read", "", "ref"),
        (ObjectId(), "12345", "read", "", "MessageSid"),
        (ObjectId(), "SM" + "a" * 32, "", "", "MessageStatus"),
        (ObjectId(), "SM" + "a" * 32, "Read!", "", "MessageStatus"),
        (ObjectId(), "SM" + "a" * 32, "failed", "63O16", "ErrorCode"),
    ],
)
def test_malformed_reports_get_a_clear_error(client, reference, sid, status, error_code, field):
    response = report(client, reference, sid, status, error_code)

    assert response.status_code == 400
    assert response.get_json()["field"] == field
