"""Ops routes `test`, `diag`, `send-test`: admin token required, secrets masked, clear errors."""
from __future__ import annotations

import pytest

from tests.conftest import ACCOUNT_SID, ADMIN_TOKEN, AUTH_TOKEN

OPS = "/api/v1/whatsapp"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ROUTES = [("GET", "/test"), ("GET", "/diag"), ("POST", "/send-test"), ("GET", "/send-test")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}, {"Authorization": f"Basic {ADMIN_TOKEN}"}],
)
def test_ops_routes_refuse_without_the_admin_token(client, fake_twilio, method, path, headers):
    response = client.open(OPS + path, method=method, headers=headers,
                           query_string={"to": "whatsapp:+34600111222", "text": "hola"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert fake_twilio.requests == []


@pytest.fixture
def settings_overrides(settings_overrides, request):
    if getattr(request, "param", None) == "no admin token":
        return dict(settings_overrides, admin_token="")
    return settings_overrides


@pytest.mark.parametrize("settings_overrides", ["no admin token"], indirect=True)
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_ops_routes_are_disabled_without_a_configured_token(client, method, path):
    response = client.open(OPS + path, method=method, headers={"Authorization": "Bearer "})

    assert response.status_code == 404
    assert "ADMIN_TOKEN" in response.get_json()["error"]


def test_diag_shows_settings_with_secrets_masked(client, settings):
    response = client.get(OPS + "/diag", headers=BEARER)

    body = response.get_json()
    assert response.status_code == 200
    assert body["loaded"] is True and body["dry_run"] is False
    assert body["sid"] == "****" + ACCOUNT_SID[-4:]
    assert body["token"] == "****" + AUTH_TOKEN[-4:]
    assert body["from"] == "whatsapp:+14155238886"
    assert body["api_base"] == settings.twilio_api_base
    text = response.get_data(as_text=True)
    for secret in (ACCOUNT_SID, AUTH_TOKEN, ADMIN_TOKEN, AUTH_TOKEN[:-4], ADMIN_TOKEN[:-4]):
        assert secret not in text


def test_test_route_checks_credentials_against_the_accounts_api(client, fake_twilio):
    response = client.get(OPS + "/test", headers=BEARER)

    assert response.status_code == 200 and response.get_json()["status"] == "ok"
    (request,) = fake_twilio.requests
    assert request.method == "GET" and request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"
    assert request.auth_ok


@pytest.fixture
def wrong_token_overrides(settings_overrides):
    return dict(settings_overrides, twilio_auth_token="a-token-twilio-does-not-know")


def test_test_route_reports_twilio_errors(wrong_token_overrides):
    from webapp import create_app
    from webapp.config import load_settings

    client = create_app(load_settings(**wrong_token_overrides)).test_client()
    response = client.get(OPS + "/test", headers=BEARER)

    body = response.get_json()
    assert response.status_code == 502
    twilio = {"status": "error", "message": "HTTP 401", "twilio": {"code": 20003, "message": body["twilio"]["message"]}}
    assert body == {**twilio, "channels": {"twilio": twilio}}


def test_send_test_sends_and_records(client, store, fake_twilio):
    response = client.post(OPS + "/send-test", headers=BEARER, json={"to": "whatsapp:+34600111222", "text": "prueba"})

    assert response.status_code == 200
    body = response.get_json()
    (sent,) = fake_twilio.sent_messages()
    assert body == {"status": "ok", "twilio": {"ok": True, "status": "queued", "sid": sent["sid"]}}
    assert (sent["to"], sent["body"]) == ("whatsapp:+34600111222", "prueba")
    stored = store.messages.collection.find_one({"kind": "test"})
    assert stored["external_id"] == sent["sid"] and stored["status"] == "queued"


def test_send_test_reports_twilio_refusal(client, store, fake_twilio):
    fake_twilio.fail_next(400, code=63016)
    response = client.get(OPS + "/send-test", headers=BEARER, query_string={"to": "whatsapp:+34600111222", "text": "x"})

    assert response.status_code == 502
    assert response.get_json()["twilio"]["code"] == 63016
    assert store.messages.collection.find_one({"kind": "test"})["error_code"] == 63016


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "+34600111222", "text": "hola"}, "to"),
        ({"to": "whatsapp:34600111222", "text": "hola"}, "to"),
        ({"to": "whatsapp:+34 600 111 222", "text": "hola"}, "to"),
        ({"to": "whatsapp:+0123", "text": "hola"}, "to"),
        ({"text": "hola"}, "to"),
        ({"to": "whatsapp:+34600111222", "text": ""}, "text"),
        ({"to": "whatsapp:+34600111222", "text": "x" * 1601}, "text"),
    ],
)
def test_send_test_refuses_malformed_input(client, fake_twilio, params, field):
    response = client.post(OPS + "/send-test", headers=BEARER, data=params)

    assert response.status_code == 400 and response.get_json()["field"] == field
    assert fake_twilio.requests == []
