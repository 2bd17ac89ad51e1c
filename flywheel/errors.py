"""Errors that carry a message meant for the user (printed by the CLI without a traceback)."""

from __future__ import annotations


class FlywheelError(Exception):
    """Base class for every error whose message tells the user what went wrong and what to do."""


class ConfigError(FlywheelError):
    """The configuration (file, environment or per-run override) is invalid."""


class NotFoundError(FlywheelError):
    """A run, schedule or stored object that the user named does not exist."""


class ConnectionFailed(FlywheelError):
    """A server (Temporal, a store, an endpoint) could not be reached."""


class InvalidDataError(FlywheelError):
    """Input data cannot be used (for example: too few valid log records for a run)."""


class UnsupportedOperation(FlywheelError):
    """A platform was asked for something it cannot do (for example: customize an endpoint)."""


class RemoteCallError(FlywheelError):
    """A call to a remote service failed; the message names the call and the reason.

    `retryable` is True for failures worth retrying (timeouts, 429, 5xx, connection errors).
    """

    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
