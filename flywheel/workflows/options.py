"""Activity timeouts and retry policies, derived from the run's configuration."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from flywheel.activities.names import NON_RETRYABLE_ERROR_TYPES
from flywheel.config import TimeoutsConfig

BOOTSTRAP_TIMEOUT = timedelta(seconds=60)
"""For activities that run before the run's configuration is known."""

BOOTSTRAP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
    non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
)


ASSESS_TIMEOUT = timedelta(minutes=5)
"""Assessing a finished run: read the eval records and the previous run, compute."""

PUBLISH_TIMEOUT = timedelta(minutes=5)
"""Notifying (webhook, with its own retries) and MLflow logging."""

PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)
"""publish_run never raises for a webhook or MLflow failure: these retries are for a lost
worker; a retry may call the webhook again (at-least-once)."""


def retry_policy(timeouts: TimeoutsConfig) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=timeouts.retry_initial_interval_s),
        maximum_interval=timedelta(seconds=timeouts.retry_max_interval_s),
        maximum_attempts=timeouts.activity_max_attempts,
        non_retryable_error_types=NON_RETRYABLE_ERROR_TYPES,
    )


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
