"""Elasticsearch stand-ins for tests: osmem-server behind a media-type proxy, and recordings.

No Elasticsearch can run here. Two real HTTP servers on loopback take its place:

* :class:`OsmemServer` runs ``osmem-server`` (an in-memory OpenSearch-compatible engine) and
  :class:`MediaTypeProxy` sits in front of it: the store sends what the official Elasticsearch
  8/9 client sends (``application/vnd.elasticsearch+json; compatible-with=8``), which osmem
  refuses with 406, so the proxy rewrites those media types to plain JSON and forwards.
* :class:`ScriptedElasticsearch` answers with recorded Elasticsearch 8.x response bodies
  (``tests/fixtures/elasticsearch``), for the calls osmem does not have (point in time).

Both log every request they receive, so tests can check what went over the wire.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

import httpx
import orjson
from osmem_server import resolve_binary

from flywheel.devserver import free_port
from tests.support.processes import stop_process

__all__ = [
    "FIXTURES",
    "HttpRequest",
    "HttpResponse",
    "MediaTypeProxy",
    "OsmemServer",
    "Reply",
    "ScriptedElasticsearch",
    "fixture",
]

FIXTURES = Path(__file__).parents[1] / "fixtures" / "elasticsearch"

_VENDOR_TYPE = re.compile(r"application/vnd\.elasticsearch\+([\w-]+)(\s*;\s*compatible-with=\d+)?")
_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive", "host"}


def fixture(name: str) -> bytes:
    """The bytes of a recorded response body in ``tests/fixtures/elasticsearch``."""
    return (FIXTURES / name).read_bytes()


# --- a minimal HTTP/1.1 server core (asyncio streams, keep-alive, Content-Length bodies) ---


@dataclass(frozen=True)
class HttpRequest:
    """One request as received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class _HttpServer:
    """Serves ``handler`` on 127.0.0.1 (a free port); logs every request in ``requests``."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.requests: list[HttpRequest] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                response = await self._handler(request)
                writer.write(_encode_response(request.method, response))
                await writer.drain()
                if request.headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ConnectionError("chunked request bodies are not supported by this test server")
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    path, _, query = target.partition("?")
    return HttpRequest(method, path, dict(parse_qsl(query)), headers, body)


def _encode_response(method: str, response: HttpResponse) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{k}: {v}" for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP]
    lines.append(f"content-length: {len(response.body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if method == "HEAD" else head + response.body


# --- osmem-server and the media-type proxy ---


class OsmemServer:
    """An ``osmem-server`` process on a free loopback port, stopped by its own PID."""

    def __init__(self, log_dir: Path, *, start_timeout_s: float = 30.0) -> None:
        self.log_dir = log_dir
        self.start_timeout_s = start_timeout_s
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the osmem test server is not running")
        return f"http://127.0.0.1:{self.port}"

    def start(self, attempts: int = 3) -> Self:
        """Start the server and wait until it answers; retry on a port taken meanwhile."""
        binary = resolve_binary()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        errors: list[str] = []
        for _ in range(attempts):
            port = free_port()
            with (self.log_dir / "osmem.console").open("ab") as console:
                # stdin stays open: the server exits when it closes (also if this process dies).
                process = subprocess.Popen(
                    [
                        binary,
                        "--addr",
                        f"127.0.0.1:{port}",
                        "--no-ja",
                        "--parent-pid",
                        str(os.getpid()),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                )
            self._process, self.port = process, port
            problem = self._wait_ready()
            if problem is None:
                return self
            errors.append(problem)
            self.stop()
        raise RuntimeError("osmem-server did not start: " + " | ".join(errors))

    def _wait_ready(self) -> str | None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                console = (self.log_dir / "osmem.console").read_bytes()
                return f"exited with {self._process.returncode}: {console.decode()[-500:]}"
            try:
                if httpx.get(self.url, timeout=0.5).status_code == 200:
                    return None
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        return f"no answer on port {self.port} within {self.start_timeout_s} s"

    def request(self, method: str, path: str, body: Any = None, *, ndjson: bytes = b"") -> Any:
        """A plain-JSON request straight to the server (test setup and checks)."""
        headers = {"Content-Type": "application/x-ndjson" if ndjson else "application/json"}
        content = ndjson or (orjson.dumps(body) if body is not None else None)
        response = httpx.request(
            method, f"{self.url}{path}", content=content, headers=headers, timeout=30
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close its stdin (it exits), then terminate or kill the process this helper started."""
        process, self._process, self.port = self._process, None, None
        if process is not None:
            stop_process(process, timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def plain_media_type(value: str) -> str:
    """``application/vnd.elasticsearch+json; compatible-with=8`` → ``application/json``."""
    return _VENDOR_TYPE.sub(r"application/\1", value)


class MediaTypeProxy:
    """Forwards every request to ``upstream`` with Elasticsearch media types made plain.

    ``requests`` holds what the client sent, before rewriting (headers included).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._http: httpx.AsyncClient | None = None
        self._server = _HttpServer(self._forward)

    @property
    def requests(self) -> list[HttpRequest]:
        return self._server.requests

    @property
    def url(self) -> str:
        return self._server.url

    async def start(self) -> Self:
        self._http = httpx.AsyncClient(base_url=self.upstream, timeout=60)
        await self._server.start()
        return self

    async def stop(self) -> None:
        await self._server.stop()
        if self._http is not None:
            await self._http.aclose()

    async def _forward(self, request: HttpRequest) -> HttpResponse:
        assert self._http is not None
        headers = {
            name: plain_media_type(value) if name in ("content-type", "accept") else value
            for name, value in request.headers.items()
            if name not in _HOP_BY_HOP
        }
        upstream = await self._http.request(
            request.method,
            request.path,
            params=request.query,
            headers=headers,
            content=request.body or None,
        )
        kept = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in _HOP_BY_HOP and k.lower() != "content-encoding"
        }
        return HttpResponse(upstream.status_code, upstream.content, kept)


# --- recorded Elasticsearch responses ---


ES_HEADERS = {
    "content-type": "application/vnd.elasticsearch+json;compatible-with=8",
    "x-elastic-product": "Elasticsearch",
}


@dataclass(frozen=True)
class Reply:
    """A scripted answer: status and a fixture file (or inline bytes; none for HEAD)."""

    status: int = 200
    fixture: str | None = None
    body: bytes = b""

    def content(self) -> bytes:
        return fixture(self.fixture) if self.fixture else self.body


class ScriptedElasticsearch:
    """Answers ``(method, path)`` with its scripted replies in order (the last one repeats).

    An unscripted call gets Elasticsearch's 400 "no handler found" answer.
    """

    def __init__(self, script: Mapping[tuple[str, str], Sequence[Reply]]) -> None:
        self._script = {key: list(replies) for key, replies in script.items()}
        self._server = _HttpServer(self._answer)

    @property
    def requests(self) -> list[HttpRequest]:
        return self._server.requests

    @property
    def url(self) -> str:
        return self._server.url

    def calls(self, method: str, path: str) -> list[HttpRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    async def start(self) -> Self:
        await self._server.start()
        return self

    async def stop(self) -> None:
        await self._server.stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        replies = self._script.get((request.method, request.path))
        if not replies:
            reason = f"no handler found for uri [{request.path}] and method [{request.method}]"
            body = orjson.dumps({"error": reason, "status": 400})
            return HttpResponse(400, body, ES_HEADERS)
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        return HttpResponse(reply.status, reply.content(), ES_HEADERS)
