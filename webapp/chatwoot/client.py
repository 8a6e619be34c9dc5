"""Chatwoot's account API, as an API-channel inbox uses it (header `api_access_token`).

Only what mirroring needs: find or create a contact by phone number, open a conversation for it in
our inbox, post messages and private notes, and set a conversation's status, priority, labels and
custom attributes, and a contact's. Chatwoot's OpenAPI file describes requests well and responses
less so (its SOURCE.md): responses are read as Chatwoot's Rails views render them, with the few
fields needed looked for where each Chatwoot version puts them.
"""
from __future__ import annotations

from dataclasses import dataclass

import requests

from webapp.config import masked

INVALID = (400, 422)  # Chatwoot refuses the request itself: sending it again changes nothing


class ChatwootError(Exception):
    """Chatwoot refused a request or could not be reached (`status` None: it may have been done)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def invalid(self) -> bool:
        return self.status in INVALID

    @property
    def not_found(self) -> bool:
        return self.status == 404


@dataclass(frozen=True)
class Contact:
    id: int
    source_id: str  # the contact's id in our inbox, which a conversation is opened with


class ChatwootClient:
    def __init__(self, base_url: str, account_id: int, inbox_id: int, api_token: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.account_id, self.inbox_id = account_id, inbox_id
        self.timeout = timeout
        self._token = api_token
        self._http = requests.Session()
        self._http.headers.update({"api_access_token": api_token})

    def describe(self) -> dict:
        return {"base_url": self.base_url, "account_id": self.account_id, "inbox_id": self.inbox_id,
                "api_token": masked(self._token)}

    # contacts
    def find_contact(self, phone_number: str) -> Contact | None:
        """The contact with exactly this phone number (+E.164), with its id in our inbox (opened
        there when it has none yet)."""
        found = self._call("GET", "/contacts/search", params={"q": phone_number}).get("payload") or []
        contact = next((c for c in found if c.get("phone_number") == phone_number), None)
        if contact is None:
            return None
        return Contact(contact["id"], self._source_id(contact) or self._open_in_inbox(contact["id"]))

    def create_contact(self, phone_number: str, name: str) -> Contact:
        body = {"inbox_id": self.inbox_id, "name": name or phone_number, "phone_number": phone_number}
        created = self._call("POST", "/contacts", json=body)
        payload = created.get("payload")
        # Chatwoot renders {"payload": {"contact": …, "contact_inbox": …}}; its OpenAPI file a list
        if isinstance(payload, list):
            payload = payload[0] if payload else {}
        payload = payload if isinstance(payload, dict) else {}
        contact = payload.get("contact") or payload or created
        contact_id = contact.get("id") or created.get("id")
        if contact_id is None:
            raise ChatwootError("Chatwoot created a contact but did not say its id")
        source_id = (payload.get("contact_inbox") or {}).get("source_id") or self._source_id(contact)
        return Contact(contact_id, source_id or self._open_in_inbox(contact_id))

    def update_contact(self, contact_id: int, custom_attributes: dict) -> None:
        self._call("PUT", f"/contacts/{contact_id}", json={"custom_attributes": custom_attributes})

    def set_contact_labels(self, contact_id: int, labels: list[str]) -> None:
        self._call("POST", f"/contacts/{contact_id}/labels", json={"labels": labels})

    def _source_id(self, contact: dict) -> str | None:
        return next((ci.get("source_id") for ci in contact.get("contact_inboxes") or []
                     if (ci.get("inbox") or {}).get("id") == self.inbox_id), None)

    def _open_in_inbox(self, contact_id: int) -> str:
        opened = self._call("POST", f"/contacts/{contact_id}/contact_inboxes", json={"inbox_id": self.inbox_id})
        return opened["source_id"]

    # conversations
    def create_conversation(self, contact: Contact, status: str, custom_attributes: dict) -> int:
        body = {"source_id": contact.source_id, "inbox_id": self.inbox_id, "contact_id": contact.id,
                "status": status, "custom_attributes": custom_attributes}
        return self._call("POST", "/conversations", json=body)["id"]

    def post_message(self, conversation_id: int, content: str, message_type: str, private: bool = False) -> int:
        body = {"content": content, "message_type": message_type, "private": private}
        return self._call("POST", f"/conversations/{conversation_id}/messages", json=body)["id"]

    def recent_messages(self, conversation_id: int) -> list[dict]:
        return self._call("GET", f"/conversations/{conversation_id}/messages").get("payload") or []

    def set_status(self, conversation_id: int, status: str) -> None:
        self._call("POST", f"/conversations/{conversation_id}/toggle_status", json={"status": status})

    def set_priority(self, conversation_id: int, priority: str) -> None:
        self._call("POST", f"/conversations/{conversation_id}/toggle_priority", json={"priority": priority})

    def set_labels(self, conversation_id: int, labels: list[str]) -> None:
        """Chatwoot replaces the conversation's labels with these."""
        self._call("POST", f"/conversations/{conversation_id}/labels", json={"labels": labels})

    def set_attributes(self, conversation_id: int, custom_attributes: dict) -> None:
        self._call("POST", f"/conversations/{conversation_id}/custom_attributes",
                   json={"custom_attributes": custom_attributes})

    def _call(self, method: str, path: str, **kwargs) -> dict:
        url = f"{self.base_url}/api/v1/accounts/{self.account_id}{path}"
        try:
            response = self._http.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ChatwootError(f"Chatwoot unreachable: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise ChatwootError(f"Chatwoot answered {response.status_code} to {method} {path}: "
                                f"{response.text[:200]}", response.status_code)
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise ChatwootError(f"Chatwoot answered {method} {path} with no JSON", response.status_code) from None
