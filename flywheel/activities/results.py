"""The run's results: record them, assess them when the run ends, tell people about them.

* ``record_run``: save the run's current snapshot to the result store.
* ``assess_run``: costs, confidence verdicts and the recommendation (pure code in
  :mod:`flywheel.scoring.recommendation`), from the snapshot, the production model's logged
  usage on the eval records and the workload's previous run; also says which result search
  attributes the namespace has, so the workflow upserts only those.
* ``publish_run``: the webhook and MLflow, best effort: a failure is logged and reported in the
  activity's result, never raised, so it can never fail a run.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio import activity

from flywheel.activities import names
from flywheel.activities.errors import translate_errors
from flywheel.activities.resources import WorkerResources
from flywheel.clients.temporal import registered_result_attributes
from flywheel.clients.tracking import log_run_to_mlflow, mlflow_available
from flywheel.clients.webhook import post_webhook
from flywheel.config import RunConfig, read_secret
from flywheel.errors import FlywheelError
from flywheel.report.summary import notification_event, notification_payload
from flywheel.schemas import (
    AssessRunOutput,
    FlywheelRunResult,
    PublishRunInput,
    PublishRunOutput,
    RunStatus,
)
from flywheel.scoring.cost import LoggedUsage, logged_usage
from flywheel.scoring.recommendation import assess_run

log = logging.getLogger(__name__)

PREVIOUS_RUNS_SCANNED = 20
"""Stored runs of the workload looked through for the previous finished one."""


class ResultActivities:
    def __init__(self, resources: WorkerResources) -> None:
        self._resources = resources

    @activity.defn(name=names.RECORD_RUN)
    @translate_errors
    async def record_run(self, run: FlywheelRunResult) -> None:
        """Upsert the run's snapshot; an older revision never replaces a newer one."""
        store = await self._resources.result_store()
        await store.save_run(run)

    @activity.defn(name=names.ASSESS_RUN)
    @translate_errors
    async def assess_run(self, run: FlywheelRunResult) -> AssessRunOutput:
        """Assess a finished run: verdicts, costs and the recommendation."""
        usage = await self._logged_usage(run)
        previous = await self._previous_run(run)
        assessment, recommendation = assess_run(run, usage=usage, previous=previous)
        try:
            client = activity.client()
        except RuntimeError:  # not running in a worker (e.g. a unit test's environment)
            registered: list[str] = []
        else:
            registered = await registered_result_attributes(client)
        return AssessRunOutput(
            assessment=assessment, recommendation=recommendation, search_attributes=registered
        )

    @activity.defn(name=names.PUBLISH_RUN)
    async def publish_run(self, request: PublishRunInput) -> PublishRunOutput:
        """Call the webhook and log to MLflow as configured; never raises."""
        try:
            store = await self._resources.result_store()
            run = await store.get_run(request.run_id)
        except FlywheelError as exc:
            log.warning("cannot publish run %s: %s", request.run_id, exc)
            return PublishRunOutput(webhook=f"not sent: {exc}", mlflow=None)
        if run is None:
            return PublishRunOutput(webhook="not sent: the run is not stored", mlflow=None)
        config = run.config or RunConfig()
        return PublishRunOutput(
            webhook=await self._notify(run, config), mlflow=await self._track(run, config)
        )

    # --- helpers ---

    async def _logged_usage(self, run: FlywheelRunResult) -> LoggedUsage | None:
        if run.datasets is None:
            return None
        try:
            records = await self._resources.artifacts.read_dataset(run.datasets.eval)
        except FlywheelError as exc:
            log.warning("run %s: production usage unknown: %s", run.run_id, exc)
            return None
        return logged_usage(records)

    async def _previous_run(self, run: FlywheelRunResult) -> FlywheelRunResult | None:
        """The workload's most recent finished (completed) run that started before this one."""
        store = await self._resources.result_store()
        for other in await store.list_runs(
            workload_id=run.workload_id, limit=PREVIOUS_RUNS_SCANNED
        ):
            if (
                other.run_id != run.run_id
                and other.status == RunStatus.COMPLETED
                and other.started_at < run.started_at
            ):
                return other
        return None

    async def _notify(self, run: FlywheelRunResult, config: RunConfig) -> str | None:
        settings = config.notifications
        if not settings.webhook_url_env:
            return None
        event = notification_event(run, settings.events)
        if event is None:
            return f"skipped: {run.status.value} is not in notifications.events"
        url = read_secret(settings.webhook_url_env)
        if url is None:
            message = f"not sent: ${settings.webhook_url_env} is not set on the worker"
            log.warning("run %s: webhook %s", run.run_id, message)
            return message
        payload = notification_payload(run, event, self._link(run.run_id))
        try:
            status = await post_webhook(
                url, payload, timeout_s=settings.timeout_s, max_attempts=settings.max_attempts
            )
        except FlywheelError as exc:
            log.warning("run %s: webhook not sent: %s", run.run_id, exc)
            return f"not sent: {exc}"
        return f"sent ({event}, HTTP {status})"

    async def _track(self, run: FlywheelRunResult, config: RunConfig) -> str | None:
        if not config.mlflow_config.enabled:
            return None
        if not mlflow_available():
            log.warning("run %s: mlflow_config.enabled, but mlflow is not installed", run.run_id)
            return "not logged: mlflow is not installed on the worker"
        try:
            return await asyncio.to_thread(log_run_to_mlflow, run, config.mlflow_config)
        except FlywheelError as exc:
            log.warning("run %s: %s", run.run_id, exc)
            return f"not logged: {exc}"

    def _link(self, run_id: str) -> str | None:
        temporal = self._resources.settings.temporal
        if not temporal.ui_url:
            return None
        return f"{temporal.ui_url.rstrip('/')}/namespaces/{temporal.namespace}/workflows/{run_id}"
