"""How every route reads a request body: JSON that does not parse — malformed, or nested deeper
than Python's parser goes (`[[[[…]]]]` 5,000 deep raises RecursionError, not ValueError) — is a
400 like any bad body, and the fields are checked by `webapp.validation`."""
from __future__ import annotations

import flask
from flask import request
from werkzeug.exceptions import BadRequest

from webapp.validation import InvalidInput, Model, validated

MAX_REQUEST_BYTES = 64 * 1024  # Twilio's largest webhook (1,600 chars + 10 media URLs) is far smaller
# Meta and the providers re-selling its API batch many messages and statuses in one delivery (up to 3 MB);
# Chatwoot's webhooks carry the conversation, its latest messages with it.
MAX_DELIVERY_BYTES = 3 * 1024 * 1024
DELIVERY_PATHS = ("/api/v1/meta/", "/api/v1/kapso/", "/api/v1/360dialog/", "/api/v1/chatwoot/")


def body_limit(path: str) -> int:
    """The largest body a request to `path` may have."""
    return MAX_DELIVERY_BYTES if path.startswith(DELIVERY_PATHS) else MAX_REQUEST_BYTES


class Request(flask.Request):
    """The app's request class (`create_app`): each path's body limit, and even a route that calls
    `get_json` itself cannot fail with a 500 on a deeply nested body."""

    @property
    def max_content_length(self) -> int:
        return body_limit(self.path)

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        try:
            return super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            return self.on_json_loading_failed(ValueError("it is nested too deeply"))

    def on_json_loading_failed(self, error: ValueError | None):
        if error is None:
            raise BadRequest("the request body must be JSON (Content-Type: application/json)")
        raise BadRequest(f"the request body is not valid JSON: {error}")


def json_object() -> dict:
    """The request's JSON body, which must be an object."""
    data = request.get_json() if request.is_json else None
    if not isinstance(data, dict):
        raise InvalidInput.one("body", "must be a JSON object (Content-Type: application/json)")
    return data


def read_body(model: type[Model], *, form: bool = False, query: bool = False) -> Model:
    """The request's fields as `model`: its JSON object, or, on routes that take them, its form
    fields (`form`) and query string (`query`)."""
    if request.is_json or not (form or query):
        return validated(model, json_object())
    values = request.values if form and query else request.form if form else request.args
    return validated(model, values.to_dict())
