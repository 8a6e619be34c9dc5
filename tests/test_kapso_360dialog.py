"""The providers that re-sell Meta's Cloud API, as channels: Kapso (its own signed events, one or a
batch, and Meta's deliveries forwarded) and 360dialog (Meta's deliveries, unsigned by it, so they
must carry our secret), each answered through its own Meta-compatible API, checked against Meta's
OpenAPI document by the fake."""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest

from scripts.chat import meta_delivery
from tests.conftest import D360_API_KEY, KAPSO_API_KEY

KAPSO_SECRET = "kapso-webhook-secret-0123"
KAPSO_NUMBER = "647015955153740"
D360_SECRET = "d360-webhook-secret-4567"
CUSTOMER = "56961567267"
ADMIN = {"Authorization": "Bearer test-admin-token-9876543210"}


@pytest.fixture
def settings_overrides(settings_overrides, fake_kapso, fake_360dialog):
    return dict(settings_overrides, kapso_webhook_secret=KAPSO_SECRET, kapso_api_key=KAPSO_API_KEY,
                kapso_phone_number_id=KAPSO_NUMBER, kapso_api_base=fake_kapso.base_url + "/meta/whatsapp/v24.0",
                d360_webhook_secret=D360_SECRET, d360_api_key=D360_API_KEY, d360_api_base=fake_360dialog.base_url)


def kapso_event(text: str, wamid: str | None = None, sender: str = CUSTOMER) -> dict:
    """A whatsapp.message.received event as Kapso sends it (its current format)."""
    return {"message": {"id": wamid or f"wamid.{uuid.uuid4().hex}", "timestamp": "1730092801", "type": "text",
                        "text": {"body": text},
                        "kapso": {"direction": "inbound", "status": "received", "origin": "cloud_api",
                                  "phone_number": f"+{sender}", "phone_number_id": KAPSO_NUMBER}},
            "conversation": {"id": "conv_123", "phone_number": f"+{sender}", "status": "active"},
            "is_new_conversation": False, "phone_number_id": KAPSO_NUMBER}


def kapso_post(client, payload: dict, event: str = "whatsapp.message.received", batch: bool = False,
               secret: str = KAPSO_SECRET):
    body = json.dumps(payload).encode()
    headers = {"X-Webhook-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
               "X-Webhook-Event": event, **({"X-Webhook-Batch": "true"} if batch else {})}
    return client.post("/api/v1/kapso/webhook", data=body, content_type="application/json", headers=headers)


def d360_post(client, delivery: dict, secret: str | None = D360_SECRET, in_path: bool = False):
    path = "/api/v1/360dialog/webhook" + (f"/{secret}" if in_path else "")
    headers = {"X-Webhook-Secret": secret} if secret and not in_path else {}
    return client.post(path, data=json.dumps(delivery), content_type="application/json", headers=headers)


# -- Kapso -------------------------------------------------------------------------------------------


def test_a_kapso_event_is_answered_through_kapsos_api(client, store, worker, fake_kapso):
    event = kapso_event("¿cuánto cuesta la fibra de 600?")
    assert kapso_post(client, event).get_json() == {"messages": 1, "statuses": 0, "skipped": 0}
    worker.run_until_idle()

    stored = store.messages.find_inbound(event["message"]["id"])
    assert (stored["channel"], stored["business"], stored["wa_id"]) == ("kapso", KAPSO_NUMBER, CUSTOMER)
    (sent,) = fake_kapso.sent_messages()
    assert (sent["phone_number_id"], sent["to"]) == (KAPSO_NUMBER, CUSTOMER) and "32 €" in sent["body"]
    assert [r.path for r in fake_kapso.requests] == [f"/meta/whatsapp/v24.0/{KAPSO_NUMBER}/messages"] * 2
    assert all(r.headers["x-api-key"] == KAPSO_API_KEY for r in fake_kapso.requests)
    assert fake_kapso.contract_violations == []


def test_a_kapso_batch_is_stored_in_order_and_answered_once(client, store, worker, fake_kapso):
    batch = {"type": "whatsapp.message.received", "batch": True,
             "data": [kapso_event(f"mensaje {n}", wamid=f"wamid.batch{n}") for n in range(3)]}
    assert kapso_post(client, batch, batch=True).get_json()["messages"] == 3
    stored = list(store.messages.collection.find({"direction": "inbound"}).sort("created_at", 1))
    assert [m["body"] for m in stored] == ["mensaje 0", "mensaje 1", "mensaje 2"]
    worker.run_until_idle()
    assert len(fake_kapso.sent_messages()) == 1


def test_metas_delivery_forwarded_by_kapso_is_taken_as_kapsos(client, store):
    delivery = meta_delivery(CUSTOMER, KAPSO_NUMBER, {"type": "text", "text": {"body": "hola"}})
    assert kapso_post(client, delivery).status_code == 200
    assert store.messages.collection.find_one({"direction": "inbound"})["channel"] == "kapso"


def test_kapsos_older_format_and_its_echoes(client, store):
    older = {"message": {"id": "550e8400-e29b-41d4-a716-446655440000", "message_type": "text", "content": "hola",
                         "direction": "inbound", "phone_number": f"+{CUSTOMER}"},
             "conversation": {"id": "660e8400", "phone_number": f"+{CUSTOMER}", "status": "active"}}
    echo = kapso_event("lo que mandamos nosotros")
    echo["message"]["kapso"]["direction"] = "outbound"
    assert kapso_post(client, older).get_json()["messages"] == 1
    assert kapso_post(client, echo).get_json()["messages"] == 0
    assert [m["body"] for m in store.messages.collection.find({"direction": "inbound"})] == ["hola"]


@pytest.mark.parametrize("secret", ["another-secret", None])
def test_a_kapso_event_not_signed_with_our_secret_is_refused(client, store, secret):
    if secret is None:
        response = client.post("/api/v1/kapso/webhook", json=kapso_event("hola"))
    else:
        response = kapso_post(client, kapso_event("hola"), secret=secret)
    assert response.status_code == 403 and store.messages.collection.count_documents({}) == 0


def test_kapso_status_events_move_our_reply_forward(client, store, worker, fake_kapso):
    assert kapso_post(client, kapso_event("hola")).status_code == 200
    worker.run_until_idle()
    reply = store.messages.collection.find_one({"direction": "outbound"})
    for event in ("whatsapp.message.read", "whatsapp.message.delivered"):
        status = {"message": {"id": reply["external_id"], "kapso": {"direction": "outbound"}},
                  "conversation": {"id": "conv_123"}}
        assert kapso_post(client, status, event=event).get_json()["statuses"] == 1
    assert store.messages.get(reply["_id"])["status"] == "read"
    assert kapso_post(client, {"conversation": {"id": "c"}}, event="whatsapp.conversation.ended").status_code == 200


# -- 360dialog ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("in_path", [False, True], ids=["secret header", "secret in the URL"])
def test_a_360dialog_delivery_is_answered_through_its_api(client, store, worker, fake_360dialog, in_path):
    delivery = meta_delivery(CUSTOMER, "106540352242922", {"type": "text", "text": {"body": "la fibra de 1 gb?"}})
    assert d360_post(client, delivery, in_path=in_path).get_json() == {"messages": 1, "statuses": 0, "skipped": 0}
    worker.run_until_idle()

    assert store.messages.collection.find_one({"direction": "inbound"})["channel"] == "360dialog"
    (sent,) = fake_360dialog.sent_messages()
    assert sent["to"] == CUSTOMER and "39 €" in sent["body"]
    assert {r.path for r in fake_360dialog.requests} == {"/messages"}  # no number in the path: the key names it
    assert all(r.headers["d360-api-key"] == D360_API_KEY for r in fake_360dialog.requests)
    assert fake_360dialog.contract_violations == []


@pytest.mark.parametrize("secret", [None, "wrong", ""])
def test_a_360dialog_delivery_without_our_secret_is_refused(client, store, secret):
    delivery = meta_delivery(CUSTOMER, "106540352242922", {"type": "text", "text": {"body": "hola"}})
    assert d360_post(client, delivery, secret=secret).status_code in (403, 404)
    assert d360_post(client, delivery, secret="wrong", in_path=True).status_code == 403
    assert store.messages.collection.count_documents({}) == 0


# -- both, with the others -----------------------------------------------------------------------------


def test_test_reports_kapso_and_360dialog(client):
    channels = client.get("/api/v1/whatsapp/test", headers=ADMIN).get_json()["channels"]
    assert channels["kapso"]["status"] == "ok" and channels["kapso"]["phone_number"]["verified_name"]
    assert channels["360dialog"] == {"status": "ok", "details": {
        "display_phone_number": "+1 555-078-3881", "verified_name": "Fibra Clara", "quality_rating": "GREEN",
        "code_verification_status": "VERIFIED", "id": ""}}


def test_diag_reports_kapso_and_360dialog_with_their_keys_masked(client, fake_kapso, fake_360dialog):
    response = client.get("/api/v1/whatsapp/diag", headers=ADMIN)
    assert response.status_code == 200
    channels = response.get_json()["channels"]
    assert channels["kapso"] == {"mode": "sending", "phone_number_id": KAPSO_NUMBER,
                                 "api": fake_kapso.base_url + "/meta/whatsapp/v24.0",
                                 "x-api-key": "****" + KAPSO_API_KEY[-4:]}
    assert channels["360dialog"] == {"mode": "sending", "phone_number_id": None, "api": fake_360dialog.base_url,
                                     "d360-api-key": "****" + D360_API_KEY[-4:]}
    for secret in (KAPSO_API_KEY, KAPSO_SECRET, D360_API_KEY, D360_SECRET):
        assert secret not in response.get_data(as_text=True)
