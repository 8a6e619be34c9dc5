"""Kapso: Meta's Cloud API through Kapso. Its webhook at /api/v1/kapso/webhook (`routes`) takes both
kinds Kapso sends, signed with the webhook's secret key: Meta's own deliveries forwarded as they
are, and Kapso's events (`inbound`); replies go through Kapso's Meta-compatible API with the
project's API key."""
from __future__ import annotations

from webapp.channels.base import Channel, DryRunChannel, ReplyNumbers
from webapp.channels.meta.outbound import CloudApiChannel

NAME = "kapso"


def channel(settings, remembered: ReplyNumbers | None = None) -> Channel:
    """Kapso's channel: sending when the API key is set too, else dry-run."""
    if not settings.kapso_sends:
        return DryRunChannel(NAME, CloudApiChannel, "Kapso", "KAPSO_API_KEY")
    return CloudApiChannel(NAME, settings.kapso_api_base, {"X-API-Key": settings.kapso_api_key.get_secret_value()},
                           settings.kapso_phone_number_id, settings.meta_timeout_seconds, remembered=remembered)
