"""Twilio inbound: check a request's signature and turn its form into an `InboundMessage` (the
webhook) or a `StatusReport` (a delivery status callback).

Twilio adds fields without notice; unknown ones are ignored.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from bson import ObjectId
from twilio.request_validator import RequestValidator

from webapp.channels.base import InboundMessage, InvalidInbound, StatusReport
from webapp.config import WHATSAPP_ADDRESS
from webapp.formatting import strip_control_chars

log = logging.getLogger(__name__)

CHANNEL = "twilio"

MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}\Z")
MAX_MEDIA = 10
STATUS_WORD = re.compile(r"^[a-z_]{1,32}\Z")
# ASCII digits only: int() also takes "²", "٣" and "1_0", and Twilio's counts and codes are short.
SMALL_NUMBER = re.compile(r"[0-9]{1,6}")
MESSAGE_TYPE = re.compile(r"[a-z_]{1,32}")
UNSAFE_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def signature_is_valid(auth_token: str, url: str, form, signature: str) -> bool:
    """Twilio's own check: HMAC-SHA1 over the exact public URL and the sorted POST parameters."""
    return bool(signature) and RequestValidator(auth_token).validate(url, form, signature)


def parse_inbound(form, max_chars: int) -> InboundMessage:
    """Validate the fields we rely on; raise InvalidInbound naming the first bad one."""
    sender = form.get("From", "").strip()
    if not WHATSAPP_ADDRESS.match(sender):
        raise InvalidInbound("From", "From must be a WhatsApp address like whatsapp:+34600111222")
    message_sid = _message_sid(form)
    media = _media(form)
    text = strip_control_chars(form.get("Body", "") or form.get("ButtonText", "")).strip()
    if len(text) > max_chars:
        raise InvalidInbound("Body", f"Body is longer than {max_chars} characters")
    location = _location(form)
    profile_name = strip_control_chars(form.get("ProfileName", ""))[:100].strip()
    message_type = form.get("MessageType", "").strip().lower()
    if not MESSAGE_TYPE.fullmatch(message_type):
        message_type = _type_of(text, media, location, bool(form.get("ButtonText")))
    business = form.get("To", "").strip()  # our number it was sent to: the reply goes out from it
    return InboundMessage(CHANNEL, business if WHATSAPP_ADDRESS.match(business) else "", message_sid,
                          sender.removeprefix("whatsapp:+"), text, profile_name, media, location, message_type,
                          _context(form))


def _context(form) -> dict:
    """What the message answers or came from, as Twilio names it: a button's payload, the message
    it replies to, a click-to-WhatsApp ad."""
    found = {name: strip_control_chars(form.get(field, ""))[:200].strip()
             for name, field in (("button_payload", "ButtonPayload"), ("replied_to", "OriginalRepliedMessageSid"),
                                 ("referral_source", "ReferralSourceUrl"))}
    return {name: value for name, value in found.items() if value}


def _type_of(text: str, media: list[dict], location: dict | None, button: bool) -> str:
    """What the message is, when Twilio did not say (MessageType is not in every webhook)."""
    if location:
        return "location"
    if media:
        return media[0]["content_type"].partition("/")[0] or "media"
    if button:
        return "button"
    return "text" if text else "unsupported"


def _location(form) -> dict | None:
    """A shared location, or None (also when its coordinates are not numbers on the globe: the
    message is still answered, asking for text)."""
    try:
        latitude, longitude = float(form.get("Latitude", "")), float(form.get("Longitude", ""))
    except ValueError:
        return None
    if not (abs(latitude) <= 90 and abs(longitude) <= 180):  # also false for nan
        return None
    place = {name.lower(): strip_control_chars(form.get(name, ""))[:200].strip() for name in ("Address", "Label")}
    return {"latitude": latitude, "longitude": longitude, **{k: v for k, v in place.items() if v}}


def _message_sid(form) -> str:
    message_sid = form.get("MessageSid", "").strip()
    if not MESSAGE_SID.match(message_sid):
        raise InvalidInbound("MessageSid", "MessageSid must be a Twilio message SID (SM followed by 32 hex digits)")
    return message_sid


def _media(form) -> list[dict]:
    """Media is described, never fetched here; a URL that is not Twilio's is dropped, so nothing
    downstream can be made to fetch from another host."""
    count = form.get("NumMedia", "").strip() or "0"
    if not SMALL_NUMBER.fullmatch(count):
        raise InvalidInbound("NumMedia", "NumMedia must be a whole number")
    media = []
    for i in range(min(int(count), MAX_MEDIA)):
        url = form.get(f"MediaUrl{i}", "")
        if not is_twilio_media_url(url):
            log.warning("MediaUrl%d dropped: not an https URL on a twilio.com host", i)
            continue
        media.append({"url": url, "content_type": strip_control_chars(form.get(f"MediaContentType{i}", ""))[:100]})
    return media


def is_twilio_media_url(url: str) -> bool:
    """An https URL on a twilio.com host, read as a browser reads it: one with a backslash (which
    browsers take for `/`: `https://evil.example\\@api.twilio.com/x` goes to evil.example), user
    info, whitespace or control characters is refused rather than second-guessed."""
    if "\\" in url or UNSAFE_URL_CHARS.search(url):
        return False
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. an invalid port or IPv6 literal
        return False
    return (parts.scheme == "https" and "@" not in parts.netloc
            and (host == "twilio.com" or host.endswith(".twilio.com")))


def parse_status_report(args, form) -> StatusReport:
    """Validate a status callback: `ref` in the query, Twilio's fields in the form."""
    reference = args.get("ref", "")
    if not ObjectId.is_valid(reference):
        raise InvalidInbound("ref", "ref must be the message id this app gave Twilio with the message")
    message_sid = _message_sid(form)
    status = form.get("MessageStatus", "").strip()
    if not STATUS_WORD.match(status):
        raise InvalidInbound("MessageStatus", "MessageStatus must be a Twilio status such as delivered or read")
    error_code = form.get("ErrorCode", "").strip()
    if error_code and not SMALL_NUMBER.fullmatch(error_code):
        raise InvalidInbound("ErrorCode", "ErrorCode must be a Twilio error code (a number)")
    return StatusReport(ObjectId(reference), message_sid, status, int(error_code) if error_code else None)
