"""A fake OpenAI-compatible API (chat completions and embeddings) serving real HTTP on
127.0.0.1 for tests. Point clients at `FakeOpenAI.api_base`.
"""

from __future__ import annotations

import array
import base64
import functools
import hashlib
import json
import math
import random
import re
import secrets
import time
from dataclasses import replace
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import urlsplit

from .http_server import Fault, FakeHTTPServer, Headers, Reply

DEFAULT_REPLY = "This is a reply from FakeOpenAI."
EMBEDDING_DIMENSIONS = 384
CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"

ReplyFunction = Callable[[list[dict[str, Any]]], str]


def openai_error(
    status: int,
    message: str | None = None,
    error_type: str | None = None,
    code: str | None = None,
    headers: Headers | None = None,
) -> Reply:
    """A reply in OpenAI's JSON error shape."""
    if error_type is None:
        error_type = "server_error" if status >= 500 else "invalid_request_error"
    error = {
        "message": message or HTTPStatus(status).phrase,
        "type": error_type,
        "param": None,
        "code": code,
    }
    return Reply.json(status, {"error": error}, headers)


def fake_embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic unit vector: the normalised sum of one pseudo-random vector per word,
    so texts sharing words are closer than unrelated ones (useful for retrieval tests)."""
    words = re.findall(r"\w+", text.lower()) or [text]
    total = [0.0] * dimensions
    for word in words:
        total = [a + b for a, b in zip(total, _word_vector(word, dimensions))]
    norm = math.sqrt(sum(x * x for x in total))
    return [x / norm for x in total]


@functools.lru_cache(maxsize=8192)
def _word_vector(word: str, dimensions: int) -> tuple[float, ...]:
    rng = random.Random(hashlib.sha256(word.encode()).digest())
    return tuple(rng.gauss(0.0, 1.0) for _ in range(dimensions))


def _count_tokens(text: str) -> int:
    return len(text.split())  # a rough stand-in for a tokenizer


def _embedding_texts(raw_input: object) -> list[str] | None:
    """The texts to embed, or None when `input` has none of the accepted shapes."""
    if isinstance(raw_input, str):
        return [raw_input]
    if not isinstance(raw_input, list) or not raw_input:
        return None
    if all(isinstance(item, str) for item in raw_input):
        return raw_input
    if all(isinstance(item, int) for item in raw_input):
        return [json.dumps(raw_input)]  # one pre-tokenised input
    if all(isinstance(item, list) for item in raw_input):
        return [json.dumps(item) for item in raw_input]
    return None


def _encode_embedding(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(array.array("f", vector).tobytes()).decode()
    return vector


class FakeOpenAI(FakeHTTPServer):
    """Fake of OpenAI's `POST /v1/chat/completions` (non-streaming) and `POST /v1/embeddings`.

    `reply` is the assistant's answer, or a function of the request's `messages`. When
    `api_key` is given, requests must carry `Authorization: Bearer <api_key>`. Injected
    faults apply, in FIFO order, to the next requests to either endpoint.
    """

    def __init__(
        self,
        reply: str | ReplyFunction = DEFAULT_REPLY,
        api_key: str | None = None,
        *,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        self.reply = reply
        self.api_key = api_key
        self._requests: list[dict[str, Any]] = []

    @property
    def api_base(self) -> str:
        return self.base_url + "/v1"

    # -- inspection -----------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON body of every request to a known endpoint, in arrival order."""
        with self._lock:
            return list(self._requests)

    def chat_requests(self) -> list[list[dict[str, Any]]]:
        return [body["messages"] for body in self.requests if "messages" in body]

    def embedding_requests(self) -> list[object]:
        return [body["input"] for body in self.requests if "input" in body]

    def clear(self) -> None:
        """Forget recorded requests and pending faults."""
        with self._lock:
            self._requests.clear()
        self._clear_faults()

    # -- fault injection ------------------------------------------------------

    def fail_next(
        self,
        status: int,
        times: int = 1,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` requests with an OpenAI error."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        error_type, code = ("requests", "rate_limit_exceeded") if status == 429 else (None, None)
        self._inject(Fault(reply=openai_error(status, message, error_type, code, headers)), times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Answer the next `times` requests only after `seconds` (cut short by stop())."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._inject(Fault(delay=seconds), times)

    # -- request handling -----------------------------------------------------

    def handle(self, method: str, path: str, headers: Headers, body: bytes) -> Reply:
        url_path = urlsplit(path).path
        if method != "POST" or url_path not in (CHAT_PATH, EMBEDDINGS_PATH):
            message = f"Unknown request URL: {method} {url_path}"
            return openai_error(404, message, code="unknown_url")
        try:
            payload = json.loads(body)
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        if not isinstance(payload, dict):
            return openai_error(400, "The request body must be a JSON object.")
        with self._lock:
            self._requests.append(payload)
        fault = self._take_fault()
        reply = fault.reply or self._answer(url_path, headers, payload)
        return replace(reply, delay=fault.delay)

    def _answer(self, path: str, headers: Headers, payload: dict[str, Any]) -> Reply:
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        if not isinstance(payload.get("model"), str):
            return openai_error(400, "you must provide a model parameter")
        if path == CHAT_PATH:
            return self._chat_completion(payload)
        return self._embeddings(payload)

    def _chat_completion(self, payload: dict[str, Any]) -> Reply:
        messages = payload.get("messages")
        if not isinstance(messages, list) or not messages:
            return openai_error(400, "'messages' must be a non-empty array")
        if payload.get("stream"):
            return openai_error(400, "FakeOpenAI does not support stream=true")
        content = self.reply(messages) if callable(self.reply) else self.reply
        prompt_tokens = sum(_count_tokens(str(m.get("content") or "")) for m in messages)
        completion_tokens = _count_tokens(content)
        return Reply.json(200, {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload["model"],
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": None,
        })

    def _embeddings(self, payload: dict[str, Any]) -> Reply:
        texts = _embedding_texts(payload.get("input"))
        if texts is None:
            return openai_error(400, "'input' must be a string, an array of strings or tokens")
        dimensions = payload.get("dimensions", EMBEDDING_DIMENSIONS)
        if not isinstance(dimensions, int) or dimensions < 1:
            return openai_error(400, "'dimensions' must be a positive integer")
        encoding_format = payload.get("encoding_format", "float")
        if encoding_format not in ("float", "base64"):
            return openai_error(400, "'encoding_format' must be 'float' or 'base64'")
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": _encode_embedding(fake_embedding(text, dimensions), encoding_format),
            }
            for index, text in enumerate(texts)
        ]
        tokens = sum(_count_tokens(text) for text in texts)
        return Reply.json(200, {
            "object": "list",
            "data": data,
            "model": payload["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })
