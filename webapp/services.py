"""What the routes use, built once per app in `create_app` and reached through `services()`."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from flask import current_app
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many

from webapp.channels import Channels
from webapp.chatwoot import outbox_of
from webapp.chatwoot.sync import ChatwootOutbox
from webapp.config import Settings
from webapp.db import Store
from webapp.metrics import Metrics


@dataclass
class Services:
    settings: Settings
    store: Store
    channels: Channels
    limiter: Limiter
    metrics: Metrics
    customer_limits: list[RateLimitItem] = field(init=False)
    admin_limits: list[RateLimitItem] = field(init=False)
    admin_failure_limits: list[RateLimitItem] = field(init=False)
    chatwoot: ChatwootOutbox = field(init=False)  # false when Chatwoot is not configured

    def __post_init__(self) -> None:
        self.chatwoot = outbox_of(self.settings, self.store)
        self.customer_limits = parse_many(self.settings.rate_limit_per_wa_id)
        self.admin_limits = parse_many(self.settings.rate_limit_admin_per_ip)
        self.admin_failure_limits = parse_many(self.settings.rate_limit_admin_failures_per_ip)

    def hit_customer_limit(self, wa_id: str) -> RateLimitItem | None:
        """Count one message against the customer's limits; the limit it broke, if any."""
        return self._counted("customer", self._hit(self.customer_limits, "wa_id", wa_id))

    def hit_admin_limit(self, ip: str) -> RateLimitItem | None:
        """Count one admin request from `ip`; the limit it broke, if any."""
        return self._counted("admin", self._hit(self.admin_limits, "admin", ip))

    def admin_locked_out(self, ip: str) -> RateLimitItem | None:
        """The failure limit `ip` has used up with wrong admin tokens, if any (counts nothing)."""
        return self._counted("admin_lockout", next((item for item in self.admin_failure_limits
                                                    if not self.limiter.limiter.test(item, "admin_failure", ip)), None))

    def count_admin_failure(self, ip: str) -> None:
        self._hit(self.admin_failure_limits, "admin_failure", ip)

    def seconds_until_reset(self, item: RateLimitItem, *keys: str) -> int:
        reset_at = self.limiter.limiter.get_window_stats(item, *keys).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def _hit(self, items: list[RateLimitItem], *keys: str) -> RateLimitItem | None:
        for item in items:
            if not self.limiter.limiter.hit(item, *keys):
                return item
        return None

    def _counted(self, limit: str, broken: RateLimitItem | None) -> RateLimitItem | None:
        if broken is not None:
            self.metrics.rate_limit_hits.labels(limit=limit).inc()
        return broken

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
