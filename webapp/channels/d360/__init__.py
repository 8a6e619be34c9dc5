"""360dialog: Meta's Cloud API through 360dialog. Its webhook at /api/v1/360dialog/webhook (`routes`)
takes Meta's deliveries; 360dialog does not sign them, so it must send the secret we configure
(a header, or the URL's last part). Replies go to its Meta-like `POST /messages` with the number's
API key (the key names the number: no phone number id in the path)."""
from __future__ import annotations

from webapp.channels.base import Channel, DryRunChannel, ReplyNumbers
from webapp.channels.meta.outbound import CloudApiChannel

NAME = "360dialog"


def channel(settings, remembered: ReplyNumbers | None = None) -> Channel:
    """360dialog's channel: sending when the API key is set too, else dry-run."""
    if not settings.d360_sends:
        return DryRunChannel(NAME, CloudApiChannel, "360dialog", "D360_API_KEY")
    return CloudApiChannel(NAME, settings.d360_api_base, {"D360-API-KEY": settings.d360_api_key.get_secret_value()},
                           "", settings.meta_timeout_seconds, number_in_path=False,
                           details_path="/v1/configs/webhook", remembered=remembered)
