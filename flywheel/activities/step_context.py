"""Build a platform StepContext from the running activity: heartbeats and resume details."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from flywheel.platforms.base import StepContext


def current_step_context() -> StepContext:
    """Heartbeat through Temporal; resume from the last heartbeat of a previous attempt."""
    info = activity.info()
    resume: dict[str, Any] = {}
    if info.heartbeat_details:
        last = info.heartbeat_details[-1]
        if isinstance(last, dict):
            resume = last
    return StepContext(heartbeat=_heartbeat, resume=resume, attempt=info.attempt)


def _heartbeat(details: dict[str, Any]) -> None:
    activity.heartbeat(details)
