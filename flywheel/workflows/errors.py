"""Readable messages from Temporal failure chains (ActivityError → ApplicationError → …)."""

from __future__ import annotations

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    TimeoutError,
)


def failure_message(exc: BaseException) -> str:
    """The innermost meaningful message of a failure, e.g. the activity's ApplicationError text."""
    current: BaseException | None = exc
    message = str(exc)
    while current is not None:
        if isinstance(current, ApplicationError):
            return current.message or current.type or message
        if isinstance(current, TimeoutError):
            return (
                f"timed out ({current.type.name.lower().replace('_', '-')})"
                if current.type
                else "timed out"
            )
        if isinstance(current, CancelledError):
            return "cancelled"
        if isinstance(current, ActivityError | ChildWorkflowError):
            current = current.cause
            continue
        if isinstance(current, FailureError):
            message = current.message or message
        current = current.__cause__
    return message
