"""A model platform for orchestration tests: it deploys nothing but records every call.

It implements the real ModelPlatform protocol (deploy / evaluate / customize / teardown) so the
real activities and workflows run unchanged; evaluation delegates to the real built-in evaluator
against an OpenAI-compatible server when ``base_url`` is given, else returns fixed metrics.
Failures, delays and customization support are configured per candidate name.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from flywheel.config import Platform
from flywheel.errors import RemoteCallError, UnsupportedOperation
from flywheel.platforms.base import StepContext
from flywheel.schemas import (
    CustomizationResult,
    CustomizeInput,
    DeployInput,
    Deployment,
    EvalResult,
    EvaluateInput,
    StepStatus,
    TeardownInput,
    utcnow,
)


@dataclass
class Behaviour:
    """How the platform treats one candidate."""

    deploy_error: str | None = None
    deploy_delay_s: float = 0.0
    evaluate_delay_s: float = 0.0
    evaluate_error: dict[str, str] = field(default_factory=dict)
    customize: bool = True
    customize_error: str | None = None
    customize_delay_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=lambda: {"function_name_accuracy": 0.5})


class RecordingPlatform:
    """Records calls in ``events`` as (call, candidate, detail) and tracks live deployments."""

    name = Platform.ENDPOINTS

    def __init__(self, behaviours: dict[str, Behaviour] | None = None) -> None:
        self.behaviours = behaviours or {}
        self.events: list[tuple[str, str, Any]] = []
        self.deployed: set[str] = set()
        self.max_concurrent_deployments = 0
        self.busy: dict[str, int] = {}
        """Evaluations and customizations of each candidate in progress right now."""
        self.torn_down_while_busy: list[str] = []
        """Candidates torn down while one of their steps was still running (never should be)."""

    def _behaviour(self, name: str) -> Behaviour:
        return self.behaviours.get(name, Behaviour())

    def calls(self, call: str) -> list[tuple[str, Any]]:
        return [(candidate, detail) for kind, candidate, detail in self.events if kind == call]

    async def deploy(self, request: DeployInput, ctx: StepContext) -> Deployment:
        name = request.candidate.name
        behaviour = self._behaviour(name)
        self.events.append(("deploy", name, None))
        await _sleep_with_heartbeat(behaviour.deploy_delay_s, ctx)
        if behaviour.deploy_error:
            raise RemoteCallError(behaviour.deploy_error, retryable=False)
        self.deployed.add(name)
        self.max_concurrent_deployments = max(self.max_concurrent_deployments, len(self.deployed))
        return Deployment(
            candidate=name,
            platform=request.candidate.platform,
            model=request.candidate.model,
            base_url=request.candidate.base_url,
            supports_customization=behaviour.customize,
            unsupported_reason=None if behaviour.customize else "not supported here",
        )

    async def evaluate(self, request: EvaluateInput, ctx: StepContext) -> EvalResult:
        name = request.candidate.name
        behaviour = self._behaviour(name)
        self.events.append(("evaluate", name, (request.kind.value, request.model)))
        started = utcnow()
        async with self._busy(name):
            await _sleep_with_heartbeat(behaviour.evaluate_delay_s, ctx)
        error = behaviour.evaluate_error.get(request.kind.value)
        if error:
            raise RemoteCallError(error, retryable=False)
        return EvalResult(
            kind=request.kind,
            status=StepStatus.COMPLETED,
            model=request.model or request.deployment.model,
            metrics=dict(behaviour.metrics),
            n_total=request.dataset.n_records,
            n_scored=request.dataset.n_records,
            started_at=started,
            finished_at=utcnow(),
        )

    async def customize(self, request: CustomizeInput, ctx: StepContext) -> CustomizationResult:
        name = request.candidate.name
        behaviour = self._behaviour(name)
        self.events.append(("customize", name, request.train.n_records))
        if not behaviour.customize:
            raise UnsupportedOperation("not supported here")
        async with self._busy(name):
            await _sleep_with_heartbeat(behaviour.customize_delay_s, ctx)
        if behaviour.customize_error:
            raise RemoteCallError(behaviour.customize_error, retryable=False)
        return CustomizationResult(
            status=StepStatus.COMPLETED,
            model=f"{request.candidate.model}@lora-{request.run_id[-6:]}",
            epochs_completed=request.config.training_config.epochs,
            steps_completed=10,
        )

    async def teardown(self, request: TeardownInput, ctx: StepContext) -> None:
        name = request.candidate.name
        self.events.append(("teardown", name, request.customized_model))
        if self.busy.get(name):
            self.torn_down_while_busy.append(name)
        self.deployed.discard(name)

    async def aclose(self) -> None:
        return None

    @asynccontextmanager
    async def _busy(self, name: str) -> AsyncIterator[None]:
        self.busy[name] = self.busy.get(name, 0) + 1
        try:
            yield
        finally:
            self.busy[name] -= 1


async def _sleep_with_heartbeat(seconds: float, ctx: StepContext) -> None:
    """Sleep in small steps, heartbeating, so cancellation reaches the activity."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        ctx.heartbeat({"sleeping": True})
        await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))
