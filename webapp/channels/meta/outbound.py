"""Cloud API outbound: send through Meta's Graph API (`POST /{version}/{phone_number_id}/messages`,
a bearer access token) or a provider that re-sells it with the same request shapes (Kapso,
360dialog: their own base URL and key), mark a customer's message read with the typing indicator,
and read the number's details (`test`).

Graph errors come as `{"error": {"code", "message", "error_subcode", …}}`; `failure_of` says which
to retry. Mexican and Argentine numbers reach us with the mobile digit (`521…`, `549…`), while a
number registered without it (Meta's allowed list of a number in development) refuses a reply to
that form with 131030: such a reply is tried once more without the digit, and what worked is
remembered for that customer: in `whatsapp_sessions`, for every process, and in this process's
memory, so only such numbers cost a database read, once per customer and process.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import requests
from pymongo.errors import PyMongoError

from webapp.channels.base import Button, Channel, Failure, ReplyNumbers, SendError, SendResult, Template
from webapp.config import masked

log = logging.getLogger(__name__)

RETRY_CODES = {
    1, 2,  # API unknown / service temporarily unavailable
    4, 80007, 130429, 131056,  # rate limits: app, account, throughput, pair (too many to one customer)
    131000, 131016, 133004,  # something went wrong / service unavailable / server temporarily unavailable
}
WINDOW_CLOSED = 131047  # more than 24 hours since the customer's last message: only a template goes
NOT_IN_ALLOWED_LIST = 131030
# country code + mobile digit → country code (Mexico 52 1, Argentina 54 9), for 13-digit numbers
MOBILE_DIGIT_PREFIXES = {"521": "52", "549": "54"}
PHONE_FIELDS = "display_phone_number,verified_name,quality_rating,code_verification_status"
# An interactive message's limits: more, or longer, is refused (131009, "parameter value is not valid")
MAX_BUTTONS, MAX_BUTTON_TITLE, MAX_BUTTON_ID, MAX_INTERACTIVE_BODY = 3, 20, 256, 1024


def failure_of(http_status: int | None, code: int | None) -> Failure:
    if code == WINDOW_CLOSED:
        return Failure.WINDOW_CLOSED
    if http_status is None or http_status == 429 or http_status >= 500 or code in RETRY_CODES:
        return Failure.RETRY
    return Failure.PERMANENT


def without_mobile_digit(wa_id: str) -> str | None:
    """521XXXXXXXXXX → 52XXXXXXXXXX, 549XXXXXXXXXX → 54XXXXXXXXXX; None for other numbers."""
    prefix = MOBILE_DIGIT_PREFIXES.get(wa_id[:3])
    return prefix + wa_id[3:] if prefix and len(wa_id) == 13 else None


def message(to: str, kind: str, content: dict) -> dict:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": kind, kind: content}


def text_message(to: str, text: str) -> dict:
    return message(to, "text", {"body": text, "preview_url": False})


def buttons_message(to: str, text: str, buttons: list[Button]) -> dict:
    return message(to, "interactive", {"type": "button", "body": {"text": text}, "action": {"buttons": [
        {"type": "reply", "reply": {"id": button.id, "title": button.title}} for button in buttons]}})


def template_message(to: str, template: Template) -> dict:
    # Meta's document requires the policy; "deterministic" (the language given, exactly) is its only value
    content = {"name": template.name, "language": {"code": template.language, "policy": "deterministic"}}
    if template.variables:
        content["components"] = [{"type": "body", "parameters": [
            {"type": "text", "text": value} for value in template.variables]}]
    return message(to, "template", content)


def buttons_problem(text: str, buttons: list[Button]) -> str | None:
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        return f"an interactive message has 1 to {MAX_BUTTONS} buttons, not {len(buttons)}"
    if len(text) > MAX_INTERACTIVE_BODY:
        return f"an interactive message's text is at most {MAX_INTERACTIVE_BODY} characters"
    for button in buttons:
        if not 0 < len(button.title) <= MAX_BUTTON_TITLE or not 0 < len(button.id) <= MAX_BUTTON_ID:
            return f"a button's title is 1 to {MAX_BUTTON_TITLE} characters and its id 1 to {MAX_BUTTON_ID}"
    return None


def read_with_typing(external_id: str) -> dict:
    return {"messaging_product": "whatsapp", "status": "read", "message_id": external_id,
            "typing_indicator": {"type": "text"}}


class CloudApiChannel(Channel):
    max_part_chars = 4096  # a longer text body is refused
    sends_buttons = True

    def __init__(self, name: str, api: str, credentials: dict[str, str], phone_number_id: str, timeout: float,
                 number_in_path: bool = True, details_path: str = "", remembered: ReplyNumbers | None = None):
        """`api`: the base every path is under (Meta's includes the Graph version); `credentials`:
        the headers that authenticate; `number_in_path`: whether the sending number's id goes in
        the path (Meta, Kapso) or is implied by the key (360dialog); `details_path`: what `test`
        reads (default: the number's details); `remembered`: where the numbers that needed their
        mobile digit dropped are kept for every process."""
        self.name = name
        self.api = api.rstrip("/")
        self.credentials = credentials
        self.phone_number_id = phone_number_id  # sends what answers no customer's message (send-test)
        self.timeout = timeout
        self.number_in_path = number_in_path
        self.details_path = details_path
        self.session = requests.Session()
        self.session.headers.update(credentials)
        self.remembered = remembered
        self.reply_numbers: dict[str, str] = {}  # wa_id → the form of it the provider accepts replies to
        self._lock = threading.Lock()

    def send_text(self, business: str, wa_id: str, text: str, reference: str = "") -> SendResult:
        """Send one text from `business` (the phone number id the customer wrote to; the channel's
        PHONE_NUMBER_ID when "")."""
        return self.send(business, wa_id, lambda to: text_message(to, text))

    def send_buttons(self, business: str, wa_id: str, text: str, buttons: list[Button],
                     reference: str = "") -> SendResult:
        problem = buttons_problem(text, buttons)
        if problem:
            raise SendError(problem, Failure.PERMANENT)
        return self.send(business, wa_id, lambda to: buttons_message(to, text, buttons))

    def shows_buttons(self, text: str, buttons: list[Button]) -> bool:
        return buttons_problem(text, buttons) is None

    def send_template(self, business: str, wa_id: str, template: Template, reference: str = "") -> SendResult:
        return self.send(business, wa_id, lambda to: template_message(to, template))

    def send(self, business: str, wa_id: str, payload_for: Callable[[str], dict]) -> SendResult:
        """Post `payload_for(number)` to the customer's number, without its mobile digit once more
        if the provider refuses it with that digit."""
        phone_number_id = business or self.phone_number_id
        if self.number_in_path and not phone_number_id:
            raise SendError(f"no phone number to send from: set {self.name.upper()}_PHONE_NUMBER_ID", Failure.PERMANENT)
        to = self.reply_number(wa_id)
        try:
            answer = self._post(phone_number_id, payload_for(to))
        except SendError as exc:
            other = without_mobile_digit(to) if exc.code == NOT_IN_ALLOWED_LIST else None
            if other is None:
                raise
            answer = self._post(phone_number_id, payload_for(other))
            self.remember(wa_id, other)
        messages = answer.get("messages") if isinstance(answer, dict) else None
        if not (isinstance(messages, list) and messages and isinstance(messages[0], dict) and messages[0].get("id")):
            raise SendError("the Graph API accepted the message without giving its id", Failure.UNCONFIRMED, 200)
        return SendResult(str(messages[0]["id"]), str(messages[0].get("message_status") or "accepted"))

    def reply_number(self, wa_id: str) -> str:
        """Where replies to `wa_id` go: itself, unless it has a mobile digit the provider was seen
        to refuse."""
        if without_mobile_digit(wa_id) is None:
            return wa_id
        with self._lock:
            known = self.reply_numbers.get(wa_id)
        if known is None and self.remembered is not None:
            try:
                known = self.remembered.reply_number(self.name, wa_id) or wa_id
            except PyMongoError:  # tried as it is: a refusal is retried without the digit all the same
                return wa_id
            with self._lock:
                self.reply_numbers[wa_id] = known
        return known or wa_id

    def remember(self, wa_id: str, number: str) -> None:
        with self._lock:
            self.reply_numbers[wa_id] = number
        log.info("replies to a number ending %s go to it without the mobile digit", wa_id[-4:])
        if self.remembered is not None:
            try:
                self.remembered.remember_reply_number(self.name, wa_id, number)
            except PyMongoError:
                log.warning("could not keep the number replies to %s go to; this process remembers it", wa_id[-4:])

    def acknowledge(self, business: str, external_id: str) -> None:
        """Mark the customer's message read and show them the bot typing (one call)."""
        self._post(business or self.phone_number_id, read_with_typing(external_id))

    def check(self) -> dict:
        """The number's details from the provider: proves the credentials reach the number."""
        if self.details_path:
            url, params, key = f"{self.api}{self.details_path}", {}, "details"
        elif self.phone_number_id:
            url, params, key = f"{self.api}/{self.phone_number_id}", {"fields": PHONE_FIELDS}, "phone_number"
        else:
            return {"status": "error", "message": f"{self.name.upper()}_PHONE_NUMBER_ID is not set", self.name: None}
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            return {"status": "error", "message": f"{type(exc).__name__}: {exc}", self.name: None}
        if response.status_code >= 400:
            error = graph_error(response)
            return {"status": "error", "message": f"HTTP {response.status_code}",
                    self.name: {"code": error.code, "message": error.message}}
        details = response.json()
        if key == "phone_number":
            details = {name: details.get(name) for name in PHONE_FIELDS.split(",")}
        return {"status": "ok", key: details}

    def describe(self) -> dict:
        return {"phone_number_id": self.phone_number_id or None, "api": self.api,
                **{name.lower(): masked(value.removeprefix("Bearer ")) for name, value in self.credentials.items()}}

    def _post(self, phone_number_id: str, payload: dict) -> dict:
        url = f"{self.api}/{phone_number_id}/messages" if self.number_in_path else f"{self.api}/messages"
        try:
            response = self.session.post(url, json=payload, timeout=self.timeout)
        except requests.ReadTimeout as exc:
            raise SendError(f"no answer from the Graph API in time ({exc})", Failure.UNCONFIRMED) from None
        except requests.RequestException as exc:
            raise SendError(f"{type(exc).__name__}: {exc}", Failure.RETRY) from None
        if response.status_code >= 400:
            raise graph_error(response)
        try:
            return response.json()
        except ValueError:
            raise SendError("the Graph API answered with something that is not JSON", Failure.UNCONFIRMED,
                            response.status_code) from None


def graph_error(response: requests.Response) -> SendError:
    """The Graph API's `{"error": {...}}` as a SendError."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    message = str(error.get("message") or f"HTTP {response.status_code}")[:500]
    return SendError(message, failure_of(response.status_code, code), response.status_code, code)
