"""What the routes use, built once per app in `create_app` and reached through `services()`."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many

from webapp.config import Settings
from webapp.db import Store
from webapp.whatsapp.outbound import DryRunSender, TwilioSender


@dataclass
class Services:
    settings: Settings
    store: Store
    sender: TwilioSender | DryRunSender
    limiter: Limiter
    customer_limits: list[RateLimitItem] = field(init=False)

    def __post_init__(self) -> None:
        self.customer_limits = parse_many(self.settings.rate_limit_per_wa_id)

    def hit_customer_limit(self, wa_id: str) -> RateLimitItem | None:
        """Count one message against the customer's limits; the limit it broke, if any."""
        for item in self.customer_limits:
            if not self.limiter.limiter.hit(item, "wa_id", wa_id):
                return item
        return None

    def may_send_notice(self, wa_id: str, broken: RateLimitItem) -> bool:
        """At most one rate-limit notice per window of the limit that was broken."""
        notice = type(broken)(1, broken.multiples, namespace="notice")
        return self.limiter.limiter.hit(notice, "notice", wa_id)

    def close(self) -> None:
        """Close database connections while the interpreter is still whole (gunicorn worker exit)."""
        self.store.close()
        limiter_client = getattr(self.limiter.storage, "storage", None)  # MongoDB and Redis storages
        if hasattr(limiter_client, "close"):
            limiter_client.close()


def services() -> Services:
    return current_app.extensions["whatsapp_assistant"]
