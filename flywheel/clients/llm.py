"""An async client for OpenAI-compatible chat endpoints (vLLM, NIM, Ollama, hosted APIs).

One pooled connection set per :class:`ChatClient`, sized for the caller's concurrency: a lean
HTTP/1.1 keep-alive pool on asyncio (``_Http11Pool``), or ``httpx`` when an environment proxy
applies to the endpoint. Transient failures (connection errors, timeouts, 408/429/5xx) are
retried with exponential backoff; everything else raises
:class:`~flywheel.errors.RemoteCallError` at once. The API key is sent as a bearer token and
never appears in an error message.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx
import orjson

from flywheel.clients.closing import AsyncClosing
from flywheel.clients.retries import (
    after_attempts,
    backoff_delay,
    body_excerpt,
    redact,
    retry_after_seconds,
    status_error,
)
from flywheel.errors import ConfigError, RemoteCallError

LANE_CONNECTIONS = 4
"""Connections per httpcore pool: its bookkeeping costs O(connections) per request event."""


@dataclass(frozen=True)
class ChatReply:
    """A successful chat completion: the response body and how it was obtained."""

    response: dict[str, Any]
    latency_s: float
    """Seconds taken by the successful attempt (retries and backoff excluded)."""
    attempts: int


class LanedTransport(httpx.AsyncBaseTransport):
    """A connection pool of ``max_connections`` split into lanes of a few connections each.

    One httpcore pool scans all of its connections on every request event, so at high
    concurrency (128 connections) the client, not the endpoint, becomes the bottleneck (ten
    times fewer requests per second on loopback). Each request goes to the lane with the most
    free connections; a lane counts a request until its response headers arrive, which is
    close enough for ChatClient, which reads every body at once.
    """

    def __init__(self, max_connections: int, lane_connections: int = LANE_CONNECTIONS) -> None:
        n_lanes = -(-max(1, max_connections) // max(1, lane_connections))
        base, extra = divmod(max(1, max_connections), n_lanes)
        self._sizes = [base + (1 if i < extra else 0) for i in range(n_lanes)]
        ssl_context = httpx.create_ssl_context()  # shared: building one costs ~20 ms
        self._lanes = [
            httpx.AsyncHTTPTransport(
                verify=ssl_context,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            )
            for size in self._sizes
        ]
        self._in_flight = [0] * n_lanes

    @property
    def max_connections(self) -> int:
        return sum(self._sizes)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        lane = max(range(len(self._lanes)), key=lambda i: self._sizes[i] - self._in_flight[i])
        self._in_flight[lane] += 1
        try:
            return await self._lanes[lane].handle_async_request(request)
        finally:
            self._in_flight[lane] -= 1

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.aclose()


class _Response(NamedTuple):
    status: int
    headers: Mapping[str, str]
    """Lower-case names."""
    content: bytes


class _ProtocolError(ConnectionError):
    """The server's bytes are not an HTTP/1.1 response this client understands."""


class _Http11Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time.

    Parses only what a JSON API answers with: a status line, headers, and a body framed by
    ``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the connection.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = True
        self._buffer = bytearray()
        self._waiter: asyncio.Future[_Response] | None = None
        self._head: tuple[int, dict[str, str]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self.transport = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._head is not None and self._framing()[0] == "eof":
                self._finish(bytes(self._buffer))
            else:
                waiter.set_exception(
                    exc or ConnectionResetError("the server closed the connection mid-response")
                )

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None or self._waiter.done():
            self.reusable = False  # bytes nobody asked for: do not trust this connection
            return
        try:
            self._parse()
        except (_ProtocolError, ValueError) as exc:
            self.reusable = False
            self._waiter.set_exception(_ProtocolError(f"malformed HTTP response ({exc})"))

    def send(self, data: bytes) -> asyncio.Future[_Response]:
        """Write one request; the future resolves with its complete response."""
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._head = None
        self._buffer.clear()
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _parse(self) -> None:
        while self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            del self._buffer[: end + 4]
            version, _, rest = lines[0].partition(" ")
            if not version.startswith("HTTP/"):
                raise _ProtocolError(f"status line {lines[0][:80]!r}")
            status = int(rest[:3])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue  # 100 Continue and friends: the real response follows
            if "close" in headers.get("connection", "").lower() or version == "HTTP/1.0":
                self.reusable = False
            self._head = (status, headers)
        kind, length = self._framing()
        if kind == "length":
            if len(self._buffer) >= length:
                self._finish(bytes(self._buffer[:length]))
        elif kind == "chunked":
            body = self._dechunk()
            if body is not None:
                self._finish(body)
        else:
            self.reusable = False  # the body ends when the connection does

    def _framing(self) -> tuple[str, int]:
        assert self._head is not None
        headers = self._head[1]
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return "chunked", 0
        if "content-length" in headers:
            return "length", int(headers["content-length"])
        if self._head[0] in (204, 304):
            return "length", 0
        return "eof", 0

    def _dechunk(self) -> bytes | None:
        """The whole chunked body once its last chunk is in, else None."""
        parts: list[bytes] = []
        position = 0
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(buffer[position:line_end]).split(b";", 1)[0], 16)
            start = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0 and buffer[start : start + 2] != b"\r\n":
                    return None
                return b"".join(parts)
            if len(buffer) < start + size + 2:
                return None
            parts.append(bytes(buffer[start : start + size]))
            position = start + size + 2

    def _finish(self, body: bytes) -> None:
        assert self._head is not None and self._waiter is not None
        status, headers = self._head
        self._head = None
        self._buffer.clear()
        if not self._waiter.done():
            self._waiter.set_result(_Response(status, headers, body))


class _Http11Pool:
    """Keep-alive HTTP/1.1 connections to one origin, at most ``max_connections`` at once.

    Built for throughput: one request costs a formatted header block, one ``write`` and a
    small parse, about a tenth of a generic client's per-request work, which at hundreds of
    concurrent requests on one core was the evaluator's bottleneck. Callers wait for a free
    connection without a time limit (they bound their own concurrency); ``timeout_s`` bounds
    each request from connecting to the last byte.
    """

    def __init__(
        self, base_url: str, headers: Mapping[str, str], max_connections: int, timeout_s: float
    ) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "localhost"
        https = parts.scheme == "https"
        self._port = parts.port or (443 if https else 80)
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if https else None
        default_port = parts.port is None or parts.port == (443 if https else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        host_header = host if default_port else f"{host}:{self._port}"
        self._fixed_headers = "".join(
            f"{name}: {value}\r\n"
            for name, value in {"Host": host_header, "User-Agent": "flywheel", **headers}.items()
        )
        self.timeout_s = timeout_s
        self._idle: list[_Http11Connection] = []
        self._slots = asyncio.Semaphore(max(1, max_connections))
        self._open: set[_Http11Connection] = set()

    async def request(
        self, method: str, target: str, content: bytes | None, content_type: str | None
    ) -> _Response:
        """One request; raises ``TimeoutError`` or ``OSError`` (connection problems)."""
        head = f"{method} {target} HTTP/1.1\r\n{self._fixed_headers}"
        if content is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(content)}\r\n"
        data = head.encode("latin-1") + b"\r\n" + (content or b"")
        async with self._slots:
            while self._idle:
                connection = self._idle.pop()
                if connection.reusable and connection.transport is not None:
                    try:
                        return await self._exchange(connection, data)
                    except (ConnectionResetError, BrokenPipeError):
                        # The server closed an idle connection just as we reused it: a
                        # request it never saw is safe to send again on a new connection.
                        continue
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(self.timeout_s):
                _, connection = await loop.create_connection(
                    _Http11Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                )
            return await self._exchange(connection, data)

    async def _exchange(self, connection: _Http11Connection, data: bytes) -> _Response:
        self._open.add(connection)
        done = False
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await connection.send(data)
            done = True
            return response
        finally:
            if done and connection.reusable:
                self._idle.append(connection)
            else:
                connection.close()
                self._open.discard(connection)

    async def aclose(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()


def _proxied(base_url: str) -> bool:
    """Whether an environment proxy (``HTTPS_PROXY`` etc., not ``NO_PROXY``) covers the URL."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    if parts.scheme not in proxies and "all" not in proxies:
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class ChatClient(AsyncClosing):
    """Chat completions and model listing against one OpenAI-compatible base URL (``…/v1``)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120,
        max_retries: int = 3,
        retry_backoff_s: float = 0.5,
        max_connections: int = 64,
        max_retry_after_s: float = 60.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"invalid endpoint base_url {base_url!r}: expected http(s)://…/v1")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max(0, max_retries)
        self.retry_backoff_s = max(0.0, retry_backoff_s)
        self.max_retry_after_s = max_retry_after_s
        self.timeout_s = timeout_s
        self._api_key = api_key or None
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._path_prefix = urlsplit(self.base_url).path
        self._pool: _Http11Pool | None = None
        self._http: httpx.AsyncClient | None = None
        if _proxied(self.base_url):
            self._http = httpx.AsyncClient(
                headers=headers,
                # No pool timeout: callers bound their own concurrency, waiting for a free
                # connection is not a failure of the endpoint.
                timeout=httpx.Timeout(timeout_s, pool=None),
                transport=LanedTransport(max_connections),
            )
        else:
            self._pool = _Http11Pool(self.base_url, headers, max_connections, timeout_s)

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()
        if self._pool is not None:
            await self._pool.aclose()

    async def _send(self, method: str, url: str, path: str, content: bytes | None) -> _Response:
        """One attempt, through whichever pool this client uses."""
        content_type = "application/json" if content is not None else None
        if self._pool is not None:
            return await self._pool.request(method, self._path_prefix + path, content, content_type)
        assert self._http is not None
        headers = {"Content-Type": content_type} if content_type else None
        response = await self._http.request(method, url, content=content, headers=headers)
        return _Response(response.status_code, response.headers, response.content)

    async def chat(self, payload: dict[str, Any]) -> ChatReply:
        """POST ``payload`` to ``/chat/completions`` and return the parsed response."""
        body, latency_s, attempts = await self._call("POST", "/chat/completions", payload)
        if not isinstance(body, dict):
            raise RemoteCallError(
                f"POST {self.base_url}/chat/completions returned a JSON "
                f"{type(body).__name__}, not an object",
                retryable=False,
            )
        return ChatReply(response=body, latency_s=latency_s, attempts=attempts)

    async def list_models(self) -> list[str]:
        """The ids of the models the endpoint serves (``GET /models``)."""
        body, _, _ = await self._call("GET", "/models", None)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise RemoteCallError(
                f"GET {self.base_url}/models returned no `data` list", retryable=False
            )
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]

    # --- internals ---

    async def _call(self, method: str, path: str, payload: Any) -> tuple[Any, float, int]:
        """One logical call with retries: (parsed JSON body, latency of last attempt, attempts)."""
        url = f"{self.base_url}{path}"
        call = f"{method} {url}"
        content = orjson.dumps(payload) if payload is not None else None
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            retry_after: float | None = None
            try:
                response = await self._send(method, url, path, content)
            except (httpx.TimeoutException, TimeoutError) as exc:
                error = RemoteCallError(
                    f"{call} timed out after {self.timeout_s:g}s ({type(exc).__name__})"
                    f"{after_attempts(attempt)}",
                    retryable=True,
                )
            except (httpx.TransportError, OSError) as exc:
                error = RemoteCallError(
                    f"{call} failed: cannot reach the endpoint "
                    f"({type(exc).__name__}: {redact(str(exc), self._api_key) or 'no detail'})"
                    f"{after_attempts(attempt)}",
                    retryable=True,
                )
            else:
                latency_s = time.perf_counter() - started
                status = response.status
                if 200 <= status < 300:
                    try:
                        return orjson.loads(response.content), latency_s, attempt
                    except orjson.JSONDecodeError:
                        raise RemoteCallError(
                            f"{call} returned HTTP {status} with a body that is not JSON: "
                            f"{body_excerpt(response.content, self._api_key)}",
                            retryable=False,
                            status_code=status,
                        ) from None
                error = status_error(
                    call, status, response.content, secret=self._api_key, attempt=attempt
                )
                if error.retryable:
                    retry_after = retry_after_seconds(response.headers)
            if not error.retryable or attempt > self.max_retries:
                raise error
            await asyncio.sleep(
                backoff_delay(
                    attempt,
                    retry_after,
                    backoff_s=self.retry_backoff_s,
                    max_delay_s=self.max_retry_after_s,
                )
            )

