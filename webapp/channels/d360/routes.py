"""360dialog's webhook, `POST /api/v1/360dialog/webhook`: Meta's deliveries, unsigned by 360dialog,
so they must carry D360_WEBHOOK_SECRET, in `X-Webhook-Secret` (a header set with the webhook URL)
or as the URL's last part (`/api/v1/360dialog/webhook/<secret>`); anything else is refused."""
from __future__ import annotations

import hmac

from flask import Blueprint, request

from webapp.channels.d360 import NAME
from webapp.channels.meta.inbound import parse_delivery
from webapp.channels.meta.routes import refused, take
from webapp.services import services

bp = Blueprint("d360", __name__)


@bp.post("/webhook")
@bp.post("/webhook/<token>")
def receive(token: str = ""):
    app = services()
    secret = app.settings.d360_webhook_secret.get_secret_value().encode()
    given = (token or request.headers.get("X-Webhook-Secret", "")).encode("utf-8", "replace")
    if not hmac.compare_digest(given, secret):
        return refused(app, NAME, "X-Webhook-Secret")
    body = request.get_data(cache=True)
    return take(app, body, lambda payload: parse_delivery(payload, app.settings.max_inbound_chars, NAME), NAME)
