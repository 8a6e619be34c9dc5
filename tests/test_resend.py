"""Re-sending a reply Twilio never delivered (`POST …/messages/<id>/resend`, and `scripts/admin.py
resend`): only the parts that failed, as new messages, in order, once, and only inside the
customer's 24-hour window."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import ADMIN_TOKEN, inbound_form, llm_overrides, long_answer, signed_post

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
W = "/api/v1/whatsapp"


def message_posts(fake_twilio) -> list:
    return [r for r in fake_twilio.requests if r.method == "POST" and r.path.endswith("/Messages.json")]


def failed_reply(client, store, worker, fake_twilio) -> list[dict]:
    """A one-part answer whose send Twilio refused for good; its parts as stored."""
    fake_twilio.fail_next(400, code=21610, message="Attempt to send to unsubscribed recipient")
    signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?"))
    worker.run_until_idle()
    parts = list(store.messages.collection.find({"direction": "outbound"}).sort("part", 1))
    assert [p["status"] for p in parts] == ["failed"]
    return parts


def test_a_failed_reply_is_sent_again_once_as_a_new_message(client, store, worker, fake_twilio):
    (failed,) = failed_reply(client, store, worker, fake_twilio)

    response = client.post(f"{W}/messages/{failed['_id']}/resend", headers=ADMIN)
    again = client.post(f"{W}/messages/{failed['_id']}/resend", headers=ADMIN)
    worker.run_until_idle()

    assert response.status_code == 202
    (queued,) = response.get_json()["queued"]
    assert queued["kind"] == "resend" and queued["resend_of"] == str(failed["_id"]) and queued["status"] == "pending"
    assert again.status_code == 409 and "nothing to re-send" in again.get_json()["error"]
    posts = message_posts(fake_twilio)
    assert len(posts) == 2 and posts[0].param("Body") == posts[1].param("Body") == failed["body"]
    assert len(fake_twilio.sent_messages()) == 1
    original = store.messages.get(failed["_id"])
    assert original["status"] == "failed" and original["error_code"] == 21610 and original["resent_at"]
    copy = store.messages.collection.find_one({"resend_of": failed["_id"]})
    assert copy["status"] == "queued" and copy["external_id"] == fake_twilio.sent_messages()[0]["sid"]
    assert fake_twilio.contract_violations == []


@pytest.fixture
def settings_overrides(settings_overrides, fake_openai):
    return llm_overrides(settings_overrides, fake_openai)


def test_only_the_parts_that_failed_are_sent_again_in_order(client, store, worker, fake_twilio, fake_openai):
    fake_openai.reply = long_answer(5000)  # three parts
    fake_twilio.delay_next(0)  # the first part goes through
    fake_twilio.fail_next(400, code=21610)  # the second is refused, so the third is not sent
    business_number = "whatsapp:+14155230000"  # a second sender of the account: every part goes out from it
    signed_post(client, inbound_form("explícame todas las tarifas de fibra con detalle", To=business_number))
    worker.run_until_idle()
    parts = list(store.messages.collection.find({"direction": "outbound"}).sort("part", 1))
    assert [p["status"] for p in parts] == ["queued", "failed", "failed"]
    assert parts[2]["error_message"] == "an earlier part failed"

    response = client.post(f"{W}/messages/{parts[0]['_id']}/resend", headers=ADMIN)  # any part names the reply
    worker.run_until_idle()

    assert [m["resend_of"] for m in response.get_json()["queued"]] == [str(parts[1]["_id"]), str(parts[2]["_id"])]
    sent = [m["body"] for m in fake_twilio.sent_messages()]
    assert sent == [p["body"] for p in parts]  # the customer has the whole answer, in order, once
    assert {m["from_"] for m in fake_twilio.sent_messages()} == {business_number}


def test_outside_the_24_hour_window_nothing_is_queued(client, store, worker, fake_twilio):
    (failed,) = failed_reply(client, store, worker, fake_twilio)
    long_ago = datetime.now(timezone.utc) - timedelta(hours=25)
    store.messages.collection.update_many({"direction": "inbound"}, {"$set": {"created_at": long_ago}})
    store.sessions.collection.update_many({}, {"$set": {"last_inbound_at": long_ago}})

    response = client.post(f"{W}/messages/{failed['_id']}/resend", headers=ADMIN)

    assert response.status_code == 409 and "63016" in response.get_json()["error"]
    assert store.messages.collection.count_documents({"kind": "resend"}) == 0


def test_what_cannot_be_resent_is_refused_clearly(client, store, worker, fake_twilio):
    signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?"))
    worker.run_until_idle()
    delivered = store.messages.collection.find_one({"direction": "outbound"})
    inbound = store.messages.collection.find_one({"direction": "inbound"})
    client.post(f"{W}/send-test", headers=ADMIN, data={"to": "whatsapp:+34600111222", "text": "prueba"})
    test_message = store.messages.collection.find_one({"kind": "test"})

    for message_id, status, words in [(delivered["_id"], 409, "nothing to re-send"), (inbound["_id"], 404, "no such"),
                                      (test_message["_id"], 400, "send-test"), ("0" * 24, 404, "no such"),
                                      ("not-an-id", 404, "no such")]:
        response = client.post(f"{W}/messages/{message_id}/resend", headers=ADMIN)
        assert response.status_code == status and words in response.get_json()["error"], message_id
    assert client.post(f"{W}/messages/{delivered['_id']}/resend").status_code == 401
    assert store.messages.collection.count_documents({"kind": "resend"}) == 0
