"""Turn our exceptions into Temporal ApplicationErrors that retry (or not) for the right reasons."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from flywheel.errors import (
    ConfigError,
    ConnectionFailed,
    FlywheelError,
    InvalidDataError,
    NotFoundError,
    RemoteCallError,
    UnsupportedOperation,
)

P = ParamSpec("P")
R = TypeVar("R")

_PERMANENT = (ConfigError, InvalidDataError, UnsupportedOperation, NotFoundError)


def to_application_error(exc: FlywheelError) -> ApplicationError:
    """An ApplicationError whose type is the exception's class name and whose message is its text.

    Bad config, bad data and unsupported requests are non-retryable; remote failures retry when
    the remote said so (timeouts, 429, 5xx), connection failures always retry.
    """
    if isinstance(exc, _PERMANENT):
        retryable = False
    elif isinstance(exc, RemoteCallError):
        retryable = exc.retryable
    elif isinstance(exc, ConnectionFailed):
        retryable = True
    else:
        retryable = True
    return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=not retryable)


def translate_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate an activity so FlywheelErrors surface as well-typed ApplicationErrors."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except FlywheelError as exc:
            raise to_application_error(exc) from None

    return wrapper
