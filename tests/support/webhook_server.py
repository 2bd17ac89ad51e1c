"""A webhook receiver on loopback: records every JSON body POSTed to it; can fail on demand."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson

from tests.support.loopback import LoopbackHTTPServer


class WebhookServer(LoopbackHTTPServer):
    """``POST /hook/<anything>``: 200 with ``ok``, or the next queued failure status."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._failures: list[int] = []
        self.received = threading.Event()

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook/T000-secret-token"

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order."""
        with self._lock:
            self._failures.extend(statuses)

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        with self._lock:
            status = self._failures.pop(0) if self._failures else 200
            self.paths.append(handler.path)
            if status == 200:
                self.bodies.append(orjson.loads(raw) if raw else {})
        body = b"ok" if status == 200 else b"nope"
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        if status == 200:
            self.received.set()
