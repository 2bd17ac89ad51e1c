"""Shared retry and error-description rules of the HTTP clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from flywheel.clients.retries import (
    after_attempts,
    backoff_delay,
    body_excerpt,
    is_retryable_status,
    redact,
    retry_after_seconds,
    status_error,
)


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (408, True),
        (429, True),
        (500, True),
        (503, True),
        (400, False),
        (401, False),
        (404, False),
        (422, False),
    ],
)
def test_which_statuses_are_retried(status: int, retry: bool) -> None:
    assert is_retryable_status(status) is retry


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    for attempt, base in ((1, 0.5), (2, 1.0), (3, 2.0)):
        delay = backoff_delay(attempt, None, backoff_s=0.5, max_delay_s=60)
        assert 0.8 * base <= delay <= 1.2 * base
    assert backoff_delay(20, None, backoff_s=0.5, max_delay_s=3.0) == 3.0
    assert backoff_delay(1, 7.5, backoff_s=0.5, max_delay_s=60) == 7.5  # the server decides
    assert backoff_delay(1, 600.0, backoff_s=0.5, max_delay_s=60) == 60


def test_retry_after_numbers_and_dates() -> None:
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": " 1.5 "}) == 1.5
    assert retry_after_seconds({"Retry-After": "-4"}) == 0.0
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_seconds({"Retry-After": later}) or 0) <= 31


def test_error_text_is_short_and_never_holds_the_key() -> None:
    body = b'{"error": "bad key sk-SECRET", "detail": "' + b"x" * 2000 + b'"}'
    excerpt = body_excerpt(body, "sk-SECRET")
    assert "sk-SECRET" not in excerpt and "***" in excerpt
    assert len(excerpt) == 301 and excerpt.endswith("…")
    assert body_excerpt(b"  ", None) == "(empty body)"
    assert redact("no secret here", None) == "no secret here"
    assert after_attempts(1) == "" and after_attempts(4) == " (after 4 attempts)"

    error = status_error("chat request to http://h/v1", 503, body, secret="sk-SECRET", attempt=3)
    assert error.retryable and error.status_code == 503
    assert str(error).startswith("chat request to http://h/v1 failed: HTTP 503: ")
    assert str(error).endswith("(after 3 attempts)") and "sk-SECRET" not in str(error)
    final = status_error("call", 400, b"nope", secret=None, attempt=1, where=" (batch 2)")
    assert not final.retryable and str(final) == "call failed: HTTP 400: nope (batch 2)"
