"""Build a platform StepContext from the running activity: heartbeats and resume details."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from flywheel.platforms.base import StepContext


def current_step_context(**labels: Any) -> StepContext:
    """Heartbeat through Temporal; resume from the last heartbeat of a previous attempt.

    ``labels`` (e.g. ``kind="base"``) are added to every heartbeat, so progress shown in the Web
    UI and by ``flywheel status`` says which step it belongs to.
    """
    info = activity.info()
    resume: dict[str, Any] = {}
    if info.heartbeat_details:
        last = info.heartbeat_details[-1]
        if isinstance(last, dict):
            resume = last

    def heartbeat(details: dict[str, Any]) -> None:
        activity.heartbeat({**labels, **details})

    return StepContext(
        heartbeat=heartbeat,
        resume=resume,
        attempt=info.attempt,
        cancel_is_final=cancellation_is_final,
    )


def cancellation_is_final() -> bool:
    """Whether the running activity's cancellation ends it for good: requested by its workflow
    (or the activity is gone), not a worker shutdown, heartbeat timeout or pause after which
    Temporal retries it."""
    details = activity.cancellation_details()
    if details is None:
        return True
    return not (details.worker_shutdown or details.timed_out or details.paused)
