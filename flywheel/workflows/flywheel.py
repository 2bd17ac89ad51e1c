"""FlywheelWorkflow: one flywheel run for one workload.

resolve config ─► prepare_datasets ─► CandidateWorkflow × N (at most max_parallel_candidates at
a time) ─► record results. The run fails only when its datasets cannot be built or no candidate
could be evaluated; a failing candidate is recorded with its error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
)

with workflow.unsafe.imports_passed_through():
    from flywheel.activities import names
    from flywheel.errors import ConfigError
    from flywheel.report.summary import recommendation_line
    from flywheel.schemas import (
        AssessRunOutput,
        Candidate,
        CandidateInput,
        CandidateProgress,
        CandidateResult,
        DatasetBundle,
        EvalProgress,
        FlywheelRunInput,
        FlywheelRunResult,
        PrepareDatasetsInput,
        PublishRunInput,
        PublishRunOutput,
        ReleaseRunInput,
        ResolveConfigInput,
        RunConfig,
        RunProgress,
        RunStatus,
        StepStatus,
    )
    from flywheel.search_attributes import BEST_CANDIDATE, BEST_EVAL_KIND, BEST_SCORE
    from flywheel.time_window import resolve_window
    from flywheel.workflows.candidate import CandidateWorkflow
    from flywheel.workflows.errors import failure_message
    from flywheel.workflows.options import (
        ASSESS_TIMEOUT,
        BOOTSTRAP_RETRY,
        BOOTSTRAP_TIMEOUT,
        PUBLISH_RETRY,
        PUBLISH_TIMEOUT,
        retry_policy,
        seconds,
    )


CANCEL_WHILE_CURATING = "cancel-while-curating-is-cancelled"
"""Patch: a run cancelled during prepare_datasets ends cancelled (it used to end failed)."""

RELEASE_RUN_RESOURCES = "release-run-resources"
"""Patch: a run whose judge NIM was deployed for it (llm_judge_config local, lifetime run)
deletes it when the run ends, after every candidate is done."""

ASSESS_AND_PUBLISH = "assess-and-publish-results"
"""Patch: a run that ends completed or failed is assessed (costs, confidence verdicts, the
recommendation, stored with the results and upserted as the BestCandidate, BestEvalKind and
BestScore search attributes); any run that ends is then published (webhook, MLflow) when
configured. Runs recorded before it replay without these steps."""


def _cancelled_step(exc: BaseException) -> bool:
    """An activity that ended because this run was cancelled."""
    return (
        isinstance(exc, ActivityError)
        and isinstance(exc.cause, CancelledError)
        and workflow.cancellation_reason() is not None
    )


@workflow.defn(name="FlywheelWorkflow")
class FlywheelWorkflow:
    def __init__(self) -> None:
        self._result: FlywheelRunResult | None = None
        self._stage_name = "starting"
        self._candidates: dict[str, CandidateProgress] = {}

    @workflow.run
    async def run(self, request: FlywheelRunInput) -> FlywheelRunResult:
        self._result = FlywheelRunResult(
            run_id=workflow.info().workflow_id,
            workload_id=request.workload_id,
            client_id=request.client_id,
            status=RunStatus.RUNNING,
            started_at=workflow.now(),
            input=request,
        )
        try:
            self._stage("resolving configuration")
            config: RunConfig = await workflow.execute_activity(
                names.RESOLVE_RUN_CONFIG,
                ResolveConfigInput(
                    config_overrides=request.config_overrides, candidates=request.candidates
                ),
                result_type=RunConfig,
                start_to_close_timeout=BOOTSTRAP_TIMEOUT,
                retry_policy=BOOTSTRAP_RETRY,
                summary="resolve the run's configuration",
            )
            self._result.config = config
            self._candidates = {c.name: CandidateProgress(name=c.name) for c in config.candidates}
            await self._record()

            self._stage("preparing datasets")
            try:
                since, until = resolve_window(request.since, request.until, workflow.now())
            except ConfigError as exc:
                raise ApplicationError(str(exc), type="ConfigError", non_retryable=True) from None
            datasets: DatasetBundle = await workflow.execute_activity(
                names.PREPARE_DATASETS,
                PrepareDatasetsInput(
                    run_id=self._result.run_id,
                    workload_id=request.workload_id,
                    client_id=request.client_id,
                    config=config,
                    since=since,
                    until=until,
                ),
                result_type=DatasetBundle,
                start_to_close_timeout=seconds(config.timeouts.datasets_timeout_s),
                heartbeat_timeout=seconds(config.timeouts.heartbeat_timeout_s),
                retry_policy=retry_policy(config.timeouts),
                summary=f"curate the logs of {request.workload_id}",
            )
            self._result.datasets = datasets
            await self._record()

            self._stage(f"evaluating {len(config.candidates)} candidate(s)")
            await self._run_candidates(config, datasets)

            if not any(c.status == StepStatus.COMPLETED for c in self._result.candidates):
                errors = "; ".join(f"{c.name}: {c.error}" for c in self._result.candidates)
                raise ApplicationError(
                    f"no candidate could be evaluated ({errors})", type="NoCandidateEvaluated"
                )
        except asyncio.CancelledError:
            await self._finish(RunStatus.CANCELLED, "cancelled")
            raise
        except (ActivityError, ApplicationError) as exc:
            if _cancelled_step(exc) and workflow.patched(CANCEL_WHILE_CURATING):
                # A cancel during prepare_datasets arrives as that activity's cancellation.
                await self._finish(RunStatus.CANCELLED, "cancelled")
                raise asyncio.CancelledError from None
            message = failure_message(exc)
            await self._finish(RunStatus.FAILED, message)
            raise ApplicationError(message, type="FlywheelRunFailed", non_retryable=True) from exc
        await self._finish(RunStatus.COMPLETED, None)
        return self._result

    @workflow.query
    def progress(self) -> RunProgress | None:
        if self._result is None:
            return None
        return RunProgress(
            run_id=self._result.run_id,
            workload_id=self._result.workload_id,
            status=self._result.status,
            stage=self._stage_name,
            started_at=self._result.started_at,
            datasets=self._result.datasets.report if self._result.datasets else None,
            candidates=list(self._candidates.values()),
            error=self._result.error,
        )

    @workflow.query
    def result(self) -> FlywheelRunResult | None:
        """The run's results so far (complete once the workflow has finished)."""
        return self._result

    # --- candidates ---

    async def _run_candidates(self, config: RunConfig, datasets: DatasetBundle) -> None:
        slots = asyncio.Semaphore(config.max_parallel_candidates)
        tasks = [
            asyncio.create_task(self._run_candidate(slots, candidate, config, datasets))
            for candidate in config.candidates
        ]
        try:
            await workflow.wait(tasks)
        except asyncio.CancelledError:
            # Cancel every candidate and wait for their teardown before the run ends.
            for task in tasks:
                task.cancel()
            await workflow.wait(tasks)
            raise
        for task in tasks:
            task.result()  # surface unexpected bugs; candidate failures are already recorded

    async def _run_candidate(
        self,
        slots: asyncio.Semaphore,
        candidate: Candidate,
        config: RunConfig,
        datasets: DatasetBundle,
    ) -> None:
        assert self._result is not None
        progress = self._candidates[candidate.name]
        try:
            async with slots:
                progress.status = StepStatus.RUNNING
                progress.stage = "running"
                result: CandidateResult = await workflow.execute_child_workflow(
                    CandidateWorkflow.run,
                    CandidateInput(
                        run_id=self._result.run_id,
                        candidate=candidate,
                        config=config,
                        datasets=datasets,
                    ),
                    id=f"{self._result.run_id}/{candidate.name}",
                    result_type=CandidateResult,
                    parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                    cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                    static_summary=(
                        f"{candidate.name} ({candidate.model}) on {candidate.platform.value}"
                    ),
                )
        except asyncio.CancelledError:
            self._set_candidate(self._candidate_stub(candidate, StepStatus.CANCELLED, "cancelled"))
            raise
        except ChildWorkflowError as exc:
            status = (
                StepStatus.CANCELLED if isinstance(exc.cause, CancelledError) else StepStatus.FAILED
            )
            result = self._candidate_stub(candidate, status, failure_message(exc))
        self._set_candidate(result)
        await self._record()

    def _candidate_stub(
        self, candidate: Candidate, status: StepStatus, error: str
    ) -> CandidateResult:
        return CandidateResult(
            name=candidate.name,
            model=candidate.model,
            platform=candidate.platform,
            status=status,
            error=error,
            finished_at=workflow.now(),
        )

    def _set_candidate(self, result: CandidateResult) -> None:
        assert self._result is not None
        results = [c for c in self._result.candidates if c.name != result.name] + [result]
        assert self._result.config is not None
        order = [c.name for c in self._result.config.candidates]
        results.sort(key=lambda c: order.index(c.name) if c.name in order else len(order))
        self._result.candidates = results
        progress = self._candidates.get(result.name)
        if progress is not None:
            progress.status = result.status
            progress.stage = "done"
            progress.error = result.error
            progress.customization = result.customization.status if result.customization else None
            progress.evals = {
                e.kind: EvalProgress(status=e.status, done=e.n_total, total=e.n_total)
                for e in result.evals
            }

    # --- bookkeeping ---

    def _stage(self, stage: str) -> None:
        self._stage_name = stage
        details = f"Stage: {stage}"
        if self._result is not None and self._result.datasets is not None:
            report = self._result.datasets.report
            dropped = ", ".join(f"{reason} {n}" for reason, n in report.dropped.items())
            details += (
                f"\n\nDatasets: {report.total_records} logs → {report.selected} selected "
                f"(eval {report.eval_records}, train {report.train_records}, "
                f"val {report.val_records}; {report.workload_type.value})"
                + (f"\n\nDropped: {dropped}" if dropped else "")
            )
        if self._result is not None and self._result.recommendation is not None:
            details += f"\n\n{recommendation_line(self._result.recommendation)}"
        workflow.set_current_details(details)

    async def _finish(self, status: RunStatus, error: str | None) -> None:
        assert self._result is not None
        self._result.status = status
        self._result.error = error
        self._result.finished_at = workflow.now()
        if self._holds_run_resources() and workflow.patched(RELEASE_RUN_RESOURCES):
            await self._release_run_resources()
        results_step = workflow.patched(ASSESS_AND_PUBLISH)
        if results_step and status != RunStatus.CANCELLED:
            await self._assess()
        self._stage(status.value)
        await self._record()
        if results_step and self._publishing_configured():
            await self._publish()

    def _holds_run_resources(self) -> bool:
        config = self._result.config if self._result is not None else None
        judge = config.llm_judge_config if config is not None else None
        return judge is not None and judge.deployment_type == "local" and judge.lifetime == "run"

    async def _release_run_resources(self) -> None:
        """Delete the run's judge NIM; a failure is logged (the deployment stays) and the
        run's outcome stays as it is."""
        assert self._result is not None and self._result.config is not None
        config = self._result.config
        self._stage("releasing the judge NIM")
        try:
            await workflow.execute_activity(
                names.RELEASE_RUN_RESOURCES,
                ReleaseRunInput(run_id=self._result.run_id, config=config),
                result_type=list[str],
                start_to_close_timeout=seconds(config.timeouts.teardown_timeout_s),
                retry_policy=retry_policy(config.timeouts),
                summary="release the run's judge NIM",
            )
        except ActivityError as exc:
            workflow.logger.warning("run resources not released: %s", failure_message(exc))

    async def _assess(self) -> None:
        """Costs, verdicts and the recommendation; a failure leaves the run unassessed."""
        assert self._result is not None
        self._stage("assessing results")
        snapshot: Any = self._result.model_copy(deep=True)
        try:
            outcome: AssessRunOutput = await workflow.execute_activity(
                names.ASSESS_RUN,
                snapshot,
                result_type=AssessRunOutput,
                start_to_close_timeout=ASSESS_TIMEOUT,
                retry_policy=BOOTSTRAP_RETRY,
                summary="assess results: costs, confidence, recommendation",
            )
        except ActivityError as exc:
            workflow.logger.warning("results not assessed: %s", failure_message(exc))
            return
        self._result.assessment = outcome.assessment
        self._result.recommendation = outcome.recommendation
        recommendation = outcome.recommendation
        registered = set(outcome.search_attributes)
        updates: list[Any] = []
        if BEST_CANDIDATE.name in registered:
            updates.append(BEST_CANDIDATE.value_set(recommendation.candidate or "none"))
        if BEST_EVAL_KIND.name in registered and recommendation.kind is not None:
            updates.append(BEST_EVAL_KIND.value_set(recommendation.kind.value))
        if BEST_SCORE.name in registered and recommendation.score is not None:
            updates.append(BEST_SCORE.value_set(float(recommendation.score)))
        if updates:
            workflow.upsert_search_attributes(updates)

    def _publishing_configured(self) -> bool:
        config = self._result.config if self._result is not None else None
        return config is not None and (
            config.notifications.webhook_url_env is not None or config.mlflow_config.enabled
        )

    async def _publish(self) -> None:
        """Webhook and MLflow; whatever happens there, the run's outcome stays as it is."""
        assert self._result is not None
        try:
            await workflow.execute_activity(
                names.PUBLISH_RUN,
                PublishRunInput(run_id=self._result.run_id),
                result_type=PublishRunOutput,
                start_to_close_timeout=PUBLISH_TIMEOUT,
                retry_policy=PUBLISH_RETRY,
                summary="publish results: webhook, MLflow",
            )
        except ActivityError as exc:
            workflow.logger.warning("results not published: %s", failure_message(exc))

    async def _record(self) -> None:
        """Save the current snapshot; a newer revision always wins in the store."""
        assert self._result is not None
        self._result.revision += 1
        snapshot: Any = self._result.model_copy(deep=True)
        await workflow.execute_activity(
            names.RECORD_RUN,
            snapshot,
            start_to_close_timeout=BOOTSTRAP_TIMEOUT,
            retry_policy=BOOTSTRAP_RETRY,
            summary=f"record results ({self._result.status.value})",
        )
