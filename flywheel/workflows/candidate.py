"""CandidateWorkflow: one candidate's lifecycle within a run.

deploy ─► ┬─ evaluate(base) ─────────────────┐
          ├─ evaluate(icl) ──────────────────┤
          └─ customize ─► evaluate(customized) ┴─► teardown (always, also on cancel)

A failing step is recorded in the result and does not stop the other branches; teardown runs in
``finally`` so nothing stays deployed, whatever happened.

Cancellation: a cancelled candidate starts no further step and waits until every branch has
stopped (its activities confirmed cancelled) before tearing down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from flywheel.activities import names
    from flywheel.schemas import (
        CandidateInput,
        CandidateProgress,
        CandidateResult,
        CustomizationResult,
        CustomizeInput,
        DatasetRef,
        DeployInput,
        Deployment,
        EvalKind,
        EvalProgress,
        EvalResult,
        EvaluateInput,
        StepStatus,
        TeardownInput,
    )
    from flywheel.workflows.errors import failure_message
    from flywheel.workflows.options import retry_policy, seconds

CANCEL_STOPS_STEPS = "cancel-stops-candidate-steps"
"""Patch: once cancelled, start no new step and let no branch outlive the others (see
``_cancel_requested`` and ``_all_branches``). Runs recorded before it replay the old way."""


@workflow.defn(name="CandidateWorkflow")
class CandidateWorkflow:
    def __init__(self) -> None:
        self._progress: CandidateProgress | None = None
        self._result: CandidateResult | None = None

    @workflow.run
    async def run(self, request: CandidateInput) -> CandidateResult:
        candidate = request.candidate
        self._request = request
        self._result = CandidateResult(
            name=candidate.name,
            model=candidate.model,
            platform=candidate.platform,
            status=StepStatus.RUNNING,
            started_at=workflow.now(),
        )
        self._progress = CandidateProgress(name=candidate.name, status=StepStatus.RUNNING)
        deployment: Deployment | None = None
        try:
            self._stage("deploying")
            deployment = await self._activity(
                names.DEPLOY_CANDIDATE,
                DeployInput(run_id=request.run_id, candidate=candidate, config=request.config),
                result_type=Deployment,
                timeout_s=request.config.timeouts.deploy_timeout_s,
                summary=f"deploy {candidate.name}",
            )
            self._stage("evaluating")
            await self._all_branches(
                self._evaluate(deployment, EvalKind.BASE, request.datasets.eval),
                self._evaluate(deployment, EvalKind.ICL, request.datasets.icl.get(candidate.name)),
                self._customize_then_evaluate(deployment),
            )
            completed = any(e.status == StepStatus.COMPLETED for e in self._result.evals)
            self._result.status = StepStatus.COMPLETED if completed else StepStatus.FAILED
            if not completed:
                self._result.error = (
                    self._result.error or "no evaluation of this candidate completed"
                )
        except asyncio.CancelledError:
            self._result.status = StepStatus.CANCELLED
            self._result.error = "cancelled"
            self._progress_cancelled()
            raise
        except ActivityError as exc:
            self._result.status = StepStatus.FAILED
            self._result.error = f"deploy failed: {failure_message(exc)}"
        finally:
            await self._teardown(deployment)
            self._result.finished_at = workflow.now()
            self._progress.status = self._result.status
            self._progress.error = self._result.error
            self._stage("done")
        return self._result

    @workflow.query
    def progress(self) -> CandidateProgress | None:
        return self._progress

    @workflow.query
    def result(self) -> CandidateResult | None:
        """The candidate's results so far (complete once the workflow has finished)."""
        return self._result

    # --- steps ---

    async def _evaluate(
        self,
        deployment: Deployment,
        kind: EvalKind,
        dataset: DatasetRef | None,
        *,
        model: str | None = None,
        skip_reason: str | None = None,
    ) -> None:
        assert self._result is not None and self._progress is not None
        if dataset is None and skip_reason is None:
            skip_reason = "no few-shot dataset was built (icl_config.max_examples is 0)"
        if skip_reason is not None or dataset is None:
            self._record_eval(
                EvalResult(kind=kind, status=StepStatus.SKIPPED, skipped_reason=skip_reason)
            )
            return
        self._progress.evals[kind] = EvalProgress(
            status=StepStatus.RUNNING, total=dataset.n_records
        )
        request = self._request
        started = workflow.now()
        try:
            result = await self._activity(
                names.EVALUATE_CANDIDATE,
                EvaluateInput(
                    run_id=request.run_id,
                    candidate=request.candidate,
                    config=request.config,
                    deployment=deployment,
                    kind=kind,
                    dataset=dataset,
                    workload_type=request.datasets.workload_type,
                    model=model,
                ),
                result_type=EvalResult,
                timeout_s=request.config.timeouts.evaluation_timeout_s,
                summary=f"evaluate {request.candidate.name} ({kind.value}, "
                f"{dataset.n_records} records)",
            )
        except ActivityError as exc:
            result = EvalResult(
                kind=kind,
                status=StepStatus.FAILED,
                model=model or deployment.model,
                error=failure_message(exc),
                started_at=started,
                finished_at=workflow.now(),
            )
        self._record_eval(result)

    async def _customize_then_evaluate(self, deployment: Deployment) -> None:
        assert self._result is not None and self._progress is not None
        request = self._request
        candidate = request.candidate
        reason: str | None = None
        if not deployment.supports_customization:
            reason = deployment.unsupported_reason or (
                f"customization is not supported by the {candidate.platform.value} platform"
            )
        elif not candidate.customization_enabled:
            reason = "customization is disabled for this candidate (customization_enabled: false)"
        if reason is not None:
            self._result.customization = CustomizationResult(
                status=StepStatus.SKIPPED, skipped_reason=reason
            )
            self._progress.customization = StepStatus.SKIPPED
            await self._evaluate(
                deployment, EvalKind.CUSTOMIZED, None, skip_reason=f"no customized model: {reason}"
            )
            return

        self._progress.customization = StepStatus.RUNNING
        started = workflow.now()
        try:
            customization = await self._activity(
                names.CUSTOMIZE_CANDIDATE,
                CustomizeInput(
                    run_id=request.run_id,
                    candidate=candidate,
                    config=request.config,
                    deployment=deployment,
                    train=request.datasets.train,
                    val=request.datasets.val,
                ),
                result_type=CustomizationResult,
                timeout_s=request.config.timeouts.customization_timeout_s,
                summary=f"customize {candidate.name} (LoRA, "
                f"{request.datasets.train.n_records} training records)",
            )
        except ActivityError as exc:
            customization = CustomizationResult(
                status=StepStatus.FAILED,
                error=failure_message(exc),
                started_at=started,
                finished_at=workflow.now(),
            )
        self._result.customization = customization
        self._progress.customization = customization.status
        if customization.status != StepStatus.COMPLETED or not customization.model:
            why = customization.error or customization.skipped_reason or "no model was produced"
            await self._evaluate(
                deployment,
                EvalKind.CUSTOMIZED,
                None,
                skip_reason=f"customization did not complete: {why}",
            )
            return
        await self._evaluate(
            deployment, EvalKind.CUSTOMIZED, request.datasets.eval, model=customization.model
        )

    async def _teardown(self, deployment: Deployment | None) -> None:
        assert self._result is not None
        self._stage("tearing down")
        request = self._request
        customized = self._result.customization.model if self._result.customization else None
        try:
            await self._activity(
                names.TEARDOWN_CANDIDATE,
                TeardownInput(
                    run_id=request.run_id,
                    candidate=request.candidate,
                    config=request.config,
                    deployment=deployment,
                    customized_model=customized,
                ),
                result_type=None,
                timeout_s=request.config.timeouts.teardown_timeout_s,
                summary=f"teardown {request.candidate.name}",
                cancellable=False,
            )
        except ActivityError as exc:
            message = f"teardown failed: {failure_message(exc)}"
            self._result.error = (
                f"{self._result.error}; {message}" if self._result.error else message
            )

    # --- helpers ---

    def _record_eval(self, result: EvalResult) -> None:
        assert self._result is not None and self._progress is not None
        self._result.evals = [e for e in self._result.evals if e.kind != result.kind] + [result]
        self._result.evals.sort(key=lambda e: list(EvalKind).index(e.kind))
        self._progress.evals[result.kind] = EvalProgress(
            status=result.status, done=result.n_total, total=result.n_total
        )

    async def _all_branches(self, *branches: Coroutine[Any, Any, None]) -> None:
        """Run the branches concurrently; never leave one running when this returns or raises.

        ``asyncio.gather`` raises as soon as one branch ends cancelled while the others are still
        waiting for their activities' cancellation: teardown would then release the deployment
        under running evaluations and the workflow complete with its activities still in flight.
        """
        tasks = [asyncio.create_task(branch) for branch in branches]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            pending = [task for task in tasks if not task.done()]
            if pending and workflow.patched(CANCEL_STOPS_STEPS):
                for task in pending:
                    task.cancel()
                await workflow.wait(pending)
            raise

    def _cancel_requested(self) -> bool:
        """Whether this candidate was cancelled; checked before each new step is started.

        A step that completes just as the cancel arrives returns its result normally (with
        WAIT_CANCELLATION_COMPLETED the activity's outcome wins, and the task's cancellation is
        spent), so without this check the branch would go on to start its next step (e.g. the
        customized evaluation, or every evaluation after deploy) and nothing would ever cancel it.
        """
        return workflow.cancellation_reason() is not None and workflow.patched(CANCEL_STOPS_STEPS)

    def _progress_cancelled(self) -> None:
        """Steps still shown as running will not finish: show them as cancelled."""
        assert self._progress is not None
        for kind, progress in self._progress.evals.items():
            if progress.status == StepStatus.RUNNING:
                self._progress.evals[kind] = EvalProgress(
                    status=StepStatus.CANCELLED, done=progress.done, total=progress.total
                )
        if self._progress.customization == StepStatus.RUNNING:
            self._progress.customization = StepStatus.CANCELLED

    def _stage(self, stage: str) -> None:
        assert self._progress is not None
        self._progress.stage = stage
        workflow.set_current_details(f"{self._request.candidate.name}: {stage}")

    async def _activity(
        self,
        name: str,
        arg: Any,
        *,
        result_type: type | None,
        timeout_s: float,
        summary: str,
        cancellable: bool = True,
    ) -> Any:
        """Run one step; a cancellable step is not started once the candidate was cancelled."""
        if cancellable and self._cancel_requested():
            raise asyncio.CancelledError()
        timeouts = self._request.config.timeouts
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=seconds(timeout_s),
            heartbeat_timeout=seconds(timeouts.heartbeat_timeout_s),
            retry_policy=retry_policy(timeouts),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=summary,
        )
