"""Candidate model operations: deploy, evaluate, customize, tear down — delegated to platforms."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from flywheel.activities import names
from flywheel.activities.errors import translate_errors
from flywheel.activities.resources import WorkerResources
from flywheel.activities.step_context import current_step_context
from flywheel.config import Platform
from flywheel.platforms.base import StepContext
from flywheel.schemas import (
    CustomizationResult,
    CustomizeInput,
    DeployInput,
    Deployment,
    EvalResult,
    EvaluateInput,
    ReleaseRunInput,
    TeardownInput,
    WorkloadType,
)


class CandidateActivities:
    def __init__(self, resources: WorkerResources) -> None:
        self._resources = resources

    @activity.defn(name=names.DEPLOY_CANDIDATE)
    @translate_errors
    async def deploy_candidate(self, request: DeployInput) -> Deployment:
        """Deploy the candidate (or re-attach to its deployment) and wait until it answers."""
        platform = self._resources.platform(request.candidate.platform)
        return await platform.deploy(request, current_step_context())

    @activity.defn(name=names.EVALUATE_CANDIDATE)
    @translate_errors
    async def evaluate_candidate(self, request: EvaluateInput) -> EvalResult:
        """Score the candidate on an eval dataset; resumes from its checkpoint when retried."""
        platform = self._resources.platform(request.candidate.platform)
        ctx = current_step_context(kind=request.kind.value)
        request = await self._with_judge_nim(request, ctx)
        return await platform.evaluate(request, ctx)

    @activity.defn(name=names.RELEASE_RUN_RESOURCES)
    @translate_errors
    async def release_run_resources(self, request: ReleaseRunInput) -> list[str]:
        """Delete what the run deployed for all its candidates (a judge NIM with ``lifetime:
        run``) once every candidate is done; idempotent."""
        released: list[str] = []
        if self._resources.has_platform(Platform.NEMO):
            platform: Any = self._resources.platform(Platform.NEMO)
            if await platform.release_judge(request.config, request.run_id):
                released.append("judge NIM")
        return released

    async def _with_judge_nim(self, request: EvaluateInput, ctx: StepContext) -> EvaluateInput:
        """The request with a judge NIM (``llm_judge_config.deployment_type: local``) deployed
        through NeMo and its endpoint in place, when this evaluation will be judged and the
        worker has the nemo platform (otherwise the evaluator skips a local judge, saying so)."""
        config = request.config
        judge = config.llm_judge_config
        if judge is None or judge.deployment_type != "local":
            return request
        nemo_evaluator = (
            request.candidate.platform == Platform.NEMO
            and config.nmp_config is not None
            and config.nmp_config.evaluator == "nemo"
        )
        if request.workload_type != WorkloadType.GENERIC and not nemo_evaluator:
            return request  # tool calls are compared, not judged
        if not self._resources.has_platform(Platform.NEMO):
            return request
        platform: Any = self._resources.platform(Platform.NEMO)
        remote = await platform.judge_nim(config, request.run_id, ctx)
        return request.model_copy(
            update={"config": config.model_copy(update={"llm_judge_config": remote})}
        )

    @activity.defn(name=names.CUSTOMIZE_CANDIDATE)
    @translate_errors
    async def customize_candidate(self, request: CustomizeInput) -> CustomizationResult:
        """LoRA-fine-tune the candidate on the run's train/val datasets."""
        platform = self._resources.platform(request.candidate.platform)
        return await platform.customize(request, current_step_context())

    @activity.defn(name=names.TEARDOWN_CANDIDATE)
    @translate_errors
    async def teardown_candidate(self, request: TeardownInput) -> None:
        """Release the candidate's deployment and customization leftovers (idempotent)."""
        platform = self._resources.platform(request.candidate.platform)
        await platform.teardown(request, current_step_context())
