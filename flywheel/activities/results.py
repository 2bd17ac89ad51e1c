"""record_run: save the run's current results to the result store."""

from __future__ import annotations

from temporalio import activity

from flywheel.activities import names
from flywheel.activities.errors import translate_errors
from flywheel.activities.resources import WorkerResources
from flywheel.schemas import FlywheelRunResult


class ResultActivities:
    def __init__(self, resources: WorkerResources) -> None:
        self._resources = resources

    @activity.defn(name=names.RECORD_RUN)
    @translate_errors
    async def record_run(self, run: FlywheelRunResult) -> None:
        """Upsert the run's snapshot; an older revision never replaces a newer one."""
        store = await self._resources.result_store()
        await store.save_run(run)
