"""``flywheel delete RUN``: remove what a finished run created, wherever it lives.

A run leaves things in four places: its platforms (NeMo datasets, customized models, evaluation
jobs), the artifact store (reply checkpoints, adapters, and its datasets), the result store and
Temporal (the run's and its candidates' workflow histories). Deletion refuses a running run
(cancel it first) and is safe to repeat: what is already gone counts as deleted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from flywheel.clients.artifacts import ArtifactStore, safe_path_part
from flywheel.clients.results import ResultStore
from flywheel.config import Platform, RunConfig
from flywheel.errors import FlywheelError, NotFoundError
from flywheel.schemas import FlywheelRunResult

HISTORY_DELETION_WAIT_S = 10.0
"""How long to wait for Temporal to finish deleting a run's workflow histories."""


class RunCleaner(Protocol):
    """A platform that can remove what a run created on it (the ``nemo`` platform)."""

    async def delete_run(self, run_id: str, config: RunConfig) -> list[str]: ...


@dataclass
class DeletionReport:
    """What was removed, one line each (shown by the CLI)."""

    run_id: str
    deleted: list[str] = field(default_factory=list)


async def delete_run(
    client: Client,
    namespace: str,
    results: ResultStore,
    artifacts: ArtifactStore,
    run_id: str,
    *,
    platforms: Mapping[Platform, Any] | None = None,
) -> DeletionReport:
    """Delete everything run ``run_id`` created; NotFoundError when nothing is known of it."""
    status = await _temporal_status(client, run_id)
    if status == WorkflowExecutionStatus.RUNNING:
        raise FlywheelError(
            f"run {run_id} is still running: cancel it first (`flywheel cancel {run_id} --wait`), "
            "then delete it"
        )
    stored = await results.get_run(run_id)
    if stored is None and status is None:
        raise NotFoundError(f"no run named {run_id!r} (see `flywheel list` for recent runs)")
    report = DeletionReport(run_id)
    if stored is not None:
        await _delete_on_platforms(stored, platforms or {}, report)
        await _delete_datasets(stored, results, artifacts, report)
    prefix = f"runs/{safe_path_part(run_id)}"
    if await artifacts.list(prefix):
        await artifacts.delete_prefix(prefix)
        report.deleted.append(f"artifacts under {artifacts.uri_for(prefix)}")
    if stored is not None and await results.delete_run(run_id):
        report.deleted.append("stored results")
    if status is not None:
        names = sorted(
            {c.name for c in stored.candidates}
            | {c.name for c in (stored.config.candidates if stored.config else [])}
            if stored is not None
            else set()
        )
        history = DeletionReport(run_id)
        removed = await _delete_histories(client, namespace, run_id, names, history)
        report.deleted.append(f"Temporal history of {removed} workflow(s)")
        report.deleted.extend(history.deleted)
    return report


async def _temporal_status(client: Client, run_id: str) -> WorkflowExecutionStatus | None:
    try:
        description = await client.get_workflow_handle(run_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None  # past Temporal's retention, or already deleted
        raise FlywheelError(f"cannot look up run {run_id}: {exc.message}") from None
    return description.status


async def _delete_on_platforms(
    run: FlywheelRunResult, platforms: Mapping[Platform, Any], report: DeletionReport
) -> None:
    if run.config is None:
        return
    used = {candidate.platform for candidate in run.config.candidates}
    for name in sorted(used):
        platform = platforms.get(name)
        if platform is not None and hasattr(platform, "delete_run"):
            cleaner: RunCleaner = platform
            report.deleted.extend(await cleaner.delete_run(run.run_id, run.config))


async def _delete_datasets(
    run: FlywheelRunResult,
    results: ResultStore,
    artifacts: ArtifactStore,
    report: DeletionReport,
) -> None:
    """Delete the run's datasets unless another stored run uses the same file (datasets are
    content-addressed, so two runs over the same logs share them)."""
    if run.datasets is None:
        return
    bundle = run.datasets
    mine = {ref.uri for ref in (bundle.eval, bundle.train, bundle.val, *bundle.icl.values())}
    shared: set[str] = set()
    for other in await results.list_runs(workload_id=run.workload_id, limit=10_000):
        if other.run_id != run.run_id and other.datasets is not None:
            theirs = other.datasets
            shared |= {
                ref.uri for ref in (theirs.eval, theirs.train, theirs.val, *theirs.icl.values())
            }
    removed = 0
    for uri in sorted(mine - shared):
        if await artifacts.exists(uri):
            await artifacts.delete_prefix(artifacts.relative(uri))
            removed += 1
    if removed:
        report.deleted.append(f"{removed} dataset file(s)")
    if mine & shared:
        report.deleted.append(f"(kept {len(mine & shared)} dataset file(s) other runs use)")


async def _delete_histories(
    client: Client, namespace: str, run_id: str, candidates: list[str], report: DeletionReport
) -> int:
    """Delete the run's workflow and its candidates' (children first); the number deleted.

    Temporal deletes in the background: wait a little for it, then say if it is still at it."""
    removed: list[str] = []
    for workflow_id in [f"{run_id}/{name}" for name in candidates] + [run_id]:
        request = DeleteWorkflowExecutionRequest(
            namespace=namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id)
        )
        try:
            await client.workflow_service.delete_workflow_execution(request)
            removed.append(workflow_id)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise FlywheelError(
                    f"cannot delete the Temporal history of {workflow_id}: {exc.message}"
                ) from None
    deadline = time.monotonic() + HISTORY_DELETION_WAIT_S
    pending = list(removed)
    while pending and time.monotonic() < deadline:
        pending = [w for w in pending if await _temporal_status(client, w) is not None]
        if pending:
            await asyncio.sleep(0.2)
    if pending:
        report.deleted.append(
            f"(Temporal is still deleting {len(pending)} of them in the background)"
        )
    return len(removed)
