"""Candidate model operations: deploy, evaluate, customize, tear down — delegated to platforms."""

from __future__ import annotations

from temporalio import activity

from flywheel.activities import names
from flywheel.activities.errors import translate_errors
from flywheel.activities.resources import WorkerResources
from flywheel.activities.step_context import current_step_context
from flywheel.schemas import (
    CustomizationResult,
    CustomizeInput,
    DeployInput,
    Deployment,
    EvalResult,
    EvaluateInput,
    TeardownInput,
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
        return await platform.evaluate(request, current_step_context(kind=request.kind.value))

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
