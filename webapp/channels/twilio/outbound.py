"""Twilio outbound: send WhatsApp messages through Twilio's REST API with the official SDK.

The SDK has no base-URL option, so `TWILIO_API_BASE` is honoured by an HTTP client that rewrites
the `https://api.twilio.com` prefix (how tests point it at a local fake Twilio server).
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

from webapp.channels.base import Channel, Failure, SendError, SendResult, Template
from webapp.config import masked

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
RETRYABLE_HTTP = {429, 500, 502, 503, 504}
RETRYABLE_CODES = {20429}  # Twilio's "too many requests"


WINDOW_CLOSED = 63016  # free text outside the customer's 24-hour window


def failure_of(http_status: int | None, code: int | None) -> Failure:
    """Worth trying again later: Twilio is busy, failing or unreachable. Not any other refusal (a
    bad number 21211…), which would fail again."""
    if code == WINDOW_CLOSED:
        return Failure.WINDOW_CLOSED
    if http_status is None or http_status in RETRYABLE_HTTP or code in RETRYABLE_CODES:
        return Failure.RETRY
    return Failure.PERMANENT


class ApiBaseHttpClient(TwilioHttpClient):
    """Sends to `api_base` instead of api.twilio.com, and remembers (per thread) the last
    response's Retry-After, which the SDK's exceptions leave out."""

    def __init__(self, api_base: str, timeout: float):
        super().__init__(timeout=timeout)
        self.api_base = api_base.rstrip("/")
        self._last = threading.local()

    def request(self, method, url, *args, **kwargs):
        if url.startswith(TWILIO_API):
            url = self.api_base + url[len(TWILIO_API):]
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

    def __init__(self, account_sid: str, auth_token: str, sender: str, api_base: str, timeout: float,
                 status_callback: str = ""):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sender = sender
        self.api_base = api_base
        self.status_callback = status_callback
        self.client = Client(account_sid, auth_token, http_client=ApiBaseHttpClient(api_base, timeout))

    def send_text(self, business: str, wa_id: str, text: str, reference: str = "") -> SendResult:
        """Send one message from `business` (our number the customer wrote to; TWILIO_WHATSAPP_FROM
        when ""). Twilio reports its delivery to the status callback URL, tagged with `reference`
        (the report may arrive before we have stored the SID this call returns)."""
        return self.create(business, wa_id, reference, body=text)

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
                "api_base": self.api_base}
