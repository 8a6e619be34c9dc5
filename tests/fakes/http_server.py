"""The threaded fake-server base every fake provider here builds on: real HTTP on 127.0.0.1, a
`handle()` per request, injected faults (an error reply and/or latency) taken one per request, and
the check of a request against a provider's OpenAPI document (`openapi_problems`)."""

from __future__ import annotations

import json
import sys
import threading
import traceback
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest
from werkzeug.datastructures import Headers as HeaderMap
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

Headers = dict[str, str]  # header names lower-cased


def openapi_problems(api: OpenAPI, server: str, method: str, path: str, headers: Headers, body: bytes) -> list[str]:
    """How a request, as if sent to `server`, breaks the OpenAPI document `api` ([] when it conforms)."""
    environ = EnvironBuilder(base_url=server, path=path, method=method, data=body,
                             headers={k: v for k, v in headers.items() if k not in ("host", "content-length")})
    checked = WerkzeugOpenAPIRequest(Request(environ.get_environ()))
    checked.parameters.header = HeaderMap(headers)  # as sent: WSGI would rename some (api_access_token)
    try:
        api.validate_request(checked)
    except Exception as error:  # openapi-core raises one error naming every problem
        causes = [str(cause) for cause in getattr(error, "schema_errors", ())]
        return [f"{method} {path}: {error}" + (f" ({'; '.join(causes)})" if causes else "")]
    return []


@dataclass(frozen=True)
class Reply:
    """An HTTP response to send, optionally after a delay."""

    status: int
    body: bytes = b""
    headers: Headers = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json(cls, status: int, payload: object, headers: Headers | None = None) -> Reply:
        content_type = {"Content-Type": "application/json"}
        return cls(status, json.dumps(payload).encode(), content_type | (headers or {}))


@dataclass(frozen=True)
class Fault:
    """An injected error reply and/or latency for one request."""

    reply: Reply | None = None
    delay: float = 0.0


class FakeHTTPServer:
    """Serves `handle()` on 127.0.0.1 (ephemeral port by default) from a daemon thread."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def handle(self, method: str, path: str, headers: Headers, body: bytes) -> Reply:
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self, self._port)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # keeps stop() fast
                name=type(self).__name__,
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._stopping.set()  # wakes handlers sleeping in an injected delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _inject(self, fault: Fault, times: int, faults: deque[Fault] | None = None) -> None:
        """Queue `fault` for the next `times` requests that take from `faults` (by default, every one)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            (self._faults if faults is None else faults).extend([fault] * times)

    def _take_fault(self, faults: deque[Fault] | None = None) -> Fault:
        with self._lock:
            faults = self._faults if faults is None else faults
            return faults.popleft() if faults else Fault()

    def _clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _serve(self, method: str, path: str, headers: Headers, body: bytes) -> Reply:
        try:
            reply = self.handle(method, path, headers, body)
        except Exception:  # a bug in the fake must reach the test as a readable 500
            reply = Reply(500, traceback.format_exc().encode(), {"Content-Type": "text/plain"})
        if reply.delay > 0:
            self._stopping.wait(reply.delay)
        return reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a delay must not keep the process alive

    def __init__(self, fake: FakeHTTPServer, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (e.g. its timeout fired during a delay) is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.fake._serve(self.command, self.path, headers, body)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keeps test output clean; the fakes record requests instead


class ProviderFake(FakeHTTPServer):
    """A fake provider API: records every request, and each way one broke the provider's contract."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._requests: list[Any] = []
        self._violations: list[str] = []

    @property
    def requests(self) -> list[Any]:
        with self._lock:
            return list(self._requests)

    @property
    def contract_violations(self) -> list[str]:
        with self._lock:
            return list(self._violations)

    def _record(self, request: Any) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_violations(self, violations: list[str]) -> None:
        with self._lock:
            self._violations += violations
