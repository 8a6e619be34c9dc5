"""Twilio outbound: send WhatsApp messages through Twilio's REST API with the official SDK, and
quick-reply buttons as a content of Twilio's Content API (`quick_reply`).

The SDK has no base-URL option, so `TWILIO_API_BASE` and `TWILIO_CONTENT_API_BASE` are honoured by
an HTTP client that rewrites the `https://api.twilio.com` and `https://content.twilio.com` prefixes
(how tests point it at a local fake Twilio server).
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from requests.exceptions import ReadTimeout, RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList

from webapp.channels.base import Button, Channel, Failure, SendError, SendResult, Template
from webapp.channels.twilio.quick_reply import ContentRefused, ContentSids, QuickReplyContents, problem, variables_of
from webapp.config import masked

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
CONTENT_API = "https://content.twilio.com"
RETRYABLE_HTTP = {429, 500, 502, 503, 504}
RETRYABLE_CODES = {20429}  # Twilio's "too many requests"


WINDOW_CLOSED = 63016  # free text outside the customer's 24-hour window
# A message refused for its content: no such ContentSid (deleted?), or variables Twilio will not take
UNKNOWN_CONTENT, INVALID_VARIABLES = 21655, 21656


def failure_of(http_status: int | None, code: int | None) -> Failure:
    """Worth trying again later: Twilio is busy, failing or unreachable. Not any other refusal (a
    bad number 21211…), which would fail again."""
    if code == WINDOW_CLOSED:
        return Failure.WINDOW_CLOSED
    if http_status is None or http_status in RETRYABLE_HTTP or code in RETRYABLE_CODES:
        return Failure.RETRY
    return Failure.PERMANENT


class ApiBaseHttpClient(TwilioHttpClient):
    """Sends to `api_base` instead of api.twilio.com and to `content_api_base` instead of
    content.twilio.com, and remembers (per thread) the last response's Retry-After, which the
    SDK's exceptions leave out."""

    def __init__(self, api_base: str, timeout: float, content_api_base: str = CONTENT_API):
        super().__init__(timeout=timeout)
        self.bases = {TWILIO_API: api_base.rstrip("/"), CONTENT_API: content_api_base.rstrip("/")}
        self._last = threading.local()

    def request(self, method, url, *args, **kwargs):
        for official, base in self.bases.items():
            if url.startswith(official):
                url = base + url[len(official):]
        self._last.retry_after = None
        response = super().request(method, url, *args, **kwargs)
        self._last.retry_after = _seconds(response.headers.get("Retry-After"))
        return response

    def last_retry_after(self) -> float | None:
        return getattr(self._last, "retry_after", None)


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After as seconds from now: it is either a number of seconds or an HTTP date."""
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(retry_after) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


class TwilioChannel(Channel):
    name = "twilio"
    max_part_chars = 1600  # a longer WhatsApp body is refused (21617)
    sends_buttons = True

    def __init__(self, account_sid: str, auth_token: str, sender: str, api_base: str, timeout: float,
                 status_callback: str = "", content_api_base: str = CONTENT_API, contents: ContentSids | None = None):
        """`contents`: where the SIDs of the quick-reply contents created are kept for every process."""
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sender = sender
        self.api_base = api_base
        self.content_api_base = content_api_base
        self.status_callback = status_callback
        self.client = Client(account_sid, auth_token,
                             http_client=ApiBaseHttpClient(api_base, timeout, content_api_base))
        self.quick_replies = QuickReplyContents(self.create_content, contents)

    def send_text(self, business: str, wa_id: str, text: str, reference: str = "") -> SendResult:
        """Send one message from `business` (our number the customer wrote to; TWILIO_WHATSAPP_FROM
        when ""). Twilio reports its delivery to the status callback URL, tagged with `reference`
        (the report may arrive before we have stored the SID this call returns)."""
        return self.create(business, wa_id, reference, body=text)

    def send_buttons(self, business: str, wa_id: str, text: str, buttons: list[Button],
                     reference: str = "") -> SendResult:
        """Send the text as the quick-reply content for these buttons; if Twilio refuses that
        content for good, the text alone (it reads as a complete message without its buttons)."""
        refused = problem(text, buttons)
        if refused:
            raise SendError(refused, Failure.PERMANENT)
        try:
            return self.send_quick_reply(business, wa_id, text, buttons, reference)
        except ContentRefused as exc:
            log.warning("quick-reply buttons not sent (HTTP %s code %s: %s); the text goes alone",
                        exc.http_status, exc.code, exc.message)
            return self.send_text(business, wa_id, text, reference)

    def shows_buttons(self, text: str, buttons: list[Button]) -> bool:
        return problem(text, buttons) is None

    def send_quick_reply(self, business: str, wa_id: str, text: str, buttons: list[Button],
                         reference: str) -> SendResult:
        key, content_sid = self.quick_replies.sid(text, buttons)
        try:
            return self.create(business, wa_id, reference, content_sid=content_sid,
                               content_variables=json.dumps(variables_of(text, buttons), ensure_ascii=False))
        except SendError as exc:
            if exc.code not in (UNKNOWN_CONTENT, INVALID_VARIABLES):
                raise
            if exc.code == UNKNOWN_CONTENT:
                self.quick_replies.forget(key, content_sid)
            raise ContentRefused(exc.message, exc.http_status, exc.code) from None

    def create_content(self, key: str, content: dict, samples: dict[str, str]) -> str:
        """Create a content in Twilio's Content API: its SID. Twilio wants a sample of each variable;
        the name tells the business's Console what the content is."""
        request = ContentList.ContentCreateRequest(
            {"friendly_name": f"assistant_quick_reply_{key[:16]}", "variables": samples, **content})
        try:
            return self.client.content.v1.contents.create(request).sid
        except TwilioRestException as exc:
            failure = failure_of(exc.status, exc.code)
            if failure is not Failure.RETRY:
                raise ContentRefused(exc.msg, exc.status, exc.code) from None
            raise SendError(exc.msg, failure, exc.status, exc.code,
                            self.client.http_client.last_retry_after()) from None
        except (TwilioException, RequestException) as exc:  # a timeout too: no message went out yet
            raise SendError(f"{type(exc).__name__}: {exc}", Failure.RETRY) from None

    def send_template(self, business: str, wa_id: str, template: Template, reference: str = "") -> SendResult:
        """Send an approved Content template: `template.name` is its Content SID (HX…)."""
        variables = {str(n): value for n, value in enumerate(template.variables, start=1)}
        return self.create(business, wa_id, reference, content_sid=template.name,
                           **({"content_variables": json.dumps(variables, ensure_ascii=False)} if variables else {}))

    def create(self, business: str, wa_id: str, reference: str, **content) -> SendResult:
        extra = {"status_callback": f"{self.status_callback}?{urlencode({'ref': reference})}"} \
            if self.status_callback and reference else {}
        try:
            message = self.client.messages.create(to=f"whatsapp:+{wa_id}", from_=business or self.sender, **content,
                                                  **extra)
        except TwilioRestException as exc:
            raise SendError(exc.msg, failure_of(exc.status, exc.code), exc.status, exc.code,
                            self.client.http_client.last_retry_after()) from None
        except ReadTimeout as exc:
            raise SendError(f"no answer from Twilio in time ({exc})", Failure.UNCONFIRMED) from None
        except (TwilioException, RequestException) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}", Failure.RETRY) from None
        return SendResult(message.sid, message.status or "queued")

    def check(self) -> dict:
        """Fetch our account from the Accounts API: proves the SID/token pair works."""
        try:
            account = self.client.api.v2010.accounts(self.account_sid).fetch()
        except TwilioRestException as exc:
            return {"status": "error", "message": f"HTTP {exc.status}", "twilio": {"code": exc.code, "message": exc.msg}}
        except (TwilioException, RequestException) as exc:
            return {"status": "error", "message": f"{type(exc).__name__}: {exc}", "twilio": None}
        return {"status": "ok", "account": {"friendly_name": account.friendly_name, "status": account.status}}

    def describe(self) -> dict:
        return {"sid": masked(self.account_sid), "token": masked(self.auth_token), "from": self.sender,
                "api_base": self.api_base, "content_api_base": self.content_api_base}
