"""A webhook receiver on 127.0.0.1 for tests (the handoff webhook's): records every request, and
answers 204, or an injected error status."""
from __future__ import annotations

import json
from dataclasses import dataclass

from .http_server import Fault, FakeHTTPServer, Headers, Reply


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: Headers  # names lower-cased
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class FakeReceiver(FakeHTTPServer):
    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._received: list[Received] = []

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with `status` (recording them all the same)."""
        self._inject(Fault(reply=Reply(status)), times)

    def handle(self, method: str, path: str, headers: Headers, body: bytes) -> Reply:
        fault = self._take_fault()
        with self._lock:
            self._received.append(Received(method, path, headers, body))
        return fault.reply or Reply(204)
