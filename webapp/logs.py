"""Logging: one format for the app, the reply worker and gunicorn (JSON lines or text), a
per-request/per-job context added to every line, and masking of what must never reach a log in
clear.

JSON (`LOG_FORMAT=json`, the default) writes one object per event to stdout: `time`, `level`,
`logger`, `message`, plus whatever the context holds (`request_id`, `route`, `message_sid`,
`conversation_id`) and, for gunicorn's access log, `method`, `path`, `status`, `bytes`,
`duration_ms`. `LOG_FORMAT=text` is for reading in a terminal.

Either way one event is one line, whatever a request put in it: a path with `%0d%0a`, a header or a
customer's text cannot start a line of its own (see `escape_control_chars`).
"""
from __future__ import annotations

import logging
import re
import sys
import uuid
from contextlib import contextmanager
from contextvars import ContextVar, Token

from gunicorn import glogging
from pythonjsonlogger.json import JsonFormatter

PHONE = re.compile(r"\+?(\d{2})\d{4,}(\d{4})")
# A secret a provider puts in the webhook's URL (360dialog's /webhook/<D360_WEBHOOK_SECRET>)
URL_SECRET = re.compile(r"(/webhook/)[^/?#]+")
# An X-Request-ID from a proxy is kept when it looks like an id, so logs can be joined across hops.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log requests, documents or prompts (customer numbers and text) at INFO or DEBUG
NOISY_LOGGERS = ("twilio.http_client", "httpx", "httpx2", "httpcore", "httpcore2", "openai", "pymongo", "chromadb",
                 "urllib3")

# What breaks a line or drives a terminal: C0 (\r, \n, ESC…), DEL, C1 (NEL…), U+2028 and U+2029.
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What of those json.dumps leaves as it is (it escapes C0 itself).
CONTROL_CHARS_JSON_KEEPS = re.compile("[\x7f-\x9f\u2028\u2029]")

_context: ContextVar[dict] = ContextVar("log_context", default={})


def mask_phone(number: str) -> str:
    """'whatsapp:+34600111234' → 'whatsapp:+34******1234'."""
    return PHONE.sub(lambda m: f"+{m.group(1)}{'*' * (len(m.group(0).lstrip('+')) - 6)}{m.group(2)}", number)


def mask_path(path: str) -> str:
    """A request path as logged: phone numbers masked, a secret after /webhook/ replaced."""
    return mask_phone(URL_SECRET.sub(r"\1****", path))


def request_id(incoming: str | None) -> str:
    return incoming if incoming and REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def bind(**fields) -> Token:
    """Add fields to every log line from here on in this thread (or request); `unbind(token)`
    restores what was there before."""
    return _context.set({**_context.get(), **fields})


def unbind(token: Token) -> None:
    _context.reset(token)


@contextmanager
def log_context(**fields):
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


class ContextFilter(logging.Filter):
    """Copies the context's fields onto each record (a field the call set itself wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def escape_control_chars(text: str) -> str:
    """'GET /a\r\nfake' → 'GET /a\\r\\nfake' (Python's escapes: \\x1b, \\x85, \\u2028…)."""
    return CONTROL_CHARS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    """Control characters in a line are escaped, and a traceback's lines are indented under it, so
    no line that starts at the left margin was written by anyone but a logger."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_control_chars(super().formatMessage(record))

    def formatException(self, exc_info) -> str:
        return _indented(super().formatException(exc_info))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("    " + escape_control_chars(line) for line in text.splitlines())


class JsonLinesFormatter(JsonFormatter):
    """JSON escapes C0 characters; the others that some readers split lines on are written as
    `\\uXXXX` too, which decodes to the same value."""

    def jsonify_log_record(self, log_data) -> str:
        return CONTROL_CHARS_JSON_KEEPS.sub(lambda m: f"\\u{ord(m.group()):04x}", super().jsonify_log_record(log_data))


def make_formatter(log_format: str, text_format: str = TEXT_FORMAT, datefmt: str | None = None) -> logging.Formatter:
    if log_format == "json":
        return JsonLinesFormatter("{levelname}{name}{message}", style="{", timestamp="time", json_ensure_ascii=False,
                                  rename_fields={"levelname": "level", "name": "logger"})
    return TextFormatter(text_format, datefmt)


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is when a line is written (a test may have replaced it)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _stream):
        pass


def configure_logging(level: str, log_format: str) -> None:
    """One handler, on stdout, on the root logger (idempotent: create_app may run more than once)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_assistant", False)), None)
    if handler is None:
        handler = StdoutHandler()
        handler.addFilter(ContextFilter())
        handler._assistant = True
        root.addHandler(handler)
    handler.setFormatter(make_formatter(log_format))
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


class GunicornLogger(glogging.Logger):
    """gunicorn's own and access logs in the app's format (gunicorn.conf.py's `logger_class`). The
    path is logged without its query, with phone numbers masked (`DELETE sessions/<wa_id>`) and
    without a secret in a webhook's URL."""

    def setup(self, cfg):
        super().setup(cfg)
        from webapp.config import load_settings  # here, not at import: reading settings is start-up work

        self.log_format = load_settings().log_format
        for handler in self.error_log.handlers:
            handler.setFormatter(make_formatter(self.log_format, self.error_fmt, self.datefmt))
        for handler in self.access_log.handlers:
            handler.setFormatter(make_formatter(self.log_format, self.access_fmt))

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["U"] = mask_path(atoms["U"] or "")
        return atoms

    def access(self, resp, req, environ, request_time):
        if self.log_format != "json":
            return super().access(resp, req, environ, request_time)
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        self.access_log.info("request", extra={
            "remote": atoms["h"], "method": atoms["m"], "path": atoms["U"], "status": int(atoms["s"]),
            "bytes": atoms["B"], "duration_ms": round(atoms["D"] / 1000, 1),
            "request_id": atoms.get("{x-request-id}o"), "pid": int(atoms["p"].strip("<>")),
        })
