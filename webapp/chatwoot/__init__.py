"""Chatwoot as the agents' inbox (CHATWOOT_* settings): every conversation mirrored to an API-channel
inbox (`sync`, through `client`), and what agents do there brought back (`routes`: its webhook).
Without the settings nothing of it runs."""
from __future__ import annotations

from webapp.chatwoot.client import ChatwootClient
from webapp.chatwoot.sync import ChatwootOutbox


def outbox_of(settings, store) -> ChatwootOutbox:
    """Where to queue what Chatwoot is to be told (one that tells nothing, and is false, when
    Chatwoot is not configured)."""
    return ChatwootOutbox(store.chatwoot_sync if settings.chatwoot_on else None)


def client_of(settings) -> ChatwootClient:
    return ChatwootClient(settings.chatwoot_base_url, settings.chatwoot_account_id, settings.chatwoot_inbox_id,
                          settings.chatwoot_api_token.get_secret_value(), settings.chatwoot_timeout_seconds)
