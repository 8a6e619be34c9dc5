"""Structured logs: JSON lines from gunicorn (its own and access logs) and the app, each carrying the
request's id, route, MessageSid and conversation id; the worker's lines carry the conversation
they are about; a text format for terminals."""
from __future__ import annotations

import http.client
import io
import json
import logging
import sys
from urllib.parse import quote

import pytest
import requests

from scripts.chat import meta_delivery
from tests.conftest import ADMIN_TOKEN, inbound_form, post_signed, signed_post, stop
from tests.processes import json_lines
from webapp.logs import ContextFilter, configure_logging, make_formatter

CUSTOMER = "whatsapp:+34600111222"
PROXY_REQUEST_ID = "edge-4f1c2b9a-0001"


@pytest.mark.parametrize("gunicorn_server", [{"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}], indirect=True)
def test_gunicorn_writes_one_json_object_per_line_with_the_request_context(gunicorn_server):
    base_url = gunicorn_server["base_url"]
    form = inbound_form("¿Cuánto cuesta la fibra?", sender=CUSTOMER)
    stored = post_signed(base_url, form)
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    reset = requests.delete(f"{base_url}/api/v1/whatsapp/sessions/34600111222", timeout=10,
                            headers={**bearer, "X-Request-ID": PROXY_REQUEST_ID})
    odd = requests.get(f"{base_url}/healthz", headers={"X-Request-ID": "not an id; <script>"}, timeout=10)

    output = stop(gunicorn_server["process"], gunicorn_server["log"])
    lines = json_lines(output)
    assert len(lines) == len([line for line in output.splitlines() if line.strip()]), output[-3000:]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)

    assert reset.status_code == 200 and reset.headers["X-Request-ID"] == PROXY_REQUEST_ID
    assert odd.headers["X-Request-ID"] != "not an id; <script>" and len(odd.headers["X-Request-ID"]) == 32
    access = {line["request_id"]: line for line in lines if line["logger"] == "gunicorn.access"}
    webhook = access[stored.headers["X-Request-ID"]]
    assert (webhook["method"], webhook["path"], webhook["status"]) == ("POST", "/api/v1/whatsapp/webhook", 200)
    assert webhook["duration_ms"] > 0 and webhook["bytes"] > 0
    assert access[PROXY_REQUEST_ID]["path"] == "/api/v1/whatsapp/sessions/+34*****1222"  # the number masked

    (app_line,) = [line for line in lines if line["message"].startswith(f"stored {form['MessageSid']}")]
    assert app_line["request_id"] == stored.headers["X-Request-ID"]
    assert app_line["route"] == "/api/v1/whatsapp/webhook" and app_line["message_sid"] == form["MessageSid"]
    assert len(app_line["conversation_id"]) == 32
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
    assert "600111222" not in output


def test_the_worker_logs_the_conversation_and_message_it_is_answering(client, worker, store):
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(make_formatter("json"))
    handler.addFilter(ContextFilter())
    logging.getLogger("webapp.worker").addHandler(handler)
    try:
        form = inbound_form("¿Cuánto cuesta la fibra?", sender=CUSTOMER)
        signed_post(client, form)
        worker.run_until_idle()
        logging.getLogger("webapp.worker").info("outside any job")
    finally:
        logging.getLogger("webapp.worker").removeHandler(handler)

    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    conversation_id = store.messages.find_inbound(form["MessageSid"])["conversation_id"]
    in_job = [line for line in lines if line["message"] != "outside any job"]
    assert in_job, "the worker logged nothing while answering"
    assert all(line["conversation_id"] == conversation_id for line in in_job)
    assert any(line.get("message_sid") == form["MessageSid"] for line in in_job)
    assert "conversation_id" not in lines[-1] and "message_sid" not in lines[-1]


def test_text_format_is_plain_lines(capsys):
    configure_logging("INFO", "text")
    try:
        logging.getLogger("webapp.test").info("hola")
        assert capsys.readouterr().out.rstrip().endswith("INFO webapp.test: hola")
        configure_logging("INFO", "json")
        logging.getLogger("webapp.test").info("hola")
        assert json.loads(capsys.readouterr().out)["message"] == "hola"
    finally:
        configure_logging("INFO", "text")


FORGED_LINE = "2026-12-04 12:00:00,000 INFO webapp.auth: forged"
# CR LF, then a line that looks like ours; U+2028, NEL and a terminal escape (clear screen) after it
FORGED_PATH = "/api/v1/whatsapp/x%0d%0a" + quote(FORGED_LINE) + "%E2%80%A8%C2%85%1b[2J%0a" + quote(FORGED_LINE)


def raw_get(base_url: str, path: str) -> int:
    """A GET of `path` exactly as given (no client re-encodes it)."""
    connection = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("gunicorn_server", [{"LOG_FORMAT": "text"}, {"LOG_FORMAT": "json"}], indirect=True,
                         ids=["text", "json"])
def test_a_request_cannot_write_log_lines_of_its_own(gunicorn_server):
    assert raw_get(gunicorn_server["base_url"], FORGED_PATH) == 404

    output = stop(gunicorn_server["process"], gunicorn_server["log"])
    lines = [line for line in output.splitlines() if line.strip()]  # splitlines also breaks at U+2028 and NEL
    (logged,) = [line for line in lines if "forged" in line]
    assert not logged.startswith(FORGED_LINE) and "\x1b" not in output
    if gunicorn_server["env"]["LOG_FORMAT"] == "json":
        assert len(json_lines(output)) == len(lines)
        (access,) = [line for line in json_lines(output) if "forged" in line["message"] + line.get("path", "")]
        assert f"\r\n{FORGED_LINE}" in access["path"]  # the value itself is kept, escaped only on the line
    else:
        assert "x\\r\\n" + FORGED_LINE in logged


D360_SECRET = "d360-url-secret-5519"


@pytest.mark.parametrize("gunicorn_server", [{"LOG_FORMAT": "text", "D360_WEBHOOK_SECRET": D360_SECRET},
                                             {"LOG_FORMAT": "json", "D360_WEBHOOK_SECRET": D360_SECRET}],
                         indirect=True, ids=["text", "json"])
def test_a_secret_in_the_webhooks_url_is_not_logged(gunicorn_server):
    delivery = meta_delivery("34600111222", "1", {"type": "text", "text": {"body": "hola"}})
    webhook = f"{gunicorn_server['base_url']}/api/v1/360dialog/webhook"
    taken = requests.post(f"{webhook}/{D360_SECRET}", json=delivery, timeout=10)
    refused = requests.post(f"{webhook}/{D360_SECRET}x", json=delivery, timeout=10)

    output = stop(gunicorn_server["process"], gunicorn_server["log"])
    assert (taken.status_code, refused.status_code) == (200, 403)
    assert D360_SECRET not in output
    assert output.count("/api/v1/360dialog/webhook/****") == 2  # both requests' access lines


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_traceback_stays_under_its_line(log_format):
    formatter = make_formatter(log_format)
    try:
        raise ValueError(f"bad input\n{FORGED_LINE}\u2028{FORGED_LINE}")
    except ValueError:
        record = logging.LogRecord("webapp.x", logging.ERROR, __file__, 1, "failed on %s", ("a\rb",), sys.exc_info())
    lines = formatter.format(record).splitlines()
    assert not any(line.startswith(FORGED_LINE) for line in lines)
    if log_format == "json":
        assert len(lines) == 1
    else:
        assert lines[0].endswith("failed on a\\rb") and all(line.startswith("    ") for line in lines[1:])
