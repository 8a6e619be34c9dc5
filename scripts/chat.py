"""Talk to the running assistant as a WhatsApp customer would.

    python scripts/chat.py [--channel twilio|meta|kapso|360dialog] [--url URL] [--from whatsapp:+34600000001]
                           [--name Ana]

Each line you type is posted to the channel's webhook exactly as its provider would post it:
Twilio's form fields with a fresh MessageSid and an X-Twilio-Signature made with
TWILIO_AUTH_TOKEN, a Meta delivery with a fresh wamid signed with META_APP_SECRET
(X-Hub-Signature-256), Kapso's whatsapp.message.received event signed with KAPSO_WEBHOOK_SECRET
(X-Webhook-Signature), or a Meta delivery as 360dialog forwards it, carrying D360_WEBHOOK_SECRET. The bot's reply is printed as the customer receives it, one WhatsApp
message per block. Replies are read from the database (MONGODB_URI), so this works in dry-run as
well as with real credentials.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import time
import uuid
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from webapp.config import ConfigError, load_settings  # noqa: E402
from webapp.db import open_store  # noqa: E402
from webapp.db.messages import OPEN_OUTBOUND  # noqa: E402

WEBHOOK_PATH = "/api/v1/whatsapp/webhook"
WEBHOOK_PATHS = {"twilio": WEBHOOK_PATH, "meta": "/api/v1/meta/webhook", "kapso": "/api/v1/kapso/webhook",
                 "360dialog": "/api/v1/360dialog/webhook"}
SANDBOX_SENDER = "whatsapp:+14155238886"
LOCAL_PHONE_NUMBER_ID = "100000000000001"  # Meta's number when META_PHONE_NUMBER_ID is not set (dry-run)


def twilio_form(sender: str, to: str, body: str, name: str, account_sid: str) -> dict[str, str]:
    """The fields of a real Twilio WhatsApp webhook (see ../shared/FACTS.md for a capture)."""
    sid = "SM" + uuid.uuid4().hex
    return {
        "SmsMessageSid": sid, "NumMedia": "0", "ProfileName": name, "SmsSid": sid,
        "WaId": sender.removeprefix("whatsapp:+"), "SmsStatus": "received", "Body": body, "To": to,
        "NumSegments": "1", "ReferralNumMedia": "0", "MessageSid": sid, "AccountSid": account_sid,
        "From": sender, "ApiVersion": "2010-04-01",
    }


def meta_delivery(sender_wa_id: str, phone_number_id: str, message: dict, name: str = "") -> dict:
    """A Meta webhook delivery of one customer message (`message`: its type-specific part, e.g.
    {"type": "text", "text": {"body": "hola"}}), shaped as Meta's own examples are."""
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
                  "contacts": [{"profile": {"name": name}, "wa_id": sender_wa_id}],
                  "messages": [{"from": sender_wa_id, "id": "wamid." + uuid.uuid4().hex,
                                "timestamp": str(int(time.time())), **message}]}}]}]}


def kapso_event(sender_wa_id: str, phone_number_id: str, text: str) -> dict:
    """Kapso's whatsapp.message.received event for one text (its current format)."""
    return {"message": {"id": "wamid." + uuid.uuid4().hex, "timestamp": str(int(time.time())), "type": "text",
                        "text": {"body": text},
                        "kapso": {"direction": "inbound", "phone_number": f"+{sender_wa_id}",
                                  "phone_number_id": phone_number_id}},
            "conversation": {"phone_number": f"+{sender_wa_id}", "status": "active"},
            "phone_number_id": phone_number_id}


def kapso_signature(secret: str, body: bytes) -> str:
    """X-Webhook-Signature, as Kapso signs an event."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def meta_signature(app_secret: str, body: bytes) -> str:
    """X-Hub-Signature-256, as Meta signs a delivery."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def post_signed(url: str, signed_url: str, form: dict[str, str], auth_token: str) -> requests.Response:
    signature = RequestValidator(auth_token).compute_signature(signed_url, form)
    return requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=15)


def wait_for_reply(store, message_sid: str, timeout_seconds: float) -> tuple[str, list[dict]]:
    """The inbound message's final status and the reply parts sent for it."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        inbound = store.messages.find_inbound(message_sid)
        if inbound and inbound["status"] != "received":
            replies = store.messages.replies_to(inbound["_id"])
            if all(r["status"] not in OPEN_OUTBOUND for r in replies):
                return inbound["status"], replies
        time.sleep(0.2)
    return "timeout", []


def show(status: str, replies: list[dict], out) -> None:
    if status == "timeout":
        print("(no reply yet: is the worker running? it may still answer later)", file=out)
    elif not replies:
        print(f"(no reply: message {status})", file=out)
    for reply in replies:
        label = "bot" if reply["parts"] == 1 else f"bot [{reply['part'] + 1}/{reply['parts']}]"
        failed = f"  (FAILED: {reply.get('error_code')} {reply.get('error_message')})" if reply["status"] == "failed" else ""
        print(f"{label}> {reply['body']}{failed}\n", file=out)


def twilio_poster(settings, url: str, sender: str, name: str):
    """What posts a line as Twilio would; None (and a message) when Twilio's secret is missing."""
    token = settings.twilio_auth_token.get_secret_value()
    if not token:
        print("error: TWILIO_AUTH_TOKEN is not set (run `make run` once, it generates a local one)", file=sys.stderr)
        return None
    signed_url = settings.public_base_url + WEBHOOK_PATH if settings.public_base_url else url
    to = settings.twilio_whatsapp_from or SANDBOX_SENDER
    account_sid = settings.twilio_account_sid or "AC" + "0" * 32

    def post(text: str) -> tuple[requests.Response, str]:
        form = twilio_form(sender, to, text, name, account_sid)
        return post_signed(url, signed_url, form, token), form["MessageSid"]

    return post


def meta_poster(settings, url: str, sender: str, name: str):
    """What posts a line as Meta would; None (and a message) when Meta's secret is missing."""
    return cloud_api_poster(settings.meta_app_secret.get_secret_value(), "META_APP_SECRET",
                            settings.meta_phone_number_id, url, sender, name,
                            lambda secret, body: {"X-Hub-Signature-256": meta_signature(secret, body)})


def d360_poster(settings, url: str, sender: str, name: str):
    """What posts a line as 360dialog would; None (and a message) when its secret is missing."""
    return cloud_api_poster(settings.d360_webhook_secret.get_secret_value(), "D360_WEBHOOK_SECRET", "", url, sender,
                            name, lambda secret, _: {"X-Webhook-Secret": secret})


def cloud_api_poster(secret: str, setting: str, phone_number_id: str, url: str, sender: str, name: str, auth):
    if not secret:
        print(f"error: {setting} is not set (run `make run` once, it generates a local one)", file=sys.stderr)
        return None

    def post(text: str) -> tuple[requests.Response, str]:
        delivery = meta_delivery(sender.removeprefix("whatsapp:+"), phone_number_id or LOCAL_PHONE_NUMBER_ID,
                                 {"type": "text", "text": {"body": text}}, name)
        body = json.dumps(delivery).encode()
        response = requests.post(url, data=body, timeout=15,
                                 headers={"Content-Type": "application/json", **auth(secret, body)})
        return response, delivery["entry"][0]["changes"][0]["value"]["messages"][0]["id"]

    return post


def kapso_poster(settings, url: str, sender: str, name: str):
    """What posts a line as Kapso would; None (and a message) when Kapso's secret is missing."""
    secret = settings.kapso_webhook_secret.get_secret_value()
    if not secret:
        print("error: KAPSO_WEBHOOK_SECRET is not set (run `make run` once, it generates a local one)",
              file=sys.stderr)
        return None
    phone_number_id = settings.kapso_phone_number_id or LOCAL_PHONE_NUMBER_ID

    def post(text: str) -> tuple[requests.Response, str]:
        event = kapso_event(sender.removeprefix("whatsapp:+"), phone_number_id, text)
        body = json.dumps(event).encode()
        response = requests.post(url, data=body, timeout=15, headers={
            "Content-Type": "application/json", "X-Webhook-Event": "whatsapp.message.received",
            "X-Webhook-Signature": kapso_signature(secret, body)})
        return response, event["message"]["id"]

    return post


POSTERS = {"twilio": twilio_poster, "meta": meta_poster, "kapso": kapso_poster, "360dialog": d360_poster}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channel", choices=sorted(POSTERS), default="twilio", help="the provider to write as")
    parser.add_argument("--url", help="the webhook to post to (default: the channel's on 127.0.0.1:8000)")
    parser.add_argument("--from", dest="sender", default="whatsapp:+34600000001", help="the customer's number")
    parser.add_argument("--name", default="Cliente de prueba", help="the customer's WhatsApp profile name")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for each reply")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = args.url or "http://127.0.0.1:8000" + WEBHOOK_PATHS[args.channel]
    post = POSTERS[args.channel](settings, url, args.sender, args.name)
    if post is None:
        return 2
    store = open_store(settings.mongodb_uri)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Chatting as {args.sender} with {url} ({args.channel}). Ctrl-D to quit.\n")
    while True:
        if interactive:
            print("tú> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        try:
            response, external_id = post(line.strip())
        except requests.RequestException as exc:
            print(f"(could not reach the webhook: {exc})")
            return 1
        if response.status_code != 200:
            print(f"(webhook answered HTTP {response.status_code}: {response.text.strip()})")
            continue
        show(*wait_for_reply(store, external_id, args.timeout), out=sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
