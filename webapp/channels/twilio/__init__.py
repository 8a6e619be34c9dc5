"""Twilio's WhatsApp API: webhooks at /api/v1/whatsapp/webhook and /status (`routes`), signed with
the auth token (`inbound`); replies through Twilio's REST API with the official SDK (`outbound`),
quick-reply buttons as a `twilio/quick-reply` content of Twilio's Content API, created on first use
and its SID kept in MongoDB (`quick_reply`); a tap comes back as `ButtonPayload`, the button's id."""
from __future__ import annotations

from webapp.channels.base import Channel, DryRunChannel
from webapp.channels.twilio.outbound import TwilioChannel
from webapp.channels.twilio.quick_reply import ContentSids


def channel(settings, contents: ContentSids | None = None) -> Channel:
    """Twilio's channel: sending when the account SID, auth token and sender are set, else dry-run
    (which creates no content); `contents` keeps the quick-reply contents' SIDs for every process."""
    if not settings.twilio_sends:
        return DryRunChannel(TwilioChannel.name, TwilioChannel, "Twilio",
                             "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM")
    return TwilioChannel(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                         settings.twilio_whatsapp_from, settings.twilio_api_base, settings.twilio_timeout_seconds,
                         settings.status_callback_url, settings.twilio_content_api_base, contents)
