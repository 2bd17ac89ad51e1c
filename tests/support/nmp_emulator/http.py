"""The HTTP layer of the NMP emulator: a threaded loopback server, requests, responses, routes.

Stdlib only (``ThreadingHTTPServer``, HTTP/1.1 keep-alive, one daemon thread per connection), like
``tests/support/loopback.py``, but with every method the NeMo SDK and ``huggingface_hub`` use
(GET, HEAD, POST, PUT, PATCH, DELETE) and a tiny router with ``{name}`` and ``{name:path}``
placeholders.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, unquote

import orjson


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    raw_path: str
    path: str  # percent-decoded segment by segment, without the query string
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter ``name``."""
        value = default
        for key, item in self.query:
            if key == name:
                value = item
        return value

    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body); raises ``HTTPError(400)``."""
        if not self.body:
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise HTTPError(400, f"invalid JSON body: {exc}") from exc

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; raises ``HTTPError(422)`` for anything else."""
        body = self.json()
        if not isinstance(body, dict):
            raise HTTPError(422, "the request body must be a JSON object")
        return body

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body (or a JSON object of strings)."""
        content_type = self.headers.get("content-type", "")
        if "json" in content_type:
            return {str(k): str(v) for k, v in self.json_object().items()}
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass
class Response:
    """What a handler returns."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        return cls(status, orjson.dumps(payload), dict(headers or {}))

    @classmethod
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


class HTTPError(Exception):
    """Raised by handlers: becomes an error response (FastAPI's ``{"detail": ...}`` by default)."""

    def __init__(
        self,
        status: int,
        detail: Any,
        *,
        headers: Mapping[str, str] | None = None,
        payload: Any = None,
    ) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
        self.payload = payload

    def response(self) -> Response:
        payload = self.payload if self.payload is not None else {"detail": self.detail}
        return Response.json(payload, self.status, self.headers)


Handler = Callable[..., Response]


class Router:
    """Method + path-pattern routing. ``{x}`` matches one segment, ``{x:path}`` the rest."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = "^"
        for part in re.split(r"(\{[a-z_]+(?::path)?\})", pattern):
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                if name.endswith(":path"):
                    regex += f"(?P<{name[:-5]}>.+)"
                else:
                    regex += f"(?P<{name}>[^/]+)"
            else:
                regex += re.escape(part)
        self._routes.append((method, re.compile(regex + "$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """The handler for ``method path`` (HEAD falls back to GET); raises 405 on a method miss."""
        path_matched = False
        for wanted in (method, "GET") if method == "HEAD" else (method,):
            for route_method, regex, handler in self._routes:
                found = regex.match(path)
                if found is None:
                    continue
                path_matched = True
                if route_method == wanted:
                    return handler, found.groupdict()  # the path is already decoded
        if path_matched:
            raise HTTPError(405, f"method {method} not allowed on {path}")
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True
    owner: LoopbackApp

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that gave up mid-reply is not an error here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _dispatch(self) -> None:
        self.server.owner._serve(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


def read_request(handler: BaseHTTPRequestHandler) -> Request:
    """Parse the request line, headers and body (Content-Length or chunked)."""
    headers = {k.lower(): v for k, v in handler.headers.items()}
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        body = b"".join(chunks)
    else:
        length = int(headers.get("content-length") or 0)
        if length:
            body = handler.rfile.read(length)
    raw_path, _, raw_query = handler.path.partition("?")
    path = "/".join(unquote(segment) for segment in raw_path.split("/"))
    query = parse_qsl(raw_query, keep_blank_values=True)
    return Request(handler.command, raw_path, path, query, headers, body)


def write_response(handler: BaseHTTPRequestHandler, response: Response) -> None:
    handler.send_response(response.status)
    if response.body or response.status not in (204, 304):
        handler.send_header("Content-Type", response.content_type)
    handler.send_header("Content-Length", str(len(response.body)))
    for name, value in response.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD" and response.body:
        handler.wfile.write(response.body)


class LoopbackApp:
    """A loopback HTTP server on a free 127.0.0.1 port; subclasses implement :meth:`_serve`."""

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash, no ``/v1``)."""
        return f"http://127.0.0.1:{self.port}"
