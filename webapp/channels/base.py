"""What a channel (one way a business reaches WhatsApp: Twilio, Meta's Cloud API, …) gives the rest
of the app, in the rest of the app's words. The worker, the inbox, handoff, leads, formatting and
`rag/` know these and no provider.

A channel's package (`webapp/channels/<name>/`) is its adapter at the edge: a blueprint that
authenticates the provider's deliveries and parses them into `InboundMessage`s and `StatusReport`s
for `webapp.inbox`, and a `Channel` that sends a reply part, knows the provider's limits and says
of a refusal whether to retry, give up or wait for the customer (`SendError.failure`).
"""
from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from bson import ObjectId


class InvalidInbound(ValueError):
    """A delivery, or a field of it, that cannot be accepted; names the field."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message, as every channel hands it over."""

    channel: str
    business: str  # the business number the customer wrote to, as its channel names it
    external_id: str  # the provider's id for the message (Twilio's MessageSid, Meta's wamid)
    wa_id: str  # digits of the customer's number: "34600111222"
    body: str  # the text, a media caption, a tapped button's title; "" when there is none
    profile_name: str = ""
    media: list[dict] = field(default_factory=list)  # described, never fetched
    location: dict | None = None  # latitude, longitude, and address and label when WhatsApp sent them
    type: str = "text"  # text, image, audio, location, reaction, button, interactive…
    context: dict = field(default_factory=dict)  # what it replies to, a button's id, an ad's referral


@dataclass(frozen=True)
class StatusReport:
    """How far a message we sent has got, as the provider reports it."""

    message_id: ObjectId | None  # ours, when the provider gives it back (Twilio's `ref`); else found by:
    external_id: str  # the provider's id for it
    status: str  # sent, delivered, read, failed… (webapp.db.messages ranks them)
    error_code: int | None = None
    wa_id: str = ""  # the customer it went to, when the report says (Meta's recipient_id)


@dataclass(frozen=True)
class SendResult:
    external_id: str
    status: str


class Failure(enum.Enum):
    RETRY = "retry"  # busy, failing or out of reach, and the message certainly not sent: try again later
    PERMANENT = "permanent"  # refused for good (a bad number, a blocked customer…)
    WINDOW_CLOSED = "window_closed"  # the customer's 24-hour window is closed: only a template would go
    UNCONFIRMED = "unconfirmed"  # no answer in time: it may have gone out, so never sent again


class SendError(Exception):
    """The provider refused a message or could not be reached (`http_status` None)."""

    def __init__(self, message: str, failure: Failure, http_status: int | None = None, code: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.failure = failure
        self.http_status = http_status
        self.code = code
        self.retry_after = retry_after  # seconds the provider asked us to wait

    @property
    def retryable(self) -> bool:
        return self.failure is Failure.RETRY

    @property
    def maybe_sent(self) -> bool:
        return self.failure is Failure.UNCONFIRMED


class ReplyNumbers(Protocol):
    """Where a channel keeps, for every process, the form of a customer's number its provider
    accepts replies to when that is not the number the customer wrote from (`whatsapp_sessions`)."""

    def reply_number(self, channel: str, wa_id: str) -> str | None: ...

    def remember_reply_number(self, channel: str, wa_id: str, number: str) -> None: ...


@dataclass(frozen=True)
class Button:
    """A quick-reply button: its `id` comes back when the customer taps it (Meta's `button_reply`,
    Twilio's `ButtonPayload`), whatever the title."""

    id: str
    title: str


@dataclass(frozen=True)
class Template:
    """A message template the business had approved, the only thing WhatsApp lets a business send
    after the customer's 24-hour window: Meta's template `name` and `language`, or Twilio's Content
    SID as `name`; `variables` fill its {{1}}, {{2}}…"""

    name: str
    language: str = ""
    variables: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """What stands for it where its text is not known (the message's body, the console)."""
        return f"[template {self.name}{' ' + self.language if self.language else ''}]"

    def record(self) -> dict:
        """As stored with the message that sends it (`from_record` reads it back)."""
        return {"name": self.name, "language": self.language, "variables": list(self.variables)}

    @classmethod
    def from_record(cls, record: dict) -> Template:
        return cls(record["name"], record.get("language", ""), tuple(record.get("variables", ())))


class Channel:
    """Sends through one provider. `dry_run` ones store replies without sending them."""

    name: str
    max_part_chars: int  # the longest text the provider takes in one message
    sends_buttons: bool = False  # whether `send_buttons` works; the caller sends a text version if not
    dry_run: bool = False

    def send_text(self, business: str, wa_id: str, text: str, reference: str = "") -> SendResult:
        """Send one text to the customer from `business` ("" for the channel's default number);
        `reference` is our id for the message, given back with the provider's status reports."""
        raise NotImplementedError

    def send_buttons(self, business: str, wa_id: str, text: str, buttons: list[Button],
                     reference: str = "") -> SendResult:
        """Send a text with quick-reply buttons under it, where `shows_buttons`."""
        raise SendError(f"{self.name} cannot send buttons", Failure.PERMANENT)

    def shows_buttons(self, text: str, buttons: list[Button]) -> bool:
        """Whether `send_buttons` takes this text and these buttons (else the text goes alone)."""
        return self.sends_buttons

    def send_template(self, business: str, wa_id: str, template: Template, reference: str = "") -> SendResult:
        """Send an approved template (what goes out after the customer's 24-hour window)."""
        raise NotImplementedError

    def acknowledge(self, business: str, external_id: str) -> None:
        """Tell the customer their message is being answered (read, typing), where the provider can;
        a SendError if it could not."""

    def check(self) -> dict:
        """Whether the credentials work, asked of the provider: `{"status": "ok" | "error", …}`."""
        raise NotImplementedError

    def describe(self) -> dict:
        """The channel's settings, secrets masked (for `diag`)."""
        raise NotImplementedError


class DryRunChannel(Channel):
    """Stands in for a channel whose credentials are not set: replies are stored, not sent, as
    `like` (the channel's class) would take them."""

    dry_run = True

    def __init__(self, name: str, like: type[Channel], label: str, missing: str):
        self.name = name
        self.max_part_chars = like.max_part_chars
        self.sends_buttons = like.sends_buttons
        self.label = label  # the provider's name, for people
        self.missing = missing  # the settings that would make it send

    def send_text(self, business: str, wa_id: str, text: str, reference: str = "") -> SendResult:
        return self.dry_run_result()

    def send_buttons(self, business: str, wa_id: str, text: str, buttons: list[Button],
                     reference: str = "") -> SendResult:
        return self.dry_run_result() if self.sends_buttons else super().send_buttons(business, wa_id, text, buttons)

    def send_template(self, business: str, wa_id: str, template: Template, reference: str = "") -> SendResult:
        return self.dry_run_result()

    @staticmethod
    def dry_run_result() -> SendResult:
        return SendResult("DR" + uuid.uuid4().hex, "dry_run")

    def check(self) -> dict:
        return {"status": "error", "message": f"{self.label} is not configured (dry-run): set {self.missing}",
                self.name: None}

    def describe(self) -> dict:
        return {"dry_run": True, "to_send": self.missing}
