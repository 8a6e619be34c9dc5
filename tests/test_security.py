"""Who gets in: Twilio's signature over the exact public URL (behind proxies too), and the admin
token with its per-address limits."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
import requests
from twilio.request_validator import RequestValidator

from tests.conftest import ROOT, ADMIN_TOKEN, AUTH_TOKEN, WEBHOOK, all_channels, inbound_form, signed_post
from webapp import create_app
from webapp.config import ConfigError, load_settings

PUBLIC = "https://bot.example.com:8443"
STATUS = "/api/v1/whatsapp/status"
DIAG = "/api/v1/whatsapp/diag"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def signed_by_twilio(url: str, form: dict) -> dict:
    return {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, form)}


def stored_messages(store) -> int:
    return store.db.messages.count_documents({})


@pytest.fixture
def settings_overrides(settings_overrides, request):
    return dict(settings_overrides, **getattr(request, "param", {}))


@pytest.mark.parametrize("settings_overrides", [{"public_base_url": PUBLIC}], indirect=True)
@pytest.mark.parametrize("query", ["", "?tenant=acme&lang=es", "?q=se%C3%B1al%20%C3%B1"])
def test_signature_over_the_public_url_with_port_query_and_non_ascii_body(client, store, query):
    form = inbound_form("¿Cuánto cuesta la fibra? Mañana pago 😀 — ñandú")
    response = client.post(WEBHOOK + query, data=form, headers=signed_by_twilio(PUBLIC + WEBHOOK + query, form))
    assert response.status_code == 200
    assert stored_messages(store) == 1


@pytest.mark.parametrize("settings_overrides", [{"public_base_url": PUBLIC}], indirect=True)
@pytest.mark.parametrize("signed_url", [
    "http://bot.example.com:8443" + WEBHOOK,  # another scheme
    PUBLIC + WEBHOOK + "?tenant=other",  # another query
    PUBLIC + STATUS,  # a signature for another route, replayed here
])
def test_a_signature_for_another_url_is_refused_and_nothing_is_stored_or_sent(client, store, worker, fake_twilio,
                                                                               signed_url):
    """(The SDK's validator also accepts the URL without its port: Twilio signs either form.)"""
    form = inbound_form("hola")
    response = client.post(WEBHOOK, data=form, headers=signed_by_twilio(signed_url, form))
    worker.run_once()
    assert response.status_code == 403
    assert stored_messages(store) == 0 and fake_twilio.requests == []


def test_a_changed_body_breaks_the_signature(client, store):
    form = inbound_form("hola")
    headers = signed_by_twilio("http://localhost" + WEBHOOK, form)
    response = client.post(WEBHOOK, data={**form, "Body": "hola!"}, headers=headers)
    assert response.status_code == 403
    assert stored_messages(store) == 0


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.example.com", "X-Forwarded-For": "203.0.113.9"}
DRY_RUN = {"twilio_account_sid": "", "public_base_url": ""}  # no credentials: nothing sent, no public URL needed


def test_sending_for_real_needs_the_public_url_signatures_are_checked_against(settings_overrides):
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL is required when Twilio credentials are set"):
        load_settings(**dict(settings_overrides, public_base_url=""))
    assert not load_settings(**dict(settings_overrides, **DRY_RUN)).twilio_sends  # dry-run starts without it


def test_when_sending_a_signature_for_the_requests_own_host_is_refused(client, store):
    """The signed URL is PUBLIC_BASE_URL's, never one rebuilt from a Host header the caller chose."""
    form = inbound_form("hola")
    evil = "http://evil.example:8000"
    response = client.post(WEBHOOK, data=form, headers=signed_by_twilio(evil + WEBHOOK, form), base_url=evil)
    assert response.status_code == 403
    assert stored_messages(store) == 0


@pytest.mark.parametrize(("settings_overrides", "status"), [({**DRY_RUN, "trusted_proxy_hops": 1}, 200),
                                                            ({**DRY_RUN, "trusted_proxy_hops": 0}, 403)],
                         indirect=["settings_overrides"])
def test_behind_a_trusted_proxy_the_forwarded_url_is_the_one_checked(client, store, status):
    """In dry-run, without PUBLIC_BASE_URL: a TLS-terminating proxy calls us at http://internal;
    Twilio signed https://bot.example.com. With TRUSTED_PROXY_HOPS=1 the app rebuilds the public URL
    from X-Forwarded-*; with 0 it ignores them, since anyone can send those headers to an app that is
    not behind a proxy."""
    form = inbound_form("hola")
    headers = {**signed_by_twilio("https://bot.example.com" + WEBHOOK, form), **FORWARDED}
    response = client.post(WEBHOOK, data=form, headers=headers, base_url="http://internal:8000")
    assert response.status_code == status
    assert stored_messages(store) == (1 if status == 200 else 0)


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_admin_failures_per_ip": "3 per minute"}], indirect=True)
def test_repeated_wrong_admin_tokens_lock_the_address_out_even_for_the_right_token(client):
    attacker = {"REMOTE_ADDR": "198.51.100.7"}
    for guess in range(3):
        wrong = {"Authorization": f"Bearer guess-{guess}"}
        assert client.get(DIAG, headers=wrong, environ_base=attacker).status_code == 401
    locked = client.get(DIAG, headers=BEARER, environ_base=attacker)
    assert locked.status_code == 429
    assert "wrong admin tokens" in locked.get_json()["error"]
    assert 1 <= int(locked.headers["Retry-After"]) <= 60
    assert client.get(DIAG, headers=BEARER, environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_admin_per_ip": "3 per minute"}], indirect=True)
def test_admin_requests_are_limited_per_address(client):
    ops = {"REMOTE_ADDR": "192.0.2.10"}
    assert [client.get(DIAG, headers=BEARER, environ_base=ops).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert client.get(DIAG, headers=BEARER, environ_base={"REMOTE_ADDR": "192.0.2.11"}).status_code == 200


@pytest.mark.parametrize(("settings_overrides", "address"), [({"trusted_proxy_hops": 1}, "203.0.113.9"),
                                                             ({"trusted_proxy_hops": 0}, "10.0.0.2")],
                         indirect=["settings_overrides"])
def test_admin_limits_count_the_client_address_the_trusted_proxy_reports(client, address, caplog):
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    client.get(DIAG, headers={"Authorization": "Bearer wrong", **FORWARDED}, environ_base=proxy)
    assert f"admin request from {address} refused" in caplog.text


@pytest.mark.parametrize(("url", "kept"), [
    ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", True),
    ("https://media.us1.twilio.com/ME1", True),
    ("http://api.twilio.com/ME1", False),  # not https
    ("https://api.twilio.com.evil.example/ME1", False),
    ("https://api.twilio.com@evil.example/ME1", False),  # the host is evil.example
    ("https://evil.example\\@api.twilio.com/ME1", False),  # a browser's host is evil.example
    ("https://evil.example\\.api.twilio.com/ME1", False),
    ("https://user:pass@api.twilio.com/ME1", False),  # user info, of no use to Twilio's media
    ("https://api.twilio.com/ME1\\..\\..\\x", False),
    ("https://evil.example\t@api.twilio.com/ME1", False),  # urlsplit drops tabs
    ("https://api.twilio.com /ME1", False),
    ("https://evil.example/api.twilio.com/ME1", False),
    ("https://[::1/ME1", False),  # unparseable
    ("file:///etc/passwd", False),
])
def test_only_media_on_twilio_hosts_is_kept(client, store, url, kept):
    form = inbound_form("mira esta foto", NumMedia="1", MediaUrl0=url, MediaContentType0="image/jpeg")
    assert signed_post(client, form).status_code == 200
    assert store.db.messages.find_one({"direction": "inbound"})["media"] == (
        [{"url": url, "content_type": "image/jpeg"}] if kept else [])


OPEN_ROUTES = {"/healthz": 200, "/readyz": 503, "/api/v1/openapi.json": 200}  # reveal no data
# signed by the provider instead (or carrying our secret: 360dialog)
TWILIO_ROUTES = {WEBHOOK, STATUS, "/api/v1/meta/webhook", "/api/v1/kapso/webhook", "/api/v1/360dialog/webhook",
                 "/api/v1/360dialog/webhook/" + "a" * 24}


# The console's pages answer a browser without a session with a redirect to the sign-in page; these
# reveal nothing either: the sign-in form, signing out, the language switch and the way in.
CONSOLE_OPEN = {("GET", "/console/sign-in"): 200, ("POST", "/console/sign-in"): 403, ("GET", "/console/"): 303,
                ("GET", "/console/language/" + "a" * 24): 303, ("POST", "/console/sign-out"): 303}


def every_route(app) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, path parameters filled in; not the
    console's stylesheet and script (tests/test_console.py)."""
    return sorted((method, re.sub(r"<[^>]+>", "a" * 24, rule.rule)) for rule in app.url_map.iter_rules()
                  if not rule.endpoint.endswith("static") for method in rule.methods - {"HEAD", "OPTIONS"})


def without_credentials(method: str, path: str) -> int:
    """The status a request to the route gets without the admin token or a console session."""
    if path in TWILIO_ROUTES:
        return 403
    if path.startswith("/console/"):
        return CONSOLE_OPEN.get((method, path), 303)
    return OPEN_ROUTES.get(path, 401)


@pytest.fixture
def all_channels_overrides(settings_overrides, fake_graph):
    return all_channels(dict(settings_overrides, rate_limit_admin_failures_per_ip="1000 per minute"), fake_graph)


def test_every_route_but_the_providers_and_the_open_ones_needs_the_admin_token(all_channels_overrides, fake_twilio,
                                                                               fake_graph):
    app = create_app(load_settings(**all_channels_overrides))
    client, store = app.test_client(), app.extensions["whatsapp_assistant"].store
    routes = every_route(app)
    assert len(routes) > 15 and {("POST", "/api/v1/meta/webhook"), ("POST", "/api/v1/kapso/webhook"),
                                 ("POST", "/api/v1/360dialog/webhook")} <= set(routes)
    for method, path in routes:
        response = client.open(path, method=method, headers={"Authorization": "Bearer wrong"},
                               query_string={"to": "whatsapp:+34600111222", "text": "hola"})
        assert response.status_code == without_credentials(method, path), (method, path)
        if path.startswith("/console/") and (method, path) not in CONSOLE_OPEN:
            assert response.headers["Location"].startswith("/console/sign-in?next="), (method, path)
    assert fake_twilio.requests == [] and fake_graph.requests == [] and store.db.messages.count_documents({}) == 0
    store.client.drop_database(store.db.name)
    app.extensions["whatsapp_assistant"].close()


@pytest.mark.parametrize("settings_overrides", [{"admin_token": ""}], indirect=True)
def test_without_an_admin_token_every_admin_route_is_disabled(app, client):
    for method, path in every_route(app):
        if path not in TWILIO_ROUTES and path not in OPEN_ROUTES and CONSOLE_OPEN.get((method, path)) != 303:
            response = client.open(path, method=method, headers={"Authorization": "Bearer "})
            assert response.status_code == 404 and "ADMIN_TOKEN" in response.get_data(as_text=True), (method, path)


@pytest.mark.parametrize("gunicorn_server", [{"TWILIO_ACCOUNT_SID": "", "PUBLIC_BASE_URL": ""}], indirect=True)
@pytest.mark.parametrize("scheme_header", [{"X-Forwarded-Proto": "https"}, {"X-Forwarded-Ssl": "on"}])
def test_gunicorn_does_not_take_the_scheme_from_forwarded_headers_without_a_trusted_proxy(gunicorn_server,
                                                                                          scheme_header):
    """TRUSTED_PROXY_HOPS unset: a request from 127.0.0.1 cannot switch the URL a signature is
    checked against to https, and a request signed for the URL it really used still passes."""
    url = gunicorn_server["base_url"] + WEBHOOK
    form = inbound_form("hola")
    for signed_url, status in ((url.replace("http://", "https://"), 403), (url, 200)):
        response = requests.post(url, data=form, timeout=10,
                                 headers={**signed_by_twilio(signed_url, form), **scheme_header})
        assert response.status_code == status, signed_url


@pytest.mark.parametrize("gunicorn_server", [{"TWILIO_ACCOUNT_SID": "", "PUBLIC_BASE_URL": "",
                                              "TRUSTED_PROXY_HOPS": "1"}], indirect=True)
def test_gunicorn_passes_the_trusted_proxys_scheme_to_the_app(gunicorn_server):
    url = gunicorn_server["base_url"] + WEBHOOK
    form = inbound_form("hola")
    response = requests.post(url, data=form, timeout=10, headers={
        **signed_by_twilio(url.replace("http://", "https://"), form), "X-Forwarded-Proto": "https"})
    assert response.status_code == 200


def test_healthz_answers_without_a_token_and_reveals_nothing(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def dockerfile_instructions() -> dict[str, list[str]]:
    """Each instruction's arguments, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.setdefault(keyword.upper(), []).append(rest.strip())
    return found


def test_the_image_runs_as_a_user_with_no_secret_baked_in():
    instructions = dockerfile_instructions()
    assert instructions["USER"] == ["app"]
    baked = " ".join(instructions.get("ENV", []) + instructions.get("ARG", []))
    assert not re.search(r"TOKEN|SECRET|PASSWORD|API_KEY|AUTH", baked)


def test_the_image_healthcheck_passes_against_the_running_app(gunicorn_server):
    healthcheck = dockerfile_instructions()["HEALTHCHECK"][0]
    command = shlex.split(healthcheck.partition(" CMD ")[2])
    assert command[:2] == ["python", "-c"]
    env = dict(gunicorn_server["env"])
    result = subprocess.run([sys.executable, "-c", command[2]], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    env["BIND"] = "127.0.0.1:1"  # nothing listens there: the check must fail
    assert subprocess.run([sys.executable, "-c", command[2]], env=env, capture_output=True, timeout=30).returncode != 0
