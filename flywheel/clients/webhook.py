"""POST a JSON notification to a webhook (Slack incoming webhooks, chat bots, CI hooks).

The URL is a secret (a Slack webhook URL is its own credential): it is never written into an
error message or a log line; errors say what went wrong, not where. Connection errors,
timeouts, 429 and 5xx are retried with exponential backoff; other answers fail at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from flywheel.errors import FlywheelError

__all__ = ["WebhookError", "post_webhook"]


class WebhookError(FlywheelError):
    """The webhook could not be called (the message never holds its URL)."""


async def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout_s: float = 10.0,
    max_attempts: int = 3,
    backoff_s: float = 0.5,
) -> int:
    """POST ``payload`` as JSON to ``url``; return the HTTP status of the accepted answer."""
    if not url.lower().startswith(("http://", "https://")):
        raise WebhookError("the webhook URL must start with http:// or https://")
    last = "no attempt was made"
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
        for attempt in range(1, max(1, max_attempts) + 1):
            try:
                response = await client.post(url, json=dict(payload))
            except httpx.HTTPError as exc:
                last = f"the webhook call failed ({type(exc).__name__})"
            else:
                if response.status_code < 300:
                    return response.status_code
                last = f"the webhook answered HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    raise WebhookError(last)
            if attempt < max_attempts:
                await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
    raise WebhookError(f"{last} after {max_attempts} attempt(s)")
