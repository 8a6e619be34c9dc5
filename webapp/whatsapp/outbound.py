"""Outbound: send WhatsApp messages through Twilio's REST API with the official SDK.

The SDK has no base-URL option, so `TWILIO_API_BASE` is honoured by an HTTP client that rewrites
the `https://api.twilio.com` prefix (how tests point it at a local fake Twilio server).
Without credentials, `DryRunSender` stores replies instead of sending them.
"""
from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from requests.exceptions import ReadTimeout, RequestException
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
RETRYABLE_HTTP = {429, 500, 502, 503, 504}
RETRYABLE_CODES = {20429}  # Twilio's "too many requests"


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str


class SendError(Exception):
    """Twilio refused the message or could not be reached (`http_status` None)."""

    def __init__(self, message: str, http_status: int | None = None, code: int | None = None,
                 retry_after: float | None = None, maybe_sent: bool = False):
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.retry_after = retry_after  # seconds Twilio asked us to wait (its Retry-After header)
        self.maybe_sent = maybe_sent  # the request reached Twilio but no answer came back in time

    @property
    def retryable(self) -> bool:
        """Safe and worth trying again later: Twilio is busy, failing or unreachable. Not after a
        timeout (Twilio may have sent it: a retry could be a duplicate), nor after any other
        refusal (a bad number 21211, a closed 24-hour window 63016…), which would fail again."""
        if self.maybe_sent:
            return False
        return self.http_status is None or self.http_status in RETRYABLE_HTTP or self.code in RETRYABLE_CODES


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


class TwilioSender:
    dry_run = False

    def __init__(self, account_sid: str, auth_token: str, sender: str, api_base: str, timeout: float,
                 status_callback: str = ""):
        self.account_sid = account_sid
        self.sender = sender
        self.status_callback = status_callback
        self.client = Client(account_sid, auth_token, http_client=ApiBaseHttpClient(api_base, timeout))

    def send(self, to: str, body: str, reference: str = "") -> SendResult:
        """Send one message. With a status callback URL configured, Twilio reports its delivery
        there, tagged with `reference` (our id for the message: the report may arrive before we
        have stored the SID this call returns)."""
        extra = {"status_callback": f"{self.status_callback}?{urlencode({'ref': reference})}"} \
            if self.status_callback and reference else {}
        try:
            message = self.client.messages.create(to=to, from_=self.sender, body=body, **extra)
        except TwilioRestException as exc:
            raise SendError(exc.msg, exc.status, exc.code, self.client.http_client.last_retry_after()) from None
        except ReadTimeout as exc:
            raise SendError(f"no answer from Twilio in time ({exc})", maybe_sent=True) from None
        except (TwilioException, RequestException) as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from None
        return SendResult(sid=message.sid, status=message.status or "queued")

    def check_credentials(self) -> dict:
        """Fetch our account from the Accounts API: proves the SID/token pair works."""
        try:
            account = self.client.api.v2010.accounts(self.account_sid).fetch()
        except TwilioRestException as exc:
            return {"status": "error", "message": f"HTTP {exc.status}", "twilio": {"code": exc.code, "message": exc.msg}}
        except (TwilioException, RequestException) as exc:
            return {"status": "error", "message": f"{type(exc).__name__}: {exc}", "twilio": None}
        return {"status": "ok", "account": {"friendly_name": account.friendly_name, "status": account.status}}


class DryRunSender:
    """Stands in for Twilio when it is not configured: replies are only stored."""

    dry_run = True

    def send(self, to: str, body: str, reference: str = "") -> SendResult:
        return SendResult(sid="DR" + uuid.uuid4().hex, status="dry_run")

    def check_credentials(self) -> dict:
        return {"status": "error", "message": "Twilio is not configured (dry-run): set TWILIO_ACCOUNT_SID, "
                "TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM", "twilio": None}


def make_sender(settings) -> TwilioSender | DryRunSender:
    if not settings.twilio_sends:
        return DryRunSender()
    return TwilioSender(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        settings.twilio_whatsapp_from,
        settings.twilio_api_base,
        settings.twilio_timeout_seconds,
        settings.status_callback_url,
    )
