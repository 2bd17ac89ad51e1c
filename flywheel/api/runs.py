"""Start, watch, cancel and read flywheel runs: the async API under the CLI.

async with await FlywheelClient.connect(load_settings()) as fw:
    run_id = await fw.start_run("customer-service", client_id="app-1")
    result = await fw.wait(run_id)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from flywheel.api.deletion import DeletionReport, delete_run
from flywheel.api.results import HistoryEntry, history_entries, load_examples
from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.closing import AsyncClosing
from flywheel.clients.results import ResultStore, open_result_store
from flywheel.clients.temporal import (
    BEST_CANDIDATE,
    BEST_EVAL_KIND,
    BEST_SCORE,
    WORKLOAD_ID,
    connect,
    run_search_attributes,
)
from flywheel.config import Platform, Settings
from flywheel.errors import FlywheelError, NotFoundError
from flywheel.schemas import (
    CandidateProgress,
    FlywheelRunInput,
    FlywheelRunResult,
    RunProgress,
    StepStatus,
    utcnow,
)
from flywheel.time_window import resolve_window
from flywheel.workflows.candidate import CandidateWorkflow
from flywheel.workflows.flywheel import FlywheelWorkflow

RUN_WORKFLOW_TYPE = "FlywheelWorkflow"


class RunSummary(BaseModel):
    """A run as Temporal sees it (status is Temporal's: running, completed, failed, canceled…)."""

    run_id: str
    workload_id: str | None
    status: str
    started_at: datetime | None
    closed_at: datetime | None
    best_candidate: str | None = None
    """The recommended candidate (search attribute BestCandidate; ``none``: no recommendation)."""
    best_kind: str | None = None
    best_score: float | None = None


def make_run_id(workload_id: str, when: datetime) -> str:
    """``flywheel-{workload_id}-{utc timestamp}``, the workflow id of a run."""
    return f"flywheel-{workload_id}-{when.strftime('%Y%m%dT%H%M%SZ')}"


def candidate_workflow_id(run_id: str, candidate: str) -> str:
    return f"{run_id}/{candidate}"


class FlywheelClient(AsyncClosing):
    """A connection to Temporal (and the result store) for one settings file."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._results: ResultStore | None = None

    @classmethod
    async def connect(cls, settings: Settings) -> Self:
        return cls(await connect(settings.temporal), settings)

    async def aclose(self) -> None:
        if self._results is not None:
            await self._results.aclose()
            self._results = None

    # --- runs ---

    async def start_run(
        self,
        workload_id: str,
        client_id: str | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        candidates: Sequence[str] | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> str:
        """Start a run and return its id. Overrides are validated here first (same rules).

        ``since``/``until`` limit the logs curated: ISO instants or spans before the run's start
        (``7d``), resolved by the workflow so a scheduled run always looks back the same span.
        """
        self.settings.run_config(overrides)  # a bad override fails now, not on the worker
        resolve_window(since, until, utcnow())
        request = FlywheelRunInput(
            workload_id=workload_id,
            client_id=client_id,
            config_overrides=dict(overrides or {}),
            candidates=list(candidates) if candidates is not None else None,
            since=since,
            until=until,
        )
        base_id = make_run_id(workload_id, utcnow())
        for attempt in range(1, 100):
            run_id = base_id if attempt == 1 else f"{base_id}-{attempt}"
            try:
                await self.client.start_workflow(
                    FlywheelWorkflow.run,
                    request,
                    id=run_id,
                    task_queue=self.settings.temporal.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    # A run id names one run forever: its checkpoints and stored results.
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=run_search_attributes(workload_id, client_id),
                    static_summary=f"Flywheel run for workload {workload_id}"
                    + (f" (client {client_id})" if client_id else ""),
                )
                return run_id
            except WorkflowAlreadyStartedError:
                continue
            except RPCError as exc:
                raise FlywheelError(f"cannot start the run: {exc.message}") from None
        raise FlywheelError(f"cannot find a free run id for {base_id}")

    async def wait(self, run_id: str) -> FlywheelRunResult:
        """Wait for the run to end; its results (stored results when it failed or was cancelled)."""
        handle = await self._handle(run_id)
        try:
            return await handle.result()
        except WorkflowFailureError:
            stored = await self._stored(run_id)
            if stored is not None:
                return stored
            summary = await self.describe(run_id)
            raise FlywheelError(f"run {run_id} ended {summary.status}") from None

    async def describe(self, run_id: str) -> RunSummary:
        handle = await self._handle(run_id)
        description = await handle.describe()
        return _summary(
            description.id,
            description.status,
            description.start_time,
            description.close_time,
            description.typed_search_attributes,
        )

    async def list_runs(
        self, *, workload_id: str | None = None, status: str | None = None, limit: int = 20
    ) -> list[RunSummary]:
        """Runs newest first, optionally of one workload and one Temporal status."""
        query = f'WorkflowType = "{RUN_WORKFLOW_TYPE}"'
        if workload_id:
            query += f' AND WorkloadId = "{_escape(workload_id)}"'
        if status:
            query += f' AND ExecutionStatus = "{_temporal_status(status)}"'
        runs: list[RunSummary] = []
        try:
            async for execution in self.client.list_workflows(query, limit=limit):
                runs.append(
                    _summary(
                        execution.id,
                        execution.status,
                        execution.start_time,
                        execution.close_time,
                        execution.typed_search_attributes,
                    )
                )
        except RPCError as exc:
            raise FlywheelError(f"cannot list runs: {exc.message}") from None
        return runs

    async def progress(self, run_id: str) -> RunProgress | None:
        """The run's progress, with each running candidate's stage and latest heartbeat."""
        handle = await self._handle(run_id)
        try:
            progress: RunProgress | None = await handle.query(FlywheelWorkflow.progress)
        except RPCError:
            return None
        if progress is None:
            return None
        for index, candidate in enumerate(progress.candidates):
            if candidate.status == StepStatus.RUNNING:
                progress.candidates[index] = await self._candidate_progress(run_id, candidate)
        return progress

    async def cancel(self, run_id: str) -> None:
        """Request cancellation; candidates tear down before the run ends."""
        summary = await self.describe(run_id)
        if summary.status != "running":
            raise FlywheelError(
                f"run {run_id} has already ended ({summary.status}); nothing to cancel"
            )
        handle = await self._handle(run_id)
        await handle.cancel()

    async def delete(
        self, run_id: str, *, platforms: Mapping[Platform, Any] | None = None
    ) -> DeletionReport:
        """Remove what a finished run created: platform objects (NeMo datasets, customized
        models, evaluation jobs), its artifacts, stored results and Temporal histories.
        Refuses a running run; safe to repeat."""
        assert self.settings.artifact_store_uri is not None
        return await delete_run(
            self.client,
            self.settings.temporal.namespace,
            await self._result_store(),
            ArtifactStore(self.settings.artifact_store_uri),
            run_id,
            platforms=platforms,
        )

    async def results(self, run_id: str) -> FlywheelRunResult:
        """The run's recorded results (from the result store, else from the workflow)."""
        stored = await self._stored(run_id)
        if stored is not None:
            return stored
        handle = await self._handle(run_id)
        try:
            result: FlywheelRunResult | None = await handle.query(FlywheelWorkflow.result)
        except RPCError as exc:
            raise NotFoundError(f"no results for run {run_id}: {exc.message}") from None
        if result is None:
            raise NotFoundError(f"run {run_id} has no results yet")
        return result

    async def stored_runs(
        self, *, workload_id: str | None = None, limit: int = 50
    ) -> list[FlywheelRunResult]:
        """Runs from the result store (kept after Temporal's retention has passed)."""
        store = await self._result_store()
        return await store.list_runs(workload_id=workload_id, limit=limit)

    async def history(self, workload_id: str, *, limit: int = 50) -> list[HistoryEntry]:
        """The workload's stored runs (newest ``limit``), oldest first, with headline numbers
        and regressions of the recommended candidate flagged."""
        return history_entries(await self.stored_runs(workload_id=workload_id, limit=limit))

    async def examples(self, run: FlywheelRunResult) -> dict[str, list[dict[str, Any]]]:
        """The run's divergent examples per ``candidate/kind``, from the artifact store."""
        assert self.settings.artifact_store_uri is not None
        return await load_examples(ArtifactStore(self.settings.artifact_store_uri), run)

    # --- helpers ---

    async def _handle(self, run_id: str) -> WorkflowHandle[Any, Any]:
        handle = self.client.get_workflow_handle_for(FlywheelWorkflow.run, run_id)
        try:
            await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFoundError(
                    f"no run named {run_id!r} (see `flywheel list` for recent runs)"
                ) from None
            raise FlywheelError(f"cannot look up run {run_id}: {exc.message}") from None
        return handle

    async def _result_store(self) -> ResultStore:
        if self._results is None:
            assert self.settings.result_store_url is not None
            self._results = open_result_store(
                self.settings.result_store_url, mongodb_db=self.settings.mongodb_db
            )
        return self._results

    async def _stored(self, run_id: str) -> FlywheelRunResult | None:
        store = await self._result_store()
        return await store.get_run(run_id)

    async def _candidate_progress(
        self, run_id: str, fallback: CandidateProgress
    ) -> CandidateProgress:
        handle = self.client.get_workflow_handle(candidate_workflow_id(run_id, fallback.name))
        try:
            progress: CandidateProgress | None = await handle.query(CandidateWorkflow.progress)
            description = await handle.describe()
        except RPCError:
            return fallback
        if progress is None:
            return fallback
        details: dict[str, Any] = {}
        for pending in description.raw_description.pending_activities:
            entry: dict[str, Any] = {"attempt": pending.attempt}
            if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
                entry["state"] = "started"
            if pending.heartbeat_details.payloads:
                decoded = await self.client.data_converter.decode(
                    pending.heartbeat_details.payloads
                )
                if decoded and isinstance(decoded[-1], dict):
                    entry.update(decoded[-1])
            if pending.last_failure.message:
                entry["last_failure"] = pending.last_failure.message
            name = pending.activity_type.name
            if "kind" in entry:
                name = f"{name} ({entry.pop('kind')})"
            details[name] = entry
        progress.detail = details
        return progress


def _summary(
    run_id: str,
    status: WorkflowExecutionStatus | None,
    started: datetime | None,
    closed: datetime | None,
    attributes: TypedSearchAttributes,
) -> RunSummary:
    return RunSummary(
        run_id=run_id,
        workload_id=attributes.get(WORKLOAD_ID),
        status=status.name.lower() if status else "unknown",
        started_at=started,
        closed_at=closed,
        best_candidate=attributes.get(BEST_CANDIDATE),
        best_kind=attributes.get(BEST_EVAL_KIND),
        best_score=attributes.get(BEST_SCORE),
    )


_STATUS_NAMES = {
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "canceled": "Canceled",
    "cancelled": "Canceled",
    "terminated": "Terminated",
    "timed_out": "TimedOut",
}


def _temporal_status(status: str) -> str:
    try:
        return _STATUS_NAMES[status.lower()]
    except KeyError:
        raise FlywheelError(
            f"unknown status {status!r} (use one of: {', '.join(sorted(_STATUS_NAMES))})"
        ) from None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
