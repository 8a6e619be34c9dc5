"""The console through Flask's test client: signing in and out, the session cookie, CSRF, the
lock-out, and each page's forms doing what the admin API does. (The same pages in a real browser:
tests/test_console_browser.py.)"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import ADMIN_TOKEN, inbound_form, signed_post, work_until_done

INBOX = "/console/inbox"


@pytest.fixture
def settings_overrides(settings_overrides, request):
    return dict(settings_overrides, **getattr(request, "param", {}))


def csrf_of(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def sign_in(client, token: str = ADMIN_TOKEN, next_path: str = ""):
    form = client.get("/console/sign-in")
    return client.post("/console/sign-in", data={"csrf_token": csrf_of(form), "token": token, "next": next_path})


def post_form(client, page_path: str, action: str, **fields):
    """Submit a form of `page_path` as a browser would: with the page's CSRF token."""
    return client.post(action, data={"csrf_token": csrf_of(client.get(page_path)), **fields})


def hand_over(client, worker, sender: str = "whatsapp:+34600111222") -> str:
    signed_post(client, inbound_form("Quiero hablar con una persona, por favor", sender=sender))
    work_until_done(worker)
    conversations = client.application.extensions["whatsapp_assistant"].store.conversations
    return conversations.collection.find_one({"wa_id": sender.removeprefix("whatsapp:+")})["_id"]


def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(client):
    page = client.get("/console/inbox?status=handoff")
    assert page.status_code == 303 and page.headers["Location"].startswith("/console/sign-in?next=")
    signed = sign_in(client, next_path="/console/inbox?status=handoff")
    assert signed.status_code == 303 and signed.headers["Location"] == "/console/inbox?status=handoff"
    assert client.get("/console/inbox").status_code == 200


def test_the_session_cookie_is_httponly_strict_and_secure_behind_https(client):
    cookie = sign_in(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console/" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    form = client.get("/console/sign-in", base_url="https://localhost")
    secure = client.post("/console/sign-in", base_url="https://localhost",
                         data={"csrf_token": csrf_of(form), "token": ADMIN_TOKEN}).headers["Set-Cookie"]
    assert "Secure" in secure and ADMIN_TOKEN not in secure


def test_a_wrong_token_is_refused_and_locks_the_address_out_like_the_admin_api(client):
    page = client.get("/console/sign-in")
    for _ in range(5):  # RATE_LIMIT_ADMIN_FAILURES_PER_IP: 5 per minute
        page = client.post("/console/sign-in", data={"csrf_token": csrf_of(page), "token": "not-the-token"})
        assert page.status_code == 401 and "console_session=" not in page.headers.get("Set-Cookie", "")
        assert "no es el de administración" in page.get_data(as_text=True)
    locked = client.post("/console/sign-in", data={"csrf_token": csrf_of(page), "token": ADMIN_TOKEN})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert client.get("/api/v1/whatsapp/stats",
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 429  # the same lock


def test_signing_in_needs_the_forms_own_csrf_token(client):
    client.get("/console/sign-in")
    refused = client.post("/console/sign-in", data={"csrf_token": "forged", "token": ADMIN_TOKEN})
    assert refused.status_code == 403 and "console_session=" not in refused.headers.get("Set-Cookie", "")


def test_every_console_form_without_its_csrf_token_is_refused_and_does_nothing(client, worker, store):
    conversation_id = hand_over(client, worker)
    sign_in(client)
    before = store.messages.collection.count_documents({})
    for action, fields in ((f"/console/conversations/{conversation_id}/reply", {"text": "Hola"}),
                           (f"/console/conversations/{conversation_id}/release", {}),
                           (f"/console/conversations/{conversation_id}/close", {}),
                           ("/console/knowledge/ask", {"question": "¿Precio?"}),
                           ("/console/settings", {"company_name": "Otra"})):
        for token in ({}, {"csrf_token": "forged"}):
            assert client.post(action, data={**fields, **token}).status_code == 403, action
    assert store.messages.collection.count_documents({}) == before
    assert store.conversations.get(conversation_id)["status"] == "handoff"
    assert store.db.dry_runs.count_documents({}) == 0 and store.bot_config.get() is None


def test_signing_out_ends_the_session_on_the_server(client):
    sign_in(client)
    cookie = client.get_cookie("console_session", path="/console/").value
    assert post_form(client, INBOX, "/console/sign-out").status_code == 303
    client.set_cookie("console_session", cookie, path="/console/")  # a copy kept by someone
    assert client.get(INBOX).status_code == 303


def test_a_new_admin_token_signs_everyone_out(app, client):
    sign_in(client)
    services = app.extensions["whatsapp_assistant"]
    services.settings = services.settings.model_copy(update={"admin_token": type(services.settings.admin_token)("new")})
    assert client.get(INBOX).status_code == 303


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console/", "/api/v1/whatsapp/stats",
                                    "/console/\\evil"])
def test_signing_in_never_redirects_off_the_console(client, target):
    assert sign_in(client, next_path=target).headers["Location"] == "/console/inbox"


@pytest.mark.parametrize("settings_overrides", [{"admin_token": ""}], indirect=True)
def test_without_an_admin_token_the_console_is_off(client):
    for path in ("/console/sign-in", INBOX, "/console/dashboard"):
        page = client.get(path)
        assert page.status_code == 404 and "ADMIN_TOKEN" in page.get_data(as_text=True)


def test_the_inbox_puts_a_waiting_handoff_first_and_filters_and_searches(client, worker, store):
    waiting_id = hand_over(client, worker)
    signed_post(client, inbound_form("¿Qué tarifas tenéis?", sender="whatsapp:+34600999888"))
    work_until_done(worker)
    sign_in(client)
    page = client.get(INBOX).get_data(as_text=True)
    waiting_section = page.split('id="conversations-title"')[0]
    assert f"/console/conversations/{waiting_id}" in waiting_section and "espera desde hace 0 min" in waiting_section
    assert "34600999888" not in waiting_section and "34600999888" in page
    assert "34600999888" not in client.get(INBOX + "?status=handoff").get_data(as_text=True).split(
        'id="conversations-title"')[1]
    found = client.get(INBOX + "?q=999 888").get_data(as_text=True).split('id="conversations-title"')[1]
    assert "34600999888" in found and "34600111222" not in found
    by_name = client.get(INBOX + "?q=ana").get_data(as_text=True).split('id="conversations-title"')[1]
    assert "34600999888" in by_name and "Ana" in by_name  # the profile name Twilio sent
    assert "No hay conversaciones" in client.get(INBOX + "?channel=twilio&q=nadie").get_data(as_text=True)
    assert client.get(INBOX + "?status=bogus&page=-3&channel=x").status_code == 200  # a bad filter is dropped


def test_a_person_replies_releases_and_closes_from_the_conversation_page(client, worker, store, fake_twilio):
    conversation_id = hand_over(client, worker)
    sign_in(client)
    page_path = f"/console/conversations/{conversation_id}"
    page = client.get(page_path).get_data(as_text=True)
    assert "Ventana de 24 h abierta" in page and "Devolver al asistente" in page
    key = re.search(r'name="reply_key" value="([0-9a-f]+)"', page).group(1)
    for _ in range(2):  # the same form sent twice (a double click): one reply
        sent = post_form(client, page_path, page_path + "/reply", text="Hola, soy Marta", reply_key=key)
        assert sent.status_code == 303 and sent.headers["Location"].endswith("done=reply_queued")
    replies = list(store.messages.collection.find({"role": "agent"}))
    assert [r["body"] for r in replies] == ["Hola, soy Marta"] and replies[0]["status"] == "pending"
    transcript = client.get(page_path + "/transcript").get_data(as_text=True)
    assert "Hola, soy Marta" in transcript and "Persona" in transcript
    work_until_done(worker)
    assert fake_twilio.sent_messages()[-1]["body"] == "Hola, soy Marta"
    assert "tick-" in client.get(page_path + "/transcript").get_data(as_text=True)
    released = post_form(client, page_path, page_path + "/release")
    assert released.headers["Location"].endswith("done=released")
    assert store.conversations.get(conversation_id)["status"] == "open"
    assert "vuelve al asistente" in client.get(released.headers["Location"]).get_data(as_text=True)
    assert post_form(client, page_path, page_path + "/close").headers["Location"].endswith("done=closed_now")
    assert store.conversations.get(conversation_id)["status"] == "closed"


def test_an_empty_reply_or_one_outside_the_window_is_refused_with_its_reason(client, worker, store):
    conversation_id = hand_over(client, worker)
    sign_in(client)
    page_path = f"/console/conversations/{conversation_id}"
    empty = post_form(client, page_path, page_path + "/reply", text="   ")
    assert empty.status_code == 400 and "1 to 4000" in empty.get_data(as_text=True)
    long_ago = datetime.now(timezone.utc) - timedelta(days=2)
    store.messages.collection.update_many({"direction": "inbound"}, {"$set": {"created_at": long_ago}})
    store.sessions.collection.update_many({}, {"$set": {"last_inbound_at": long_ago}})
    closed = post_form(client, page_path, page_path + "/reply", text="¿Sigues ahí?")
    body = closed.get_data(as_text=True)
    assert closed.status_code == 409 and "24-hour window" in body and "¿Sigues ahí?" in body  # the draft kept
    assert store.messages.collection.count_documents({"role": "agent"}) == 0


def test_an_unknown_or_malformed_conversation_is_a_404_page(client):
    sign_in(client)
    for path in ("/console/conversations/" + "0" * 32, "/console/conversations/nope",
                 "/console/conversations/" + "0" * 32 + "/transcript"):
        assert client.get(path).status_code == 404
    assert post_form(client, INBOX, "/console/conversations/nope/release").status_code == 404


def test_the_settings_form_saves_and_names_each_bad_field(client, store):
    sign_in(client)
    fields = {"company_name": "Fibra Clara", "tone": "cercano", "model": "gpt-4o-mini", "temperature": "0.3",
              "max_answer_chars": "1200", "greeting": "¡Hola!", "out_of_hours_message": "", "system_prompt": "",
              "business_hours_on": "1", "timezone": "Europe/Madrid", "hours_mon": "09:00-18:00"}
    saved = post_form(client, "/console/settings", "/console/settings", **fields)
    assert saved.status_code == 303 and saved.headers["Location"].endswith("done=saved")
    stored = store.bot_config.get()
    assert stored["temperature"] == 0.3 and stored["max_answer_chars"] == 1200
    assert stored["business_hours"] == {"timezone": "Europe/Madrid", "days": {"mon": "09:00-18:00"}}
    bad = post_form(client, "/console/settings", "/console/settings",
                    **{**fields, "company_name": "", "temperature": "mucho", "hours_tue": "18:00-09:00",
                       "timezone": "Marte/Olympus"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 400
    for field in ("company_name-error", "temperature-error", "business_hours-timezone-error",
                  "business_hours-days-error"):
        assert f'id="{field}"' in page, field
    assert store.bot_config.get() == stored  # nothing saved
    assert 'value="mucho"' in page  # what was typed stays in the form


def test_a_dry_run_is_queued_for_a_worker_and_sends_nothing(client, store, fake_twilio):
    sign_in(client)
    asked = post_form(client, "/console/knowledge", "/console/knowledge/ask", question="¿Cuánto cuesta la fibra?")
    assert asked.status_code == 303
    page = client.get(asked.headers["Location"]).get_data(as_text=True)
    assert "¿Cuánto cuesta la fibra?" in page and "Ningún proceso worker" in page  # no worker in this test
    assert store.db.dry_runs.count_documents({"status": "pending"}) == 1 and fake_twilio.requests == []
    too_long = post_form(client, "/console/knowledge", "/console/knowledge/ask", question="x" * 1001)
    assert too_long.status_code == 400
    assert client.get("/console/knowledge/ask/nope").status_code == 404


def test_the_language_switch_is_remembered_and_only_redirects_within_the_console(client):
    sign_in(client)
    switched = client.get("/console/language/en?next=/console/dashboard")
    assert switched.headers["Location"] == "/console/dashboard"
    assert "Sign out" in client.get(INBOX).get_data(as_text=True)
    assert client.get("/console/language/en?next=https://evil.example/").headers["Location"] == "/console/inbox"


def test_console_pages_forbid_inline_script_and_framing(client):
    sign_in(client)
    page = client.get(INBOX)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
