"""The reverse proxy of deploy/nginx/, run for real with Debian's nginx in front of gunicorn: slow
clients that would hold every gunicorn thread (a slowloris) only hold nginx connections, and the
health check and Twilio's webhook are still answered at once; nginx terminates TLS, tells the app
the URL the client called (the signature is checked against it) and refuses oversized bodies."""
from __future__ import annotations

import shutil
import time

import pytest
import requests
from twilio.request_validator import RequestValidator

from tests.conftest import AUTH_TOKEN, WEBHOOK, inbound_form, process_env, stop
from tests.processes import (SlowClients, free_port, nginx_binary, self_signed_certificate, start_gunicorn,
                             start_nginx, wait_until)
from webapp.request_body import MAX_REQUEST_BYTES
from webapp.db import open_store

pytestmark = pytest.mark.skipif(nginx_binary() is None or shutil.which("openssl") is None,
                                reason="nginx or openssl is not installed (.ci/run installs Debian's)")

# 2 gunicorn workers x 4 threads are held by 8, when the workers share them evenly (they race to
# accept connections, so one may take most: many more make sure both are full)
SLOW_CLIENTS = 96
ANSWER_WITHIN_SECONDS = 1.0


@pytest.fixture
def proxied(mongodb_uri, sample_index_path, fake_twilio, tmp_path):
    """gunicorn (dry-run, TRUSTED_PROXY_HOPS=1, no PUBLIC_BASE_URL: the signed URL is rebuilt from
    what nginx forwards) behind nginx on 127.0.0.1 with a self-signed certificate."""
    gunicorn_port, http_port, https_port = free_port(), free_port(), free_port()
    env = process_env(mongodb_uri, sample_index_path, fake_twilio.base_url, BIND=f"127.0.0.1:{gunicorn_port}",
                      PUBLIC_BASE_URL="", TWILIO_ACCOUNT_SID="", TRUSTED_PROXY_HOPS="1", LOG_FORMAT="json")
    certificate, key = self_signed_certificate(tmp_path)
    web = start_gunicorn(env, tmp_path, tmp_path / "gunicorn.log", workers=2, timeout_seconds=60)
    nginx = None
    try:
        nginx = start_nginx(tmp_path / "nginx", http_port, https_port, f"127.0.0.1:{gunicorn_port}", certificate, key)
        yield {"direct": f"http://127.0.0.1:{gunicorn_port}", "public": f"https://127.0.0.1:{https_port}",
               "http": f"http://127.0.0.1:{http_port}", "gunicorn_port": gunicorn_port, "https_port": https_port,
               "certificate": str(certificate), "web": web}
    finally:
        for process in (nginx, web):
            if process is not None:
                stop(process)
        store = open_store(mongodb_uri)
        store.client.drop_database(store.db.name)


def signed_webhook(url: str, body: str, **headers) -> dict:
    form = inbound_form(body)
    return {"data": form, "headers": {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, form),
                                      **headers}}


def timed(call) -> tuple[requests.Response | None, float]:
    started = time.monotonic()
    try:
        response = call()
    except requests.RequestException:
        response = None
    return response, time.monotonic() - started


def test_slow_clients_hold_gunicorn_but_not_the_app_behind_nginx(proxied, mongodb_uri):
    direct_health = lambda: requests.get(proxied["direct"] + "/healthz", timeout=ANSWER_WITHIN_SECONDS)  # noqa: E731
    with SlowClients(proxied["gunicorn_port"], count=SLOW_CLIENTS) as held:
        time.sleep(0.5)
        unanswered, _ = timed(direct_health)
    assert unanswered is None, "the slow clients did not hold gunicorn: this test would prove nothing"
    assert held.closed_by_server == 0

    public_url = proxied["public"] + WEBHOOK
    with SlowClients(proxied["https_port"], count=SLOW_CLIENTS, tls=True) as slow:
        time.sleep(1.5)  # each has sent a line or two more
        health, health_seconds = timed(lambda: requests.get(proxied["public"] + "/healthz", timeout=10,
                                                            verify=proxied["certificate"]))
        webhook, webhook_seconds = timed(lambda: requests.post(
            public_url, timeout=10, verify=proxied["certificate"], **signed_webhook(public_url, "hola")))
        still_open = len(slow.sockets)

    assert still_open == SLOW_CLIENTS  # all of them were still holding their connection meanwhile
    assert health is not None and health.status_code == 200 and health_seconds < ANSWER_WITHIN_SECONDS
    assert webhook is not None and webhook.status_code == 200 and webhook_seconds < ANSWER_WITHIN_SECONDS
    assert open_store(mongodb_uri).messages.collection.count_documents({"direction": "inbound"}) == 1


def test_nginx_forwards_what_the_client_called_and_nothing_a_client_forged(proxied, mongodb_uri):
    public_url = proxied["public"] + WEBHOOK
    verify = proxied["certificate"]
    # a client claiming another host or scheme: nginx overwrites X-Forwarded-*, so the signature
    # for the URL it claims does not match
    forged = requests.post(public_url, timeout=10, verify=verify, **signed_webhook(
        "https://evil.example" + WEBHOOK, "hola", **{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
                                                     "X-Forwarded-Port": "443"}))
    assert forged.status_code == 403
    genuine = requests.post(public_url, timeout=10, verify=verify, **signed_webhook(public_url, "hola",
                                                                                   **{"X-Request-ID": "client-chosen-id"}))
    assert genuine.status_code == 200
    assert genuine.headers["X-Request-ID"] != "client-chosen-id" and len(genuine.headers["X-Request-ID"]) == 32

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    largest = requests.post(public_url, data=b"x" * MAX_REQUEST_BYTES, timeout=10, verify=verify, headers=form)
    assert largest.status_code == 403  # the app's own limit is the proxy's: this one reached the app
    oversized = requests.post(public_url, data=b"x" * (MAX_REQUEST_BYTES + 1), timeout=10, verify=verify, headers=form)
    assert oversized.status_code == 413 and "larger than" in oversized.json()["error"]

    redirect = requests.get(proxied["http"] + "/healthz", allow_redirects=False, timeout=10)
    assert redirect.status_code == 308 and redirect.headers["Location"] == "https://127.0.0.1/healthz"
    assert open_store(mongodb_uri).messages.collection.count_documents({"direction": "inbound"}) == 1


def test_a_secret_in_360dialogs_webhook_url_is_not_in_nginxs_access_log(proxied, tmp_path):
    secret = "d360-url-secret-7731"
    for base in (proxied["public"], proxied["http"]):
        requests.post(f"{base}/api/v1/360dialog/webhook/{secret}?x=1", json={}, timeout=10,
                      verify=proxied["certificate"], allow_redirects=False)

    access_log = tmp_path / "nginx" / "access.log"
    line = '"POST /api/v1/360dialog/webhook/****?x=1 HTTP/1.1"'
    # nginx writes a request's line once it has answered it: the last may come a moment later
    logged = wait_until(lambda: (text := access_log.read_text()).count(line) >= 2 and text, "nginx's access log", 10)
    assert secret not in logged
    assert logged.count(line) == 2


def test_gunicorn_down_is_a_json_503_that_providers_retry(proxied):
    stop(proxied["web"])
    response = requests.get(proxied["public"] + "/healthz", timeout=10, verify=proxied["certificate"])
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "unavailable" in response.json()["error"]
