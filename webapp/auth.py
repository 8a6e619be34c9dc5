"""Admin token check for the ops routes: `Authorization: Bearer $ADMIN_TOKEN`."""
from __future__ import annotations

import functools
import hmac

from flask import jsonify, request

from webapp.services import services


def admin_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        expected = services().settings.admin_token.get_secret_value()
        if not expected:
            return jsonify(error="admin routes are disabled: set ADMIN_TOKEN to enable them"), 404
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            response = jsonify(error="missing or invalid admin token")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response, 401
        return view(*args, **kwargs)

    return wrapper
