"""The one protocol every model-ops backend implements: deploy / teardown / customize / evaluate.

Platforms know nothing of Temporal. The activity that calls them passes a :class:`StepContext`:
a heartbeat function (progress, and how cancellation reaches long waits) and the details of the
last heartbeat of a previous attempt, so a retried step re-attaches or resumes instead of
starting over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from flywheel.schemas import (
    CustomizationResult,
    CustomizeInput,
    DeployInput,
    Deployment,
    EvalResult,
    EvaluateInput,
    Platform,
    TeardownInput,
)


def _no_heartbeat(details: dict[str, Any]) -> None:
    return None


def _always_final() -> bool:
    return True


@dataclass
class StepContext:
    """What a platform step gets from its caller besides the input."""

    heartbeat: Callable[[dict[str, Any]], None] = _no_heartbeat
    """Report progress (small JSON-able dict). Must be called regularly during long waits."""
    resume: dict[str, Any] = field(default_factory=dict)
    """Details of the last heartbeat of a previous attempt of this step ({} on a first attempt)."""
    attempt: int = 1
    cancel_is_final: Callable[[], bool] = _always_final
    """After a cancellation: whether it ends the step for good (the run or candidate was
    cancelled), so remote jobs should be cancelled too; False when the step will be retried
    (the worker is shutting down, a heartbeat timed out) and the next attempt re-attaches."""


@runtime_checkable
class ModelPlatform(Protocol):
    """A backend that can deploy, customize, evaluate and tear down candidate models.

    Every method must be idempotent: deterministic names for remote objects, look up before
    create, and "not found" counts as done when tearing down.
    """

    name: Platform

    async def deploy(self, request: DeployInput, ctx: StepContext) -> Deployment:
        """Make the candidate answer requests (or check that it does) and say where."""
        ...

    async def evaluate(self, request: EvaluateInput, ctx: StepContext) -> EvalResult:
        """Score the deployed (or customized) model on an eval dataset."""
        ...

    async def customize(self, request: CustomizeInput, ctx: StepContext) -> CustomizationResult:
        """Fine-tune the candidate (LoRA) on the train/val datasets."""
        ...

    async def teardown(self, request: TeardownInput, ctx: StepContext) -> None:
        """Release everything deploy and customize created; safe to call more than once."""
        ...

    async def aclose(self) -> None:
        """Release clients and caches held by the platform (worker shutdown)."""
        ...
