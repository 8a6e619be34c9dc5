"""Logging set-up, and masking of what must never reach a log line in clear."""
from __future__ import annotations

import logging
import re

PHONE = re.compile(r"\+?(\d{2})\d{4,}(\d{4})")


def mask_phone(number: str) -> str:
    """'whatsapp:+34600111234' → 'whatsapp:+34******1234'."""
    return PHONE.sub(lambda m: f"+{m.group(1)}{'*' * (len(m.group(0).lstrip('+')) - 6)}{m.group(2)}", number)


def configure_logging(level: str) -> None:
    """One handler on the root logger (idempotent: create_app may run more than once)."""
    root = logging.getLogger()
    if not any(getattr(h, "_assistant", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._assistant = True
        root.addHandler(handler)
    root.setLevel(level)
    # Libraries that log requests, documents or prompts (customer numbers and text) at INFO or DEBUG
    for noisy in ("twilio.http_client", "httpx", "httpcore", "openai", "pymongo", "chromadb", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
