"""Meta's WhatsApp Cloud API as a channel, end to end: the webhook's verification and signature,
deliveries parsed (Meta's own examples among them), each message stored once and answered through
the Graph API (the fake checks every request against Meta's OpenAPI document), statuses moving
forward, refusals classified, and the Mexican/Argentine mobile digit."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from scripts.chat import meta_delivery
from tests.conftest import (META_APP_SECRET, META_PHONE_NUMBER_ID, META_VERIFY_TOKEN, SENDER, inbound_form,
                            meta_overrides, meta_post, signed_post)
from tests.fakes.fake_graph import load_spec

WEBHOOK = "/api/v1/meta/webhook"
CUSTOMER = "34600111222"
ADMIN = {"Authorization": "Bearer test-admin-token-9876543210"}
W = "/api/v1/whatsapp"


@pytest.fixture
def settings_overrides(settings_overrides, fake_graph):
    return meta_overrides(settings_overrides, fake_graph)


def text(body: str, sender: str = CUSTOMER, phone_number_id: str = META_PHONE_NUMBER_ID) -> dict:
    return meta_delivery(sender, phone_number_id, {"type": "text", "text": {"body": body}}, name="Ana")


def status(wamid: str, word: str, code: int | None = None) -> dict:
    report = {"id": wamid, "status": word, "timestamp": "1750263773", "recipient_id": CUSTOMER}
    if code:
        report["errors"] = [{"code": code, "title": "error"}]
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": META_PHONE_NUMBER_ID},
        "statuses": [report]}}]}]}


def answered(client, worker, delivery: dict) -> None:
    assert meta_post(client, delivery).status_code == 200
    worker.run_until_idle()


# -- the webhook: verification and signature -----------------------------------------------------


def test_verification_answers_the_challenge_only_for_our_token(client):
    ok = client.get(WEBHOOK, query_string={"hub.mode": "subscribe", "hub.verify_token": META_VERIFY_TOKEN,
                                           "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "1158201444" and ok.mimetype == "text/plain"
    for query in ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
                  {"hub.mode": "unsubscribe", "hub.verify_token": META_VERIFY_TOKEN, "hub.challenge": "1"},
                  {"hub.mode": "subscribe", "hub.challenge": "1"},
                  {"hub.mode": "subscribe", "hub.verify_token": META_VERIFY_TOKEN, "hub.challenge": "<script>"},
                  {}):
        assert client.get(WEBHOOK, query_string=query).status_code == 403, query


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=abc", "garbage"])
def test_an_unsigned_or_forged_delivery_is_refused_and_nothing_is_stored(client, store, signature):
    body = json.dumps(text("hola")).encode()
    headers = {} if signature is None else {"X-Hub-Signature-256": signature}
    response = client.post(WEBHOOK, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 403
    assert store.messages.collection.count_documents({}) == 0


def test_a_delivery_signed_with_another_secret_or_altered_is_refused(client, store):
    assert meta_post(client, text("hola"), secret="another-app-secret").status_code == 403
    delivery = text("hola")
    body = json.dumps(delivery).encode()
    from scripts.chat import meta_signature
    altered = body.replace(b"hola", b"hola!")
    response = client.post(WEBHOOK, data=altered, content_type="application/json",
                           headers={"X-Hub-Signature-256": meta_signature(META_APP_SECRET, body)})
    assert response.status_code == 403 and store.messages.collection.count_documents({}) == 0


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"object": "page", "entry": []}', b'{"object": '
                                  b'"whatsapp_business_account", "entry": 5}', b"[" * 5000 + b"]" * 5000])
def test_a_signed_body_that_is_not_a_whatsapp_delivery_is_400(client, store, body):
    from scripts.chat import meta_signature
    response = client.post(WEBHOOK, data=body, content_type="application/json",
                           headers={"X-Hub-Signature-256": meta_signature(META_APP_SECRET, body)})
    assert response.status_code == 400 and response.get_json()["error"]
    assert store.messages.collection.count_documents({}) == 0


# -- messages in, answers out ----------------------------------------------------------------------


def test_a_customer_message_is_answered_through_the_graph_api(client, store, worker, fake_graph):
    delivery = text("¿cuánto cuesta la fibra de 600?")
    answered(client, worker, delivery)

    inbound = store.messages.collection.find_one({"direction": "inbound"})
    wamid = delivery["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert (inbound["channel"], inbound["business"], inbound["external_id"]) == ("meta", META_PHONE_NUMBER_ID, wamid)
    assert inbound["profile_name"] == "Ana" and inbound["wa_id"] == CUSTOMER
    (sent,) = fake_graph.sent_messages()
    assert (sent["phone_number_id"], sent["to"]) == (META_PHONE_NUMBER_ID, CUSTOMER) and "32 €" in sent["body"]
    assert fake_graph.read_receipts() == [{"messaging_product": "whatsapp", "status": "read", "message_id": wamid,
                                           "typing_indicator": {"type": "text"}}]
    posts = [r.path for r in fake_graph.requests if r.method == "POST"]
    assert posts == [f"/v23.0/{META_PHONE_NUMBER_ID}/messages"] * 2  # the read receipt first, then the answer
    reply = store.messages.collection.find_one({"direction": "outbound"})
    assert (reply["channel"], reply["external_id"], reply["status"]) == ("meta", sent["id"], "accepted")
    assert fake_graph.contract_violations == []


def test_a_reply_goes_out_from_the_number_the_customer_wrote_to(client, store, worker, fake_graph):
    answered(client, worker, text("hola", phone_number_id="987654321"))
    (sent,) = fake_graph.sent_messages()
    assert sent["phone_number_id"] == "987654321"


def test_a_long_answer_goes_out_in_parts_of_at_most_4096_characters(client, store, worker, fake_graph):
    from webapp.formatting import format_reply
    parts = format_reply("Una frase larga sobre la fibra. " * 300, 4096)
    assert len(parts) == 1 and len(parts[0]) <= 4000  # the reply cap comes first: one Meta message
    answered(client, worker, text("hola"))
    assert all(len(m["body"]) <= 4096 for m in fake_graph.sent_messages())


def test_the_same_delivery_three_times_at_once_is_stored_and_answered_once(app, store, worker, fake_graph):
    delivery = text("¿cuánto cuesta la fibra de 600?")
    with ThreadPoolExecutor(max_workers=3) as pool:
        statuses = list(pool.map(lambda _: meta_post(app.test_client(), delivery).status_code, range(3)))
    worker.run_until_idle()
    assert statuses == [200] * 3
    assert store.messages.collection.count_documents({"direction": "inbound"}) == 1
    assert len(fake_graph.sent_messages()) == 1


def test_several_messages_in_one_delivery_are_stored_in_order(client, store, worker, fake_graph):
    delivery = text("hola")
    value = delivery["entry"][0]["changes"][0]["value"]
    value["messages"] = [dict(value["messages"][0], id=f"wamid.{n}", text={"body": f"mensaje {n}"})
                         for n in range(5)]
    assert meta_post(client, delivery).get_json() == {"messages": 5, "statuses": 0, "skipped": 0}
    stored = list(store.messages.collection.find({"direction": "inbound"}).sort("created_at", 1))
    assert [m["body"] for m in stored] == [f"mensaje {n}" for n in range(5)]
    worker.run_until_idle()
    assert len(fake_graph.sent_messages()) == 1  # answered together, as one question


def test_a_delivery_mixing_valid_and_malformed_messages_keeps_the_valid_ones(client, store):
    delivery = text("hola")
    value = delivery["entry"][0]["changes"][0]["value"]
    good = value["messages"][0]
    value["messages"] = [good, {"from": "not a number", "id": "wamid.x", "type": "text"}, "junk",
                         {"from": CUSTOMER, "type": "text", "text": {"body": "sin id"}},
                         dict(good, id="wamid.second", text={"body": "x" * 5000})]
    response = meta_post(client, delivery)
    assert response.status_code == 200 and response.get_json() == {"messages": 1, "statuses": 0, "skipped": 4}
    assert [m["body"] for m in store.messages.collection.find({"direction": "inbound"})] == ["hola"]


def spec_webhook_examples() -> dict[str, dict]:
    operation = load_spec()["paths"]["/whatsapp/webhooks"]["post"]
    return {name: example["value"] for name, example in
            operation["requestBody"]["content"]["application/json"]["examples"].items()}


@pytest.mark.parametrize("name", sorted(spec_webhook_examples()))
def test_every_webhook_example_in_metas_document_is_taken(client, store, name):
    delivery = spec_webhook_examples()[name]
    response = meta_post(client, delivery)
    assert response.status_code == 200, response.get_data(as_text=True)
    counts = response.get_json()
    assert counts["skipped"] == 0, counts
    for message in (m for e in delivery["entry"] for c in e["changes"] for m in c["value"].get("messages", [])):
        stored = store.messages.find_inbound(message["id"])
        assert stored and stored["type"] == message["type"] and stored["channel"] == "meta"


def test_taps_captions_locations_and_reactions_are_read_as_twilios_are(client, store, worker, fake_graph):
    examples = [
        ({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "plan-600",
                                                                                        "title": "Fibra 600"}}},
         "Fibra 600", {"button_id": "plan-600"}),
        ({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {
            "id": "row-2", "title": "Horario", "description": "de la tienda"}}}, "Horario", {"button_id": "row-2"}),
        ({"type": "button", "button": {"payload": "YES", "text": "Sí"}}, "Sí", {"button_payload": "YES"}),
        ({"type": "image", "image": {"id": "1234", "mime_type": "image/jpeg", "sha256": "x", "caption": "mi router"}},
         "mi router", {}),
        ({"type": "reaction", "reaction": {"message_id": "wamid.ours", "emoji": "👍"}}, "",
         {"reacted_to": "wamid.ours", "emoji": "👍"}),
    ]
    for message, body, context in examples:
        delivery = meta_delivery(CUSTOMER, META_PHONE_NUMBER_ID, message)
        assert meta_post(client, delivery).status_code == 200
        wamid = delivery["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        stored = store.messages.find_inbound(wamid)
        assert (stored["body"], stored.get("context", {})) == (body, context), message["type"]
    image = store.messages.collection.find_one({"type": "image"})
    assert image["media"] == [{"id": "1234", "content_type": "image/jpeg"}]  # an id, never fetched
    location = meta_delivery(CUSTOMER, META_PHONE_NUMBER_ID, {"type": "location", "location": {
        "latitude": 40.4168, "longitude": -3.7038, "name": "Sol", "address": "Puerta del Sol, Madrid"}})
    assert meta_post(client, location).status_code == 200
    stored = store.messages.collection.find_one({"type": "location"})
    assert stored["location"] == {"latitude": 40.4168, "longitude": -3.7038, "address": "Puerta del Sol, Madrid",
                                  "label": "Sol"}


# -- statuses --------------------------------------------------------------------------------------


def sent_reply(client, store, worker) -> dict:
    answered(client, worker, text("a qué hora abre la tienda?"))
    return store.messages.collection.find_one({"direction": "outbound"})


def test_statuses_only_move_forward_whatever_order_they_arrive_in(client, store, worker, fake_graph):
    reply = sent_reply(client, store, worker)
    for word in ("sent", "read", "delivered", "sent"):
        assert meta_post(client, status(reply["external_id"], word)).status_code == 200
    assert store.messages.get(reply["_id"])["status"] == "read"


def test_a_status_that_comes_while_its_message_is_being_sent_is_delivered_again_and_then_applied(
        client, store, worker, fake_graph):
    reply = sent_reply(client, store, worker)
    # as it is between Meta taking the message and the worker storing the wamid Meta gave back
    store.messages.collection.update_one({"_id": reply["_id"]},
                                         {"$set": {"status": "submitting"}, "$unset": {"external_id": ""}})

    early = meta_post(client, status(reply["external_id"], "delivered"))
    store.messages.record_send(reply["_id"], "accepted", datetime.now(timezone.utc),
                               external_id=reply["external_id"])  # the worker, right after
    again = meta_post(client, status(reply["external_id"], "delivered"))  # Meta's redelivery

    assert (early.status_code, early.headers["Retry-After"]) == (503, "5")
    assert again.status_code == 200
    assert store.messages.get(reply["_id"])["status"] == "delivered"


def test_a_failed_status_keeps_its_error_code_and_counts_as_a_failure(client, store, worker, fake_graph):
    reply = sent_reply(client, store, worker)
    assert meta_post(client, status(reply["external_id"], "failed", 131026)).status_code == 200
    stored = store.messages.get(reply["_id"])
    assert (stored["status"], stored["error_code"]) == ("failed", 131026)
    assert store.db.events.count_documents({"type": "message_failed"}) == 1


def test_a_status_for_a_message_we_do_not_have_is_ignored(client, store):
    response = meta_post(client, status("wamid.not-ours", "delivered"))
    assert response.status_code == 200 and response.get_json()["statuses"] == 1
    assert store.messages.collection.count_documents({}) == 0


# -- refusals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("http_status", "code", "final"), [
    (400, 131047, "failed"),  # the 24-hour window is closed
    (400, 131026, "failed"),  # undeliverable
])
def test_permanent_refusals_fail_the_part_with_the_code(client, store, worker, fake_graph, http_status, code, final):
    fake_graph.fail_next(http_status, code)
    answered(client, worker, text("hola"))
    reply = store.messages.collection.find_one({"direction": "outbound"})
    assert (reply["status"], reply["error_code"], reply.get("attempts")) == (final, code, 1)
    assert fake_graph.sent_messages() == []


@pytest.mark.parametrize(("http_status", "code"), [(429, 130429), (400, 131056), (400, 80007), (500, 1), (503, 2)])
def test_rate_limits_and_outages_are_retried_later(client, store, worker, fake_graph, http_status, code):
    fake_graph.fail_next(http_status, code)
    assert meta_post(client, text("hola")).status_code == 200
    worker.run_until_idle()
    reply = store.messages.collection.find_one({"direction": "outbound"})
    if reply["status"] == "pending":  # the backoff's jitter may also have made it due at once
        assert reply["attempts"] == 1 and reply["retry_at"] > reply["created_at"]
        store.messages.collection.update_one({"_id": reply["_id"]}, {"$set": {"retry_at": datetime.now(timezone.utc)}})
        store.jobs.collection.update_many({}, {"$set": {"due_at": datetime.now(timezone.utc) - timedelta(seconds=1)}})
        worker.run_until_idle()
    sent = store.messages.get(reply["_id"])
    assert (sent["status"], sent["attempts"], sent["last_error"]["error_code"]) == ("accepted", 1, code)
    assert len(fake_graph.sent_messages()) == 1
    assert len([r for r in fake_graph.requests if (r.json() or {}).get("type") == "text"]) == 2  # refused, then sent


@pytest.fixture
def slow_graph_overrides(settings_overrides):
    return dict(settings_overrides, meta_timeout_seconds=1)


def test_a_send_the_graph_api_does_not_answer_in_time_is_not_repeated(slow_graph_overrides, embedder, fake_graph):
    from tests.conftest import make_assistant
    from webapp import create_app
    from webapp.channels import build_channels
    from webapp.config import load_settings
    from webapp.worker import ReplyWorker

    settings = load_settings(**slow_graph_overrides)
    app = create_app(settings)
    store = app.extensions["whatsapp_assistant"].store
    worker = ReplyWorker(store, make_assistant(settings, embedder), build_channels(settings, store.sessions), settings)
    try:
        fake_graph.delay_next(3)  # the answer hangs
        assert meta_post(app.test_client(), text("hola")).status_code == 200
        worker.run_until_idle()
        reply = store.messages.collection.find_one({"direction": "outbound"})
        assert reply["status"] == "unconfirmed"
    finally:
        store.client.drop_database(store.db.name)
        app.extensions["whatsapp_assistant"].close()


def test_a_mexican_number_registered_without_the_mobile_digit_gets_its_replies(client, store, worker, fake_graph):
    """Meta sends 521 + 10 digits; the number in the allowed list is 52 + 10 digits (131030)."""
    fake_graph.allowed_numbers = {"525512345678"}
    for question in ("hola", "¿cuánto cuesta la fibra de 600?"):
        answered(client, worker, text(question, sender="5215512345678"))
    refused = [r.json()["to"] for r in fake_graph.requests if r.method == "POST" and r.json().get("to")]
    assert refused == ["5215512345678", "525512345678", "525512345678"]  # tried once, then remembered
    assert [m["to"] for m in fake_graph.sent_messages()] == ["525512345678"] * 2
    assert all(m["status"] == "accepted" for m in store.messages.collection.find({"direction": "outbound"}))


def test_what_worked_for_a_mexican_number_is_remembered_for_every_process(client, store, worker, fake_graph,
                                                                             settings, embedder):
    from tests.conftest import make_assistant
    from webapp.channels import build_channels
    from webapp.worker import ReplyWorker

    fake_graph.allowed_numbers = {"525512345678"}
    answered(client, worker, text("hola", sender="5215512345678"))
    fake_graph.clear()
    other_process = ReplyWorker(store, make_assistant(settings, embedder), build_channels(settings, store.sessions),
                                settings)
    answered(client, other_process, text("¿cuánto cuesta la fibra de 600?", sender="5215512345678"))
    assert [r.json()["to"] for r in fake_graph.requests if r.method == "POST" and r.json().get("to")] == [
        "525512345678"]  # straight to the form that works: no refusal first
    assert store.sessions.reply_number("meta", "5215512345678") == "525512345678"


def test_a_number_that_needs_its_mobile_digit_is_not_remembered_without_it(client, store, worker, fake_graph):
    fake_graph.allowed_numbers = {"5215512345678"}
    for question in ("hola", "¿cuánto cuesta la fibra de 600?"):
        answered(client, worker, text(question, sender="5215512345678"))
    assert [m["to"] for m in fake_graph.sent_messages()] == ["5215512345678"] * 2
    assert store.sessions.reply_number("meta", "5215512345678") is None


# -- two channels at once ----------------------------------------------------------------------------


def test_twilio_and_meta_customers_each_get_replies_on_their_own_channel(client, store, worker, fake_graph,
                                                                          fake_twilio):
    assert signed_post(client, inbound_form("¿cuánto cuesta la fibra de 600?", sender="whatsapp:+34600999888")
                       ).status_code == 200
    answered(client, worker, text("¿cuánto cuesta la fibra de 600?"))
    (by_twilio,) = fake_twilio.sent_messages()
    (by_meta,) = fake_graph.sent_messages()
    assert (by_twilio["to"], by_twilio["from_"]) == ("whatsapp:+34600999888", SENDER)
    assert by_meta["to"] == CUSTOMER
    channels = {c["wa_id"]: c["channel"] for c in store.db.conversations.find()}
    assert channels == {"34600999888": "twilio", CUSTOMER: "meta"}


def test_a_persons_reply_and_a_resend_go_out_on_the_conversations_channel(client, store, worker, fake_graph,
                                                                          fake_twilio):
    answered(client, worker, text("hola"))
    conversation = store.db.conversations.find_one()
    response = client.post(f"{W}/conversations/{conversation['_id']}/reply", json={"text": "Soy Marta, te ayudo."},
                           headers=ADMIN)
    assert response.status_code == 202
    fake_graph.fail_next(400, 131026)
    worker.run_until_idle()
    failed = store.messages.collection.find_one({"role": "agent"})
    assert failed["channel"] == "meta" and failed["status"] == "failed"

    assert client.post(f"{W}/messages/{failed['_id']}/resend", headers=ADMIN).status_code == 202
    worker.run_until_idle()
    assert [m["body"] for m in fake_graph.sent_messages()][-1] == "Soy Marta, te ayudo."
    assert fake_twilio.sent_messages() == []


@pytest.fixture
def one_message_a_minute(settings_overrides):
    settings_overrides["rate_limit_per_wa_id"] = "1 per minute"  # before the app is built from them


def test_the_rate_limit_notice_goes_out_on_the_channel_the_customer_wrote_on(one_message_a_minute, client, store,
                                                                             worker, fake_graph, fake_twilio):
    for n in range(3):
        assert meta_post(client, text(f"hola {n}")).status_code == 200
    worker.run_until_idle()

    (notice,) = store.messages.collection.find({"kind": "notice"})
    assert (notice["channel"], notice["business"], notice["status"]) == ("meta", META_PHONE_NUMBER_ID, "accepted")
    assert notice["body"] in [m["body"] for m in fake_graph.sent_messages()]
    assert fake_twilio.sent_messages() == []


def test_the_same_customer_on_both_channels_has_two_conversations(client, store, worker, fake_graph, fake_twilio):
    assert signed_post(client, inbound_form("hola", sender=f"whatsapp:+{CUSTOMER}")).status_code == 200
    answered(client, worker, text("hola"))
    assert store.db.conversations.count_documents({"wa_id": CUSTOMER}) == 2
    assert len(fake_twilio.sent_messages()) == len(fake_graph.sent_messages()) == 1


# -- the contract checker itself -------------------------------------------------------------------


def test_the_fake_graph_api_really_checks_requests_against_metas_document(fake_graph):
    import requests as http

    from tests.conftest import META_ACCESS_TOKEN
    url = f"{fake_graph.base_url}/v23.0/{META_PHONE_NUMBER_ID}/messages"
    auth = {"Authorization": f"Bearer {META_ACCESS_TOKEN}"}
    text_message = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "text",
                    "text": {"body": "hola", "preview_url": False}}
    assert http.post(url, json=text_message, headers=auth, timeout=10).status_code == 200
    for wrong in ({**text_message, "biz_opaque_callback_data": "not in the document"},
                  {key: value for key, value in text_message.items() if key != "to"},
                  {**text_message, "text": {"body": 5}},
                  {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.x",
                   "typing_indicator": {"type": "text", "extra": 1}}):
        response = http.post(url, json=wrong, headers=auth, timeout=10)
        assert response.status_code == 400 and response.json()["error"]["code"] == 100, wrong
    assert len(fake_graph.contract_violations) >= 4
    assert http.post(url, json=text_message, timeout=10).status_code == 401


# -- ops --------------------------------------------------------------------------------------------


def test_test_and_diag_report_each_channel_with_secrets_masked(client, fake_graph):
    from tests.conftest import META_ACCESS_TOKEN
    tested = client.get(f"{W}/test", headers=ADMIN)
    assert tested.status_code == 200
    body = tested.get_json()
    assert body["status"] == "ok" and set(body["channels"]) == {"twilio", "meta"}
    assert body["channels"]["meta"] == {"status": "ok", "phone_number": {
        "display_phone_number": "+1 555-078-3881", "verified_name": "Fibra Clara", "quality_rating": "GREEN",
        "code_verification_status": "VERIFIED"}}
    (details,) = [r for r in fake_graph.requests if r.method == "GET"]
    assert details.path.startswith(f"/v23.0/{META_PHONE_NUMBER_ID}?fields=")

    diag = client.get(f"{W}/diag", headers=ADMIN)
    meta = diag.get_json()["channels"]["meta"]
    assert meta == {"mode": "sending", "phone_number_id": META_PHONE_NUMBER_ID,
                    "authorization": "****" + META_ACCESS_TOKEN[-4:], "api": fake_graph.base_url + "/v23.0"}
    for secret in (META_ACCESS_TOKEN, META_APP_SECRET, META_VERIFY_TOKEN):
        assert secret not in diag.get_data(as_text=True)


def test_a_refused_token_is_reported_by_test(client, fake_graph):
    fake_graph.access_token = "another-token"
    body = client.get(f"{W}/test", headers=ADMIN).get_json()
    assert body["status"] == "error"
    assert body["channels"]["meta"] == {"status": "error", "message": "HTTP 401",
                                        "meta": {"code": 190, "message": "Invalid OAuth access token"}}


def test_send_test_through_meta_uses_the_configured_number(client, store, fake_graph):
    response = client.post(f"{W}/send-test", json={"to": f"whatsapp:+{CUSTOMER}", "text": "prueba", "channel": "meta"},
                           headers=ADMIN)
    (sent,) = fake_graph.sent_messages()
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "meta": {"ok": True, "status": "accepted", "sid": sent["id"]}}
    assert (sent["phone_number_id"], sent["to"], sent["body"]) == (META_PHONE_NUMBER_ID, CUSTOMER, "prueba")
    unknown = client.post(f"{W}/send-test", json={"to": f"whatsapp:+{CUSTOMER}", "text": "x", "channel": "fax"},
                          headers=ADMIN)
    assert unknown.status_code == 400 and unknown.get_json()["field"] == "channel"


def test_readiness_names_each_channels_mode(client):
    checks = client.get("/readyz").get_json()["checks"]
    assert checks["meta"] == {"ok": True, "mode": "sending"} and checks["twilio"] == {"ok": True, "mode": "sending"}


def test_a_meta_only_deployment_has_no_twilio_webhook_to_forge(settings_overrides, store):
    from webapp import create_app
    from webapp.config import ConfigError, load_settings

    meta_only = dict(settings_overrides, twilio_auth_token="", twilio_account_sid="", twilio_whatsapp_from="",
                     public_base_url="")
    app = create_app(load_settings(**meta_only))
    client = app.test_client()
    for path in (f"{W}/webhook", f"{W}/status"):
        assert client.post(path, data=inbound_form("hola")).status_code == 404
    assert meta_post(client, text("hola")).status_code == 200
    app.extensions["whatsapp_assistant"].close()
    with pytest.raises(ConfigError, match="no channel is configured"):
        load_settings(**dict(meta_only, meta_app_secret="", meta_verify_token="", meta_access_token="",
                             meta_phone_number_id=""))
