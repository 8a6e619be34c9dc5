"""Kapso's webhook, `POST /api/v1/kapso/webhook`, signed with the webhook's secret key
(`X-Webhook-Signature`): Meta's deliveries forwarded, or Kapso's events, one or a batch."""
from __future__ import annotations

from flask import Blueprint, request

from webapp.channels.kapso import NAME
from webapp.channels.kapso.inbound import parse_events, signature_is_valid
from webapp.channels.meta.routes import refused, take
from webapp.services import services

bp = Blueprint("kapso", __name__)


@bp.post("/webhook")
def receive():
    app = services()
    body = request.get_data(cache=True)
    if not signature_is_valid(app.settings.kapso_webhook_secret.get_secret_value(), body,
                              request.headers.get("X-Webhook-Signature", "")):
        return refused(app, NAME, "X-Webhook-Signature")
    event, batch = request.headers.get("X-Webhook-Event", ""), request.headers.get("X-Webhook-Batch", "")
    return take(app, body, lambda payload: parse_events(payload, event, batch, app.settings.max_inbound_chars), NAME)
