"""Meta's WhatsApp Cloud API: the webhook at /api/v1/meta/webhook (`routes`), signed with the app
secret (`inbound`); replies, read receipts and the typing indicator through the Graph API
(`outbound`)."""
from __future__ import annotations

from webapp.channels.base import Channel, DryRunChannel, ReplyNumbers
from webapp.channels.meta.outbound import CloudApiChannel

NAME = "meta"


def channel(settings, remembered: ReplyNumbers | None = None) -> Channel:
    """Meta's channel: sending when the access token is set too, else dry-run."""
    if not settings.meta_sends:
        return DryRunChannel(NAME, CloudApiChannel, "Meta's WhatsApp Cloud API", "META_ACCESS_TOKEN")
    return CloudApiChannel(NAME, f"{settings.meta_graph_api_base}/{settings.meta_graph_api_version}",
                           {"Authorization": f"Bearer {settings.meta_access_token.get_secret_value()}"},
                           settings.meta_phone_number_id, settings.meta_timeout_seconds, remembered=remembered)
