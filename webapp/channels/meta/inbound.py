"""Meta inbound: the webhook's signature (`X-Hub-Signature-256`: HMAC-SHA256 of the raw body,
keyed with the app secret) and its deliveries, parsed into `InboundMessage`s and `StatusReport`s.

A delivery holds entries of changes, each with the messages and statuses of one business number
(`metadata.phone_number_id`). Meta adds fields without notice: unknown ones are ignored. A message
or status that cannot be read is skipped, and the rest of the delivery still taken: Meta disables
a webhook that keeps failing, and redelivers a failed one for days.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
from dataclasses import dataclass, field

from webapp.channels.base import InboundMessage, InvalidInbound, StatusReport
from webapp.formatting import strip_control_chars

log = logging.getLogger(__name__)

WA_ID = re.compile(r"[0-9]{6,15}")
PHONE_NUMBER_ID = re.compile(r"[0-9]{1,30}")
WAMID = re.compile(r"[A-Za-z0-9._=+/:-]{1,255}")  # "wamid." and base64
WORD = re.compile(r"[a-z_]{1,32}")
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
CAPTIONED = ("image", "video", "document")


def signature_is_valid(app_secret: str, body: bytes, header: str) -> bool:
    """Meta's check: `sha256=` and the hex HMAC-SHA256 of the body bytes as received."""
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return bool(header) and hmac.compare_digest(expected.encode(), header.strip().encode("latin-1", "replace"))


@dataclass
class Delivery:
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusReport] = field(default_factory=list)
    skipped: int = 0  # messages or statuses that could not be read


def parse_delivery(payload: object, max_chars: int, channel: str) -> Delivery:
    """The messages and statuses of a delivery, in the order Meta sent them, as `channel`'s (Meta's,
    or a provider's that forwards Meta's deliveries); InvalidInbound if it is not a WhatsApp
    delivery at all."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise InvalidInbound("object", "not a WhatsApp Business Account delivery (object must be "
                                       "whatsapp_business_account)")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise InvalidInbound("entry", "entry must be a list")
    delivery = Delivery()
    for change in (c for e in entries if isinstance(e, dict) for c in _list(e.get("changes"))):
        if isinstance(change, dict) and change.get("field") == "messages" and isinstance(change.get("value"), dict):
            _read_change(change["value"], max_chars, channel, delivery)
    return delivery


def _read_change(value: dict, max_chars: int, channel: str, delivery: Delivery) -> None:
    business = str((value.get("metadata") or {}).get("phone_number_id", "")) \
        if isinstance(value.get("metadata"), dict) else ""
    names = {contact["wa_id"]: _text(contact["profile"].get("name"), 100)
             for contact in _list(value.get("contacts")) if isinstance(contact, dict)
             and isinstance(contact.get("wa_id"), str) and isinstance(contact.get("profile"), dict)}
    for error in _list(value.get("errors")):
        log.warning("Meta reported an error with a delivery: %s", error)
    for item, parse in [(m, message_of) for m in _list(value.get("messages"))] + \
                       [(s, status_of) for s in _list(value.get("statuses"))]:
        try:
            if not PHONE_NUMBER_ID.fullmatch(business):
                raise InvalidInbound("metadata.phone_number_id", "the business number's id is missing")
            parsed = parse(item, business, names, max_chars, channel)
        except InvalidInbound as exc:
            delivery.skipped += 1
            log.warning("skipped an item of a Meta delivery: %s (%s)", exc.message, exc.field)
            continue
        (delivery.messages if isinstance(parsed, InboundMessage) else delivery.statuses).append(parsed)


def message_of(item: object, business: str, names: dict, max_chars: int, channel: str) -> InboundMessage:
    """One Cloud API message object (Meta's, or one a provider sends in the same shape)."""
    if not isinstance(item, dict):
        raise InvalidInbound("messages", "a message must be an object")
    sender = str(item.get("from", ""))
    if not WA_ID.fullmatch(sender):
        raise InvalidInbound("messages.from", "from must be the customer's number, 6 to 15 digits")
    wamid = _wamid(item.get("id"), "messages.id")
    kind = item.get("type") if isinstance(item.get("type"), str) and WORD.fullmatch(item["type"]) else "unsupported"
    content = item.get(kind) if isinstance(item.get(kind), dict) else {}
    body, context = _body_and_context(kind, content)
    if len(body) > max_chars:
        raise InvalidInbound("messages.text.body", f"the text is longer than {max_chars} characters")
    context.update(_replied_to(item))
    media = [_media(kind, content)] if kind in MEDIA_TYPES and content else []
    return InboundMessage(channel, business, wamid, sender, body, names.get(sender, ""), media,
                          _location(content) if kind == "location" else None, kind, context)


def _body_and_context(kind: str, content: dict) -> tuple[str, dict]:
    """The text the customer sent (a caption, a tapped button's title…) and what to keep beside it."""
    if kind == "text":
        return _text(content.get("body")), {}
    if kind in CAPTIONED:
        return _text(content.get("caption")), {}
    if kind == "interactive":  # a reply button or list row tapped: its title, and its id
        reply = content.get(content.get("type")) if isinstance(content.get("type"), str) else None
        if isinstance(reply, dict):
            return _text(reply.get("title"), 200), _kept(button_id=reply.get("id"))
        return "", {}
    if kind == "button":  # a template's quick-reply button
        return _text(content.get("text"), 200), _kept(button_payload=content.get("payload"))
    if kind == "reaction":
        return "", _kept(reacted_to=content.get("message_id"), emoji=content.get("emoji"))
    return "", {}


def _replied_to(item: dict) -> dict:
    context, referral = item.get("context"), item.get("referral")
    found = {}
    if isinstance(context, dict):
        found.update(_kept(replied_to=context.get("id")))
    if isinstance(referral, dict):  # a click-to-WhatsApp ad
        found.update(_kept(referral_source=referral.get("source_url"), referral_headline=referral.get("headline")))
    return found


def _media(kind: str, content: dict) -> dict:
    """Described, never fetched: Meta's media id (fetching it needs the access token)."""
    media = {"id": _text(content.get("id"), 100), "content_type": _text(content.get("mime_type"), 100) or kind}
    if kind == "document" and content.get("filename"):
        media["filename"] = _text(content.get("filename"), 200)
    return media


def _location(content: dict) -> dict | None:
    try:
        latitude, longitude = float(content.get("latitude")), float(content.get("longitude"))
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(latitude) and math.isfinite(longitude) and abs(latitude) <= 90 and abs(longitude) <= 180):
        return None
    place = {"address": _text(content.get("address"), 200), "label": _text(content.get("name"), 200)}
    return {"latitude": latitude, "longitude": longitude, **{k: v for k, v in place.items() if v}}


def status_of(item: object, business: str = "", names: dict | None = None, max_chars: int = 0,
              channel: str = "") -> StatusReport:
    """One Cloud API status object."""
    if not isinstance(item, dict):
        raise InvalidInbound("statuses", "a status must be an object")
    status = item.get("status")
    if not isinstance(status, str) or not WORD.fullmatch(status):
        raise InvalidInbound("statuses.status", "status must be a word such as delivered or read")
    errors = [e for e in _list(item.get("errors")) if isinstance(e, dict)]
    code = errors[0].get("code") if errors else None
    recipient = item.get("recipient_id")
    return StatusReport(None, _wamid(item.get("id"), "statuses.id"), status,
                        code if isinstance(code, int) and not isinstance(code, bool) else None,
                        recipient if isinstance(recipient, str) and WA_ID.fullmatch(recipient) else "")


def _wamid(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not WAMID.fullmatch(value):
        raise InvalidInbound(field_name, "must be a WhatsApp message id (wamid.…)")
    return value


def _text(value: object, limit: int | None = None) -> str:
    text = strip_control_chars(value).strip() if isinstance(value, str) else ""
    return text[:limit] if limit else text


def _kept(**values: object) -> dict:
    """The string values among these, cleaned and bounded."""
    return {name: _text(value, 200) for name, value in values.items() if isinstance(value, str) and value.strip()}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []
