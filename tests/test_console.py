"""The console through Flask's test client: signing in and out, the session cookie, CSRF, the
lock-out, and each page's forms doing what the admin API does. (The same pages in a real browser:
tests/test_console_browser.py.)"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest

from tests.conftest import ADMIN_TOKEN, AUTH_TOKEN, inbound_form, signed_post, work_until_done

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


class FormReader(HTMLParser):
    """The fields of one form as a browser submits them: text boxes without the line break that
    follows <textarea> and with CRLF line breaks, checkboxes only when checked."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.textarea = form_id, False, None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        elif self.inside and tag == "input" and (attrs.get("type") != "checkbox" or "checked" in attrs):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif self.inside and tag == "textarea":
            self.textarea = attrs["name"]
            self.fields[self.textarea] = ""

    def handle_data(self, data):
        if self.textarea:
            self.fields[self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea" and self.textarea:
            self.fields[self.textarea] = self.fields[self.textarea].removeprefix("\n").replace("\n", "\r\n")
            self.textarea = None
        elif tag == "form":
            self.inside = False


def form_of(page, form_id: str) -> dict[str, str]:
    reader = FormReader(form_id)
    reader.feed(page.get_data(as_text=True))
    return reader.fields


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
                                    "/console/\\evil", "/console/\r", "/console/%0d%0aSet-Cookie:x=1",
                                    "/console/../api/v1/whatsapp/stats", "/console/%2e%2e/metrics"])
def test_signing_in_and_switching_language_never_lead_off_the_console(client, target):
    assert client.get("/console/language/en", query_string={"next": target}).headers["Location"] == "/console/inbox"
    assert sign_in(client, next_path=target).headers["Location"] == "/console/inbox"


def test_a_form_sent_after_the_session_ended_leads_back_to_its_page_after_signing_in(client, worker):
    conversation_id = hand_over(client, worker)
    page = f"/console/conversations/{conversation_id}"
    expired = client.post(page + "/reply", data={"text": "Hola"}, headers={"Referer": "http://localhost" + page})
    assert expired.status_code == 303
    assert sign_in(client, next_path=page).headers["Location"] == page
    assert unquote(expired.headers["Location"]) == f"/console/sign-in?next={page}"


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
    transcript = client.get(page_path + "/live").get_data(as_text=True)
    assert "Hola, soy Marta" in transcript and "Persona" in transcript
    work_until_done(worker)
    assert fake_twilio.sent_messages()[-1]["body"] == "Hola, soy Marta"
    assert "tick-" in client.get(page_path + "/live").get_data(as_text=True)
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
                 "/console/conversations/" + "0" * 32 + "/live"):
        assert client.get(path).status_code == 404
    assert post_form(client, INBOX, "/console/conversations/nope/release").status_code == 404


def test_the_settings_form_saves_and_names_each_bad_field(client, store):
    sign_in(client)
    fields = {**form_of(client.get("/console/settings"), "settings"), "tone": "cercano", "temperature": "0.3",
              "max_answer_chars": "1200", "greeting": "¡Hola!", "business_hours_on": "1", "timezone": "Europe/Madrid",
              "hours_mon": "09:00-18:00"}
    saved = client.post("/console/settings", data=fields)
    assert saved.status_code == 303 and saved.headers["Location"].endswith("done=saved")
    stored = store.bot_config.get()
    assert stored["temperature"] == 0.3 and stored["max_answer_chars"] == 1200
    assert stored["business_hours"] == {"timezone": "Europe/Madrid", "days": {"mon": "09:00-18:00"}}
    bad = client.post("/console/settings", data={
        **form_of(client.get("/console/settings"), "settings"), "company_name": "", "temperature": "mucho",
        "hours_tue": "18:00-09:00", "timezone": "Marte/Olympus"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 400
    for field in ("company_name-error", "temperature-error", "business_hours-timezone-error",
                  "business_hours-days-error"):
        assert f'id="{field}"' in page, field
    assert store.bot_config.get() == stored  # nothing saved
    assert 'value="mucho"' in page  # what was typed stays in the form


def test_a_dry_run_waits_for_a_worker_shows_its_answer_and_sends_nothing(client, store, fake_twilio):
    sign_in(client)
    refused = post_form(client, "/console/knowledge", "/console/knowledge/ask", question="¿Cuánto cuesta la fibra?")
    assert refused.status_code == 409 and "Ningún proceso worker" in refused.get_data(as_text=True)
    assert store.db.dry_runs.count_documents({}) == 0  # not left to be answered whenever a worker starts
    store.heartbeats.beat("worker-1", datetime.now(timezone.utc), 40)
    asked = post_form(client, "/console/knowledge", "/console/knowledge/ask", question="¿Cuánto cuesta la fibra?")
    assert asked.status_code == 303
    pending = client.get(asked.headers["Location"]).get_data(as_text=True)
    assert "¿Cuánto cuesta la fibra?" in pending and 'http-equiv="refresh"' in pending and "pensando" in pending
    dry_run_id = asked.headers["Location"].rsplit("/", 1)[1]
    store.dry_runs.finish(dry_run_id, {"text": "Fibra 600 Mb: 32 €/mes", "outcome": "answered", "language": "es",
                                       "sources": ["planes.md"], "retrieval_seconds": 0.1, "answer_seconds": 0.2,
                                       "passages": [{"source": "planes.md", "title": "Planes", "score": 0.91,
                                                     "text": "Fibra 600 Mb"},
                                                    {"source": "baja.md", "title": "Baja", "score": 0.8, "text": "…"}]},
                          datetime.now(timezone.utc))
    answered = client.get(asked.headers["Location"]).get_data(as_text=True)
    assert "32 €/mes" in answered and "0.910" in answered and "http-equiv" not in answered
    assert answered.count("usada en la respuesta") == 1  # planes.md, not baja.md
    assert fake_twilio.requests == [] and store.messages.collection.count_documents({}) == 0
    too_long = post_form(client, "/console/knowledge", "/console/knowledge/ask", question="x" * 1001)
    assert too_long.status_code == 400
    assert client.get("/console/knowledge/ask/nope").status_code == 404


def test_a_failed_or_late_dry_run_says_so_and_stops_reloading(client, store):
    sign_in(client)
    now = datetime.now(timezone.utc)
    store.heartbeats.beat("worker-1", now, 40)
    failed = store.dry_runs.ask("¿Precio?", now)
    store.dry_runs.fail(failed, "RuntimeError", now)
    page = client.get(f"/console/knowledge/ask/{failed}").get_data(as_text=True)
    assert "La prueba falló: RuntimeError" in page and "http-equiv" not in page
    late = store.dry_runs.ask("¿Horario?", now - timedelta(minutes=5))
    page = client.get(f"/console/knowledge/ask/{late}").get_data(as_text=True)
    assert "Todavía sin respuesta" in page and "http-equiv" not in page


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


def test_the_settings_form_saved_unchanged_changes_nothing(client, store):
    sign_in(client)
    form = form_of(client.get("/console/settings"), "settings")
    first = {**form, "system_prompt": "Línea 1\r\nLínea 2\r\n", "greeting": "\r\n¡Hola!", "business_hours_on": "1",
             "hours_fri": "08:00-24:00"}
    assert client.post("/console/settings", data=first).status_code == 303
    saved, version = store.bot_config.get(), store.bot_config.meta()["version"]
    assert saved["system_prompt"] == "Línea 1\nLínea 2\n" and saved["greeting"] == "\n¡Hola!"
    again = client.post("/console/settings", data=form_of(client.get("/console/settings"), "settings"))
    assert again.status_code == 303
    assert store.bot_config.get() == saved and store.bot_config.meta()["version"] == version


def test_a_settings_form_made_before_someone_else_saved_is_refused(client, store):
    sign_in(client)
    mine, theirs = (form_of(client.get("/console/settings"), "settings") for _ in range(2))
    assert client.post("/console/settings", data={**theirs, "tone": "formal"}).status_code == 303
    refused = client.post("/console/settings", data={**mine, "greeting": "¡Buenas!"})
    assert refused.status_code == 409 and "Alguien ha guardado" in refused.get_data(as_text=True)
    assert store.bot_config.get()["tone"] == "formal" and store.bot_config.get()["greeting"] == ""
    assert client.post("/console/settings", data={**mine, "version": "x"}).status_code == 409


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_admin_per_ip": "4 per minute"}], indirect=True)
def test_a_signed_in_page_refreshing_itself_does_not_use_up_the_addresss_limit(client, worker):
    conversation_id = hand_over(client, worker)
    sign_in(client)  # two requests of the four
    for _ in range(10):
        assert client.get(f"/console/conversations/{conversation_id}/live").status_code == 200
    assert client.get("/api/v1/whatsapp/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    client.delete_cookie("console_session", path="/console/")
    refused = [client.get(INBOX).status_code for _ in range(3)]
    assert refused[-1] == 429


def test_no_page_reveals_a_secret(client, worker, store):
    conversation_id = hand_over(client, worker)
    store.heartbeats.beat("worker-1", datetime.now(timezone.utc), 40)
    sign_in(client)
    secret = client.get_cookie("console_session", path="/console/").value
    dry_run = post_form(client, "/console/knowledge", "/console/knowledge/ask", question="¿Precio?").headers["Location"]
    for path in (INBOX, f"/console/conversations/{conversation_id}", f"/console/conversations/{conversation_id}/live",
                 "/console/knowledge", dry_run, "/console/dashboard", "/console/settings", "/console/sign-in"):
        page = client.get(path).get_data(as_text=True)
        assert ADMIN_TOKEN not in page and AUTH_TOKEN not in page and secret not in page, path


def test_what_customers_send_is_shown_as_text_never_as_markup(client, worker, store):
    signed_post(client, inbound_form("<img src=x onerror=alert(1)> quiero hablar con una persona",
                                     ProfileName="<script>alert(1)</script>"))
    work_until_done(worker)
    conversation_id = store.conversations.collection.find_one()["_id"]
    sign_in(client)
    for path in (INBOX, f"/console/conversations/{conversation_id}", INBOX + "?q=<script>"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page, path
    page = client.get(f"/console/conversations/{conversation_id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_transcript_shows_attachments_places_reactions_held_replies_and_failures(client, store):
    now = datetime.now(timezone.utc)
    store.conversations.start("c" * 32, "34600111222", "meta", now, "Ana")
    messages = [
        {"direction": "inbound", "type": "image", "body": "mi factura", "media": [{"content_type": "image/jpeg"}]},
        {"direction": "inbound", "type": "location", "body": "", "location": {"label": "Oficina Centro"}},
        {"direction": "inbound", "type": "reaction", "body": "", "context": {"emoji": "👍"}},
        {"direction": "outbound", "kind": "answer", "body": "No llegó", "status": "failed",
         "error_message": "the number is not on WhatsApp", "sources": ["planes.md"], "outcome": "answered"},
        {"direction": "outbound", "kind": "template", "body": "Hola de nuevo", "status": "read"},
        {"direction": "outbound", "kind": "agent", "role": "agent", "body": "Te llamo mañana", "status": "held"},
    ]
    store.messages.collection.insert_many([{**m, "conversation_id": "c" * 32, "wa_id": "34600111222",
                                            "created_at": now + timedelta(seconds=n), "dedup_key": str(n)}
                                           for n, m in enumerate(messages)])
    sign_in(client)
    live = client.get(f"/console/conversations/{'c' * 32}/live").get_data(as_text=True)
    for shown in ("adjunto (image)", "mi factura", "ubicación: Oficina Centro", "reacción 👍", "tick-failed",
                  "the number is not on WhatsApp", "planes.md", "tick-read", "retenida hasta que el cliente conteste"):
        assert shown in live, shown
    assert live.index("mi factura") < live.index("Oficina Centro") < live.index("Te llamo mañana")


def test_a_closed_conversation_or_one_the_customer_never_wrote_in_offers_no_reply(client, worker, store):
    conversation_id = hand_over(client, worker)
    store.conversations.close(conversation_id, datetime.now(timezone.utc), "test")
    store.conversations.start("d" * 32, "34600999888", "twilio", datetime.now(timezone.utc))
    sign_in(client)
    closed = client.get(f"/console/conversations/{conversation_id}").get_data(as_text=True)
    assert "cerrada" in closed and 'id="reply"' not in closed and "Ventana" not in closed
    assert "Con una persona desde" not in closed
    never = client.get(f"/console/conversations/{'d' * 32}").get_data(as_text=True)
    assert "no ha escrito en esta conversación" in never and 'id="reply"' not in never


def test_the_inbox_pages_without_counting_every_conversation(client, store):
    now = datetime.now(timezone.utc)
    for n in range(27):
        store.conversations.start(f"{n:032x}", f"346001{n:05d}", "twilio", now - timedelta(minutes=n))
    sign_in(client)
    first = client.get(INBOX).get_data(as_text=True)
    assert first.count('class="row open"') == 25 and "page=2" in first and 'rel="prev"' not in first
    second = client.get(INBOX + "?page=2").get_data(as_text=True)
    assert second.count('class="row open"') == 2 and 'rel="next"' not in second and "page=1" in second
    assert "No hay más conversaciones" in client.get(INBOX + "?page=9").get_data(as_text=True)
