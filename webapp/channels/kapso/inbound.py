"""Kapso inbound: the signature (`X-Webhook-Signature`: the hex HMAC-SHA256 of the raw body, keyed
with the webhook's secret) and Kapso's own events, one or a batch (`X-Webhook-Batch: true` or
`"batch": true`, the events in `data`). A received message is Meta's message object with a `kapso`
part (or, in Kapso's older format, `message_type` and `content`); the customer's number is the
message's `from`, else the conversation's. Status events move our messages forward; the others
(conversation created, ended…) are not ours to act on.
"""
from __future__ import annotations

import hashlib
import hmac
import re

from webapp.channels.base import InboundMessage, InvalidInbound, StatusReport
from webapp.channels.kapso import NAME
from webapp.channels.meta.inbound import Delivery, message_of, parse_delivery, status_of

RECEIVED = "whatsapp.message.received"
STATUS_EVENTS = {"whatsapp.message.sent": "sent", "whatsapp.message.delivered": "delivered",
                 "whatsapp.message.read": "read", "whatsapp.message.failed": "failed"}
DIGITS = re.compile(r"[^0-9]")


def signature_is_valid(secret: str, body: bytes, header: str) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = header.strip().removeprefix("sha256=").lower()
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode("latin-1", "replace"))


def parse_events(payload: object, event_header: str, batch_header: str, max_chars: int) -> Delivery:
    """Meta's delivery forwarded, or Kapso's events; InvalidInbound if it is neither."""
    if isinstance(payload, dict) and payload.get("object") == "whatsapp_business_account":
        return parse_delivery(payload, max_chars, NAME)
    if not isinstance(payload, dict):
        raise InvalidInbound("body", "must be a JSON object: a Kapso event or Meta's delivery")
    event = event_header or payload.get("type") or payload.get("event")
    batched = batch_header.strip().lower() == "true" or payload.get("batch") is True
    items = payload.get("data") if batched else [payload]
    if not isinstance(items, list):
        raise InvalidInbound("data", "a batch must carry its events in data, a list")
    delivery = Delivery()
    for item in items:
        try:
            if event == RECEIVED:
                message = _received(item, max_chars)
                if message is not None:
                    delivery.messages.append(message)
            elif event in STATUS_EVENTS:
                delivery.statuses.append(_status(item, STATUS_EVENTS[event]))
        except InvalidInbound:
            delivery.skipped += 1
    return delivery


def _received(item: object, max_chars: int) -> InboundMessage | None:
    message, conversation = _parts(item)
    kapso = message.get("kapso") if isinstance(message.get("kapso"), dict) else {}
    if "outbound" in (kapso.get("direction"), message.get("direction")):
        return None  # one of ours, echoed
    kind = message.get("type") or message.get("message_type") or "text"
    if not isinstance(kind, str):
        raise InvalidInbound("message.type", "must be a message type")
    content = message.get(kind) if isinstance(message.get(kind), dict) else (
        {"body": message["content"]} if kind == "text" and isinstance(message.get("content"), str) else {})
    sender = next((DIGITS.sub("", value) for value in (message.get("from"), conversation.get("phone_number"),
                                                        message.get("phone_number")) if isinstance(value, str)), "")
    business = next((value for value in (item.get("phone_number_id"), kapso.get("phone_number_id"))
                     if isinstance(value, str)), "")
    cloud_api_message = {"from": sender, "id": message.get("id"), "type": kind, kind: content,
                         **{key: message[key] for key in ("context", "referral") if key in message}}
    return message_of(cloud_api_message, business if business.isdigit() else "", {}, max_chars, NAME)


def _status(item: object, status: str) -> StatusReport:
    message, _ = _parts(item)
    return status_of({**message, "status": status})


def _parts(item: object) -> tuple[dict, dict]:
    if not isinstance(item, dict) or not isinstance(item.get("message"), dict):
        raise InvalidInbound("message", "an event must carry its message")
    conversation = item.get("conversation")
    return item["message"], conversation if isinstance(conversation, dict) else {}
