"""The ways a business reaches WhatsApp, one package each: `twilio/`, `meta/` (Meta's Cloud API),
and the providers that re-sell it, `kapso/` and `d360/` (360dialog), built on `meta/`'s Cloud API
sender and delivery parser. What each provides is in `base`.

Adding a provider: copy the package closest to it (`kapso/` for one re-selling the Cloud API), then
- name it in `build_channels` (below) and in `create_app`'s webhooks (`webapp/__init__.py`);
- give it settings in `webapp/config.py`: its secrets, `<name>_receives` / `<name>_sends`, and a
  place in the check that a channel is on;
- if its deliveries batch many updates, add its webhook to `DELIVERY_PATHS` in
  `webapp/request_body.py` (else the 64 KiB limit applies);
- describe its routes in `webapp/openapi.json` (`tests/test_openapi.py` fails until they are)."""
from __future__ import annotations

from webapp.channels.base import Channel, ReplyNumbers, Template
from webapp.channels.twilio.quick_reply import ContentSids

# Before channels every message was Twilio's, from TWILIO_WHATSAPP_FROM: what a message without a
# route of its own goes by.
DEFAULT_ROUTE = {"channel": "twilio", "business": ""}
MIN_PART_CHARS = 1600  # the shortest any channel takes, for a reply whose channel is gone


def route_of(message: dict) -> dict:
    """The channel and business number a message came in or goes out by."""
    return {name: message.get(name, default) for name, default in DEFAULT_ROUTE.items()}


class Channels:
    """The channels of this deployment, by name; the first is the one `send-test` uses by default."""

    def __init__(self, channels: list[Channel], reply_templates: dict[str, Template] | None = None):
        self.by_name = {channel.name: channel for channel in channels}
        self.reply_templates = reply_templates or {}

    def reply_template(self, name: str) -> Template | None:
        """The approved template a person's reply goes as after the customer's 24-hour window, on
        channel `name`, if the business configured one."""
        return self.reply_templates.get(name)

    def __getitem__(self, name: str) -> Channel:
        return self.by_name[name]

    def get(self, name: str) -> Channel | None:
        return self.by_name.get(name)

    def part_chars(self, name: str) -> int:
        """How long one message may be on this channel."""
        channel = self.by_name.get(name)
        return channel.max_part_chars if channel else MIN_PART_CHARS

    def __iter__(self):
        return iter(self.by_name.values())

    @property
    def default(self) -> Channel:
        return next(iter(self.by_name.values()))


def build_channels(settings, remembered: ReplyNumbers | None = None, contents: ContentSids | None = None) -> Channels:
    """The channels whose webhooks are served (each sending, or dry-run without credentials);
    `remembered` keeps what the Cloud API channels learn of customers' numbers for every process,
    `contents` the SIDs of the quick-reply contents Twilio's channel creates."""
    from webapp.channels import d360, kapso, meta, twilio

    cloud_api = [module.channel(settings, remembered) for module, served in (
        (meta, settings.meta_receives), (kapso, settings.kapso_receives), (d360, settings.d360_receives)) if served]
    return Channels(([twilio.channel(settings, contents)] if settings.twilio_receives else []) + cloud_api,
                    reply_templates(settings))


def reply_templates(settings) -> dict[str, Template]:
    """REPLY_TEMPLATE_*, by channel: Twilio's Content SID, and the Cloud API's template name and language."""
    templates = {}
    if settings.reply_template_content_sid:
        templates["twilio"] = Template(settings.reply_template_content_sid)
    if settings.reply_template_name:
        cloud_api = Template(settings.reply_template_name, settings.reply_template_language)
        templates.update(dict.fromkeys(("meta", "kapso", "d360"), cloud_api))
    return templates
