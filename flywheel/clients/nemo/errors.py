"""NMP failures as the flywheel's errors, and the one retry loop every NMP call goes through.

The SDK (``nemo_microservices``) and ``huggingface_hub`` raise their own exceptions; callers here
get :class:`~flywheel.errors.RemoteCallError` (retryable for timeouts, connection errors, 408,
429 and 5xx; not for other 4xx) with a message naming the call and the reason, or
:class:`~flywheel.errors.ConfigError` when the worker itself is misconfigured. Messages are built
from status codes and response bodies only, with every known secret masked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import nemo_microservices
import orjson

from flywheel.clients.retries import backoff_delay, body_excerpt, is_retryable_status, redact
from flywheel.errors import ConfigError, FlywheelError, RemoteCallError

__all__ = ["RetryPolicy", "is_status", "status_of", "to_flywheel_error"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_DELAY_S = 15.0


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed NMP, Data Store or already-translated call (None: no reply)."""
    if isinstance(exc, RemoteCallError):
        return exc.status_code
    if isinstance(exc, nemo_microservices.APIStatusError):
        return exc.status_code
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def is_status(exc: BaseException, *codes: int) -> bool:
    """Whether ``exc`` is a reply with one of these HTTP statuses."""
    return status_of(exc) in codes


def to_flywheel_error(call: str, exc: BaseException, secrets: Iterable[str] = ()) -> FlywheelError:
    """``exc`` (from the SDK, ``huggingface_hub`` or httpx) as a FlywheelError about ``call``."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(exc, FlywheelError):
        return exc
    if isinstance(exc, OfflineModeIsEnabled):
        return ConfigError(
            f"{call}: HF_HUB_OFFLINE is set on the worker, so huggingface_hub refuses every "
            "request, including those to the NeMo Data Store: unset it on workers that serve "
            "the nemo platform"
        )
    status = status_of(exc)
    if isinstance(exc, nemo_microservices.APIStatusError | HfHubHTTPError) and status is not None:
        reason = _reply_text(exc)
        retryable = is_retryable_status(status)
        message = f"{call} failed: HTTP {status}: {reason}"
        return RemoteCallError(_masked(message, secrets), retryable=retryable, status_code=status)
    if isinstance(exc, nemo_microservices.APITimeoutError) or _is_timeout(exc):
        return RemoteCallError(f"{call} failed: the request timed out", retryable=True)
    if isinstance(exc, nemo_microservices.APIConnectionError) or _is_transport_error(exc):
        return RemoteCallError(
            _masked(f"{call} failed: connection error ({type(exc).__name__}: {exc})", secrets),
            retryable=True,
        )
    if isinstance(exc, nemo_microservices.APIResponseValidationError):
        return RemoteCallError(
            f"{call} failed: the reply does not match the NeMo SDK's schema", retryable=False
        )
    return RemoteCallError(
        _masked(f"{call} failed: {type(exc).__name__}: {exc}", secrets), retryable=False
    )


def _reply_text(exc: BaseException) -> str:
    """What the server said: a JSON body's ``detail``/``message``/``error``, else the body."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if body.get(key):
                value = body[key]
                text = value if isinstance(value, str) else orjson.dumps(value).decode()
                return body_excerpt(text.encode(), None)
    server_message = getattr(exc, "server_message", None)
    if isinstance(server_message, str) and server_message.strip():
        return body_excerpt(server_message.encode(), None)
    response = getattr(exc, "response", None)
    try:
        content = response.content if response is not None else b""
    except Exception:  # a streamed body that was never read
        content = b""
    return body_excerpt(content or b"", None)


def _masked(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = redact(text, secret)
    return text


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or type(exc).__name__.endswith("TimeoutException")


def _is_transport_error(exc: BaseException) -> bool:
    """httpx / httpx2 transport failures (huggingface_hub 1.x+ uses httpx2), and OS errors."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "NetworkError"}) or isinstance(exc, ConnectionError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often one NMP call is tried again, and how long to wait in between."""

    max_retries: int = 4
    backoff_s: float = 1.0
    secrets: tuple[str, ...] = field(default=(), repr=False)

    async def run(self, call: str, fn: Callable[[], Awaitable[T]], *, retry: bool = True) -> T:
        """Await ``fn()``; on a retryable failure try again (at most ``max_retries`` times).

        ``retry=False`` is for calls that are not safe to repeat blindly (creates whose reply
        may have been lost): the caller looks up what exists before trying again. Every failure
        leaves as a FlywheelError about ``call``.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = to_flywheel_error(call, exc, self.secrets)
                retryable = isinstance(error, RemoteCallError) and error.retryable
                if not (retry and retryable) or attempt > self.max_retries:
                    if isinstance(error, RemoteCallError) and retryable and attempt > 1:
                        error = RemoteCallError(
                            f"{error} (after {attempt} attempts)",
                            retryable=True,
                            status_code=error.status_code,
                        )
                    raise error from None
                delay = backoff_delay(
                    attempt, None, backoff_s=self.backoff_s, max_delay_s=MAX_DELAY_S
                )
                log.info("%s: %s; trying again in %.1f s", call, error, delay)
                await asyncio.sleep(delay)

    async def run_sync(self, call: str, fn: Callable[[], T], *, retry: bool = True) -> T:
        """:meth:`run` for a blocking call (``huggingface_hub``), run in a worker thread."""

        async def in_thread() -> T:
            return await asyncio.to_thread(fn)

        return await self.run(call, in_thread, retry=retry)
