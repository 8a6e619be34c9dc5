"""`/api/v1/openapi.json` is a valid OpenAPI document, names every route the app serves (and no
other), and the app's real responses, success and error, match what it says (openapi-core)."""
from __future__ import annotations

import re

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import plain_loads
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_spec_validator import validate
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from scripts.chat import meta_delivery
from tests.conftest import (ADMIN_TOKEN, META_PHONE_NUMBER_ID, META_VERIFY_TOKEN, all_channels, inbound_form, meta_post,
                            signed_post)

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
W = "/api/v1/whatsapp"


@pytest.fixture
def settings_overrides(settings_overrides, fake_graph):
    return all_channels(settings_overrides, fake_graph)  # every channel's routes served


@pytest.fixture
def document(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    return response.get_json()


def test_the_document_is_valid_openapi(document):
    validate(document)


def test_it_describes_exactly_the_routes_the_app_serves(app, document):
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules() if rule.endpoint != "static"
        and not rule.rule.startswith("/console/")  # pages for a browser (README, "The console"), not the API
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert described == served


def test_real_responses_match_the_document(client, worker, fake_twilio, document):
    # CSV is text: openapi-core reads a type it does not know as bytes
    openapi = OpenAPI.from_dict(document, config=Config(extra_media_type_deserializers={"text/csv": plain_loads}))
    checked = []

    def check(response, status: int):
        assert response.status_code == status, response.get_data(as_text=True)
        openapi.validate_response(WerkzeugOpenAPIRequest(_bodiless(response.request)), WerkzeugOpenAPIResponse(response))
        checked.append((response.request.method, response.request.path, status))
        return response.get_json(silent=True)

    check(signed_post(client, inbound_form("¿Cuánto cuesta la fibra de 600 Mb?")), 200)
    check(signed_post(client, inbound_form("hola"), token="forged"), 403)
    worker.run_until_idle()
    check(client.get("/healthz"), 200)
    check(client.get("/readyz"), 503)  # no worker process has reported
    check(client.get("/metrics", headers=ADMIN), 200)
    check(client.get(f"{W}/diag", headers=ADMIN), 200)
    check(client.get(f"{W}/stats", headers=ADMIN), 200)
    check(client.get(f"{W}/stats"), 401)
    listed = check(client.get(f"{W}/conversations?status=open", headers=ADMIN), 200)
    check(client.get(f"{W}/conversations?per_page=1000", headers=ADMIN), 400)
    conversation_id = listed["conversations"][0]["id"]
    check(client.get(f"{W}/conversations/{conversation_id}", headers=ADMIN), 200)
    check(client.get(f"{W}/conversations/{'0' * 32}", headers=ADMIN), 404)
    fake_twilio.fail_next(400, code=21610)
    signed_post(client, inbound_form("¿Y la de 1 Gb?"))
    worker.run_until_idle()
    detail = check(client.get(f"{W}/conversations/{conversation_id}", headers=ADMIN), 200)
    failed = next(m["id"] for m in detail["messages"] if m["status"] == "failed")
    check(client.post(f"{W}/messages/{failed}/resend", headers=ADMIN), 202)
    check(client.post(f"{W}/messages/{failed}/resend", headers=ADMIN), 409)
    check(client.post(f"{W}/conversations/{conversation_id}/reply", json={"text": "Soy Marta, del equipo."},
                      headers=ADMIN), 202)
    check(client.post(f"{W}/conversations/{conversation_id}/reply", json={"text": ""}, headers=ADMIN), 400)
    check(client.post(f"{W}/conversations/{conversation_id}/release", headers=ADMIN), 200)
    check(client.post(f"{W}/conversations/{conversation_id}/close", headers=ADMIN), 200)
    signed_post(client, inbound_form("otra vez"))  # a new conversation
    check(client.delete(f"{W}/sessions/34600111222", headers=ADMIN), 200)
    check(client.delete(f"{W}/sessions/not-a-number", headers=ADMIN), 400)
    check(client.post(f"{W}/send-test", json={"to": "whatsapp:+34600111222", "text": "prueba"}, headers=ADMIN), 200)
    check(client.post(f"{W}/send-test", json={"to": "34600", "text": "prueba"}, headers=ADMIN), 400)
    signed_post(client, inbound_form("me llamo Ana García, mi correo es ana@example.com"))
    worker.run_until_idle()
    check(client.get(f"{W}/leads", headers=ADMIN), 200)
    check(client.get(f"{W}/leads.csv", headers=ADMIN), 200)
    check(client.get(f"{W}/leads?per_page=0", headers=ADMIN), 400)
    check(client.get("/api/v1/bot/config", headers=ADMIN), 200)
    check(client.put("/api/v1/bot/config", json={"tone": "cercano"}, headers=ADMIN), 200)
    check(client.put("/api/v1/bot/config", json={"temperature": 9}, headers=ADMIN), 400)
    check(client.delete(f"{W}/customers/34600111222", headers=ADMIN), 200)
    check(client.delete(f"{W}/customers/ana", headers=ADMIN), 400)
    check(client.get(f"{W}/test", headers=ADMIN), 502)  # Kapso and 360dialog in dry-run: not configured to send
    meta = "/api/v1/meta/webhook"
    check(client.get(meta, query_string={"hub.mode": "subscribe", "hub.verify_token": META_VERIFY_TOKEN,
                                         "hub.challenge": "42"}), 200)
    check(client.get(meta, query_string={"hub.mode": "subscribe", "hub.verify_token": "no"}), 403)
    delivery = meta_delivery("34600111333", META_PHONE_NUMBER_ID, {"type": "text", "text": {"body": "hola"}})
    check(meta_post(client, delivery), 200)
    check(meta_post(client, delivery, secret="forged"), 403)
    check(meta_post(client, {"object": "page"}), 400)
    assert len(checked) == 37


def _bodiless(sent: Request) -> Request:
    """The request as openapi-core needs it to find the operation: the app has read its body."""
    return Request(EnvironBuilder(path=sent.path, method=sent.method, query_string=sent.query_string.decode(),
                                  base_url=sent.host_url).get_environ())
