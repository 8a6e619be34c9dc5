"""Meta's webhook, `/api/v1/meta/webhook`:

- `GET`: the verification handshake. `hub.mode=subscribe` and `hub.verify_token` equal to
  META_VERIFY_TOKEN → 200 with `hub.challenge` as plain text; anything else → 403.
- `POST`: a delivery, signed with the app secret. Each message is handed to the inbox (stored
  once, by its wamid), each status report applied (one about a message we do not have is
  ignored); 200 as long as the delivery was Meta's, even if some items could not be read. A
  status report that comes while a message to its customer is being sent, before the worker has
  stored the wamid Meta gave back, makes it 503: Meta delivers it again, and then it is applied.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
from datetime import datetime, timedelta, timezone

from flask import Blueprint, Response, jsonify, request

from webapp import inbox
from webapp.channels.base import InvalidInbound
from webapp.channels.meta import NAME as CHANNEL
from webapp.channels.meta.inbound import parse_delivery, signature_is_valid
from webapp.services import services

log = logging.getLogger(__name__)
bp = Blueprint("meta", __name__)
CHALLENGE = re.compile(r"[A-Za-z0-9_-]{1,128}")  # Meta sends a number; nothing else is echoed back


@bp.get("/webhook")
def verify():
    settings = services().settings
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    if (request.args.get("hub.mode") == "subscribe" and CHALLENGE.fullmatch(challenge)
            and hmac.compare_digest(token.encode(), settings.meta_verify_token.get_secret_value().encode())):
        return Response(challenge, 200, mimetype="text/plain")
    log.warning("Meta webhook verification refused")
    return jsonify(error="verification failed: hub.mode must be subscribe and hub.verify_token ours"), 403


@bp.post("/webhook")
def receive():
    app = services()
    body = request.get_data(cache=True)
    if not signature_is_valid(app.settings.meta_app_secret.get_secret_value(), body,
                              request.headers.get("X-Hub-Signature-256", "")):
        return refused(app, CHANNEL, "X-Hub-Signature-256")
    return take(app, body, lambda payload: parse_delivery(payload, app.settings.max_inbound_chars, CHANNEL), CHANNEL)


def refused(app, channel: str, header: str):
    log.warning("%s delivery refused: missing or invalid %s", channel, header)
    app.metrics.webhooks.labels(channel=channel, outcome="forbidden").inc()
    return jsonify(error=f"invalid or missing {header}"), 403


def take(app, body: bytes, parse, channel: str):
    """An authenticated delivery, parsed by `parse` into a Delivery: its messages handed to the
    inbox (a millisecond apart, so stored in the provider's order), its statuses applied; 400 if
    it is not a delivery at all."""
    try:
        delivery = parse(json.loads(body))
    except (ValueError, RecursionError) as exc:
        app.metrics.webhooks.labels(channel=channel, outcome="invalid").inc()
        field = exc.field if isinstance(exc, InvalidInbound) else "body"
        message = exc.message if isinstance(exc, InvalidInbound) else "the body is not valid JSON"
        return jsonify(error=message, field=field), 400
    now = datetime.now(timezone.utc)
    for number, message in enumerate(delivery.messages):
        outcome = inbox.receive(app, message, now + timedelta(milliseconds=number))
        app.metrics.webhooks.labels(channel=channel, outcome=outcome).inc()
    early = [report for report in delivery.statuses if inbox.apply_status(app, report, now) == "early"]
    if early:  # delivered again, its messages are no-ops and its statuses find their messages by then
        response = jsonify(error="a status report came before its message's id was stored; deliver it again",
                           statuses_early=len(early))
        return response, 503, {"Retry-After": "5"}
    return jsonify(messages=len(delivery.messages), statuses=len(delivery.statuses), skipped=delivery.skipped)
