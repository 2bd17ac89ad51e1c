"""What every HTTP client here does the same way: which failures to retry, how long to wait,
and how to describe a failed call without leaking its API key."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from flywheel.errors import RemoteCallError

RETRYABLE_STATUS = frozenset({408, 429})
"""Besides every 5xx: request timeout and rate limiting."""
EXCERPT_CHARS = 300


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def backoff_delay(
    attempt: int, retry_after: float | None, *, backoff_s: float, max_delay_s: float
) -> float:
    """Seconds before the next attempt: the server's Retry-After if given, else exponential
    backoff with a little jitter (which spreads the retries of many concurrent callers)."""
    if retry_after is not None:
        return min(retry_after, max_delay_s)
    backoff = backoff_s * (2 ** (attempt - 1))
    return min(backoff * random.uniform(0.8, 1.2), max_delay_s)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header: a number, or an HTTP date; None if absent/odd."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value or not value.strip():
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


def after_attempts(attempt: int) -> str:
    return f" (after {attempt} attempts)" if attempt > 1 else ""


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked, in case a server or library echoes it."""
    if secret and secret in text:
        return text.replace(secret, "***")
    return text


def body_excerpt(content: bytes, secret: str | None) -> str:
    """The start of a response body, whitespace collapsed, secret masked, for error messages."""
    text = " ".join(content[: EXCERPT_CHARS * 4].decode("utf-8", "replace").split())
    text = redact(text, secret)
    if len(text) > EXCERPT_CHARS:
        text = text[:EXCERPT_CHARS] + "…"
    return text or "(empty body)"


def status_error(
    call: str, status: int, content: bytes, *, secret: str | None, attempt: int, where: str = ""
) -> RemoteCallError:
    """The error for a non-2xx answer to ``call``, retryable for 408, 429 and 5xx."""
    retryable = is_retryable_status(status)
    return RemoteCallError(
        f"{call} failed: HTTP {status}: {body_excerpt(content, secret)}{where}"
        f"{after_attempts(attempt) if retryable else ''}",
        retryable=retryable,
        status_code=status,
    )
