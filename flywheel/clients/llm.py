"""An async client for OpenAI-compatible chat endpoints (vLLM, NIM, Ollama, hosted APIs).

One pooled ``httpx.AsyncClient`` per :class:`ChatClient`, sized for the caller's concurrency.
Transient failures (connection errors, timeouts, 408/429/5xx) are retried with exponential
backoff; everything else raises :class:`~flywheel.errors.RemoteCallError` at once. The API key
is sent as a bearer token and never appears in an error message.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from flywheel.clients.closing import AsyncClosing
from flywheel.errors import ConfigError, RemoteCallError

_RETRYABLE_STATUS = frozenset({408, 429})
_EXCERPT_CHARS = 300
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
        self._http = httpx.AsyncClient(
            headers=headers,
            # No pool timeout: callers bound their own concurrency, waiting for a free
            # connection is not a failure of the endpoint.
            timeout=httpx.Timeout(timeout_s, pool=None),
            transport=LanedTransport(max_connections),
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

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
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            retry_after: float | None = None
            try:
                response = await self._http.request(method, url, content=content, headers=headers)
            except httpx.TimeoutException as exc:
                error = RemoteCallError(
                    f"{call} timed out after {self.timeout_s:g}s ({type(exc).__name__})"
                    f"{self._after(attempt)}",
                    retryable=True,
                )
            except httpx.TransportError as exc:
                error = RemoteCallError(
                    f"{call} failed: cannot reach the endpoint "
                    f"({type(exc).__name__}: {self._redact(str(exc)) or 'no detail'})"
                    f"{self._after(attempt)}",
                    retryable=True,
                )
            else:
                latency_s = time.perf_counter() - started
                status = response.status_code
                if 200 <= status < 300:
                    try:
                        return orjson.loads(response.content), latency_s, attempt
                    except orjson.JSONDecodeError:
                        raise RemoteCallError(
                            f"{call} returned HTTP {status} with a body that is not JSON: "
                            f"{self._excerpt(response)}",
                            retryable=False,
                            status_code=status,
                        ) from None
                retryable = status in _RETRYABLE_STATUS or status >= 500
                error = RemoteCallError(
                    f"{call} failed: HTTP {status}: {self._excerpt(response)}"
                    f"{self._after(attempt) if retryable else ''}",
                    retryable=retryable,
                    status_code=status,
                )
                if retryable:
                    retry_after = self._retry_after(response)
            if not error.retryable or attempt > self.max_retries:
                raise error
            await asyncio.sleep(self._delay(attempt, retry_after))

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before the next attempt: Retry-After if given, else backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        backoff = self.retry_backoff_s * (2 ** (attempt - 1))
        # A little jitter spreads the retries of many concurrent callers.
        return min(backoff * random.uniform(0.8, 1.2), self.max_retry_after_s)

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if not value:
            return None
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    def _after(self, attempt: int) -> str:
        return f" (after {attempt} attempts)" if attempt > 1 else ""

    def _excerpt(self, response: httpx.Response) -> str:
        text = " ".join(response.content[: _EXCERPT_CHARS * 4].decode("utf-8", "replace").split())
        text = self._redact(text)
        if len(text) > _EXCERPT_CHARS:
            text = text[:_EXCERPT_CHARS] + "…"
        return text or "(empty body)"

    def _redact(self, text: str) -> str:
        """``text`` with the API key masked, in case a server or library echoes it."""
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "***")
        return text
