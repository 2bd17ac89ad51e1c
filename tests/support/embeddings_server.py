"""A scripted OpenAI-compatible embeddings server on loopback (``POST /v1/embeddings``).

Real HTTP (stdlib ``ThreadingHTTPServer``), so the embeddings client is exercised as against a
NIM or vLLM. Vectors are a deterministic function of the text (:func:`vector_for`); replies can
be shuffled, altered by a hook, delayed, or replaced by injected HTTP errors.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import orjson

from tests.support.loopback import LoopbackHTTPServer

Reply = dict[str, Any]
ReplyHook = Callable[[dict[str, Any], Reply], Reply]
"""(request body, reply body) → the reply body to send instead."""


def vector_for(text: str, dim: int = 8) -> list[float]:
    """The server's embedding of ``text``: ``dim`` floats derived from its SHA-256 (not unit)."""
    digest = hashlib.sha256(text.encode()).digest()
    seed = int.from_bytes(digest[:8], "little")
    return np.random.default_rng(seed).uniform(-1, 1, dim).round(6).tolist()


@dataclass(frozen=True)
class EmbeddingRequest:
    """One request the server received."""

    path: str
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


class EmbeddingsServer(LoopbackHTTPServer):
    """Serves ``POST /v1/embeddings`` with :func:`vector_for` vectors of ``dim`` dimensions."""

    def __init__(
        self,
        *,
        dim: int = 8,
        required_api_key: str | None = None,
        shuffle: bool = False,
        delay_s: float = 0.0,
        reply_hook: ReplyHook | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.required_api_key = required_api_key
        self.shuffle = shuffle
        """Send ``data`` in reverse order (clients must reorder by ``index``)."""
        self.delay_s = delay_s
        self.reply_hook = reply_hook
        self._lock = threading.Lock()
        self._log: list[EmbeddingRequest] = []
        self._faults: list[tuple[int, str]] = []
        self._in_flight = 0
        self.max_in_flight = 0

    @property
    def url(self) -> str:
        return f"{self.base_url}/embeddings"

    def fail_next(self, n: int = 1, status: int = 500, message: str | None = None) -> None:
        """The next ``n`` requests fail with ``status`` (and ``message`` in the error body)."""
        with self._lock:
            self._faults.extend([(status, message or f"injected failure {status}")] * n)

    @property
    def requests(self) -> list[EmbeddingRequest]:
        with self._lock:
            return list(self._log)

    def _handle(self, handler: BaseHTTPRequestHandler, method: str = "POST") -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._serve(handler)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.rstrip("/")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        raw = handler.rfile.read(int(headers.get("content-length") or 0))
        body: dict[str, Any] | None = None
        try:
            parsed = orjson.loads(raw)
            body = parsed if isinstance(parsed, dict) else None
        except orjson.JSONDecodeError:
            pass
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if path != "/v1/embeddings":
            status, reply = 404, _error(404, f"no route {path}")
        elif self.required_api_key and headers.get("authorization") != (
            f"Bearer {self.required_api_key}"
        ):
            status, reply = 401, _error(401, "invalid API key")
        elif fault is not None:
            status, reply = fault[0], _error(*fault)
        elif body is None or not isinstance(body.get("input"), list):
            status, reply = 400, _error(400, "`input` must be a list of strings")
        elif any(not isinstance(text, str) or not text for text in body["input"]):
            status, reply = 400, _error(400, "`input` must not contain empty strings")
        else:
            status, reply = 200, self._embeddings(body)
        with self._lock:
            self._log.append(EmbeddingRequest(path, status, body, headers))
        data = orjson.dumps(reply)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _embeddings(self, body: dict[str, Any]) -> Reply:
        data = [
            {"object": "embedding", "index": i, "embedding": vector_for(text, self.dim)}
            for i, text in enumerate(body["input"])
        ]
        if self.shuffle:
            data.reverse()
        reply: Reply = {
            "object": "list",
            "model": body.get("model"),
            "data": data,
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }
        return self.reply_hook(body, reply) if self.reply_hook else reply


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "scripted_error", "code": status}}
