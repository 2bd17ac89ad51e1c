"""The Temporal worker: FlywheelWorkflow, CandidateWorkflow and their activities on one queue.

Run it with ``flywheel worker`` (or ``flywheel dev``, which also starts a Temporal dev server).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from flywheel.activities.candidates import CandidateActivities
from flywheel.activities.config import ConfigActivities
from flywheel.activities.datasets import DatasetActivities
from flywheel.activities.resources import WorkerResources
from flywheel.activities.results import ResultActivities
from flywheel.clients.temporal import connect
from flywheel.config import Platform, Settings
from flywheel.platforms.base import ModelPlatform
from flywheel.workflows.candidate import CandidateWorkflow
from flywheel.workflows.flywheel import FlywheelWorkflow

log = logging.getLogger(__name__)

WORKFLOWS: Sequence[type] = (FlywheelWorkflow, CandidateWorkflow)


def activities_for(resources: WorkerResources) -> list[Any]:
    """Every activity of the flywheel, bound to the worker's shared resources."""
    config = ConfigActivities(resources)
    datasets = DatasetActivities(resources)
    candidates = CandidateActivities(resources)
    results = ResultActivities(resources)
    return [
        config.resolve_run_config,
        datasets.prepare_datasets,
        candidates.deploy_candidate,
        candidates.evaluate_candidate,
        candidates.customize_candidate,
        candidates.teardown_candidate,
        candidates.release_run_resources,
        results.record_run,
        results.assess_run,
        results.publish_run,
    ]


def build_worker(client: Client, settings: Settings, resources: WorkerResources) -> Worker:
    """A worker for the configured task queue (it does not start until run)."""
    return Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_for(resources),
        max_concurrent_activities=settings.worker.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker.max_concurrent_workflow_tasks,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker.graceful_shutdown_s),
        max_heartbeat_throttle_interval=timedelta(seconds=settings.worker.heartbeat_throttle_s),
        default_heartbeat_throttle_interval=timedelta(seconds=settings.worker.heartbeat_throttle_s),
    )


async def run_worker(
    settings: Settings,
    *,
    client: Client | None = None,
    stop: asyncio.Event | None = None,
    platforms: Mapping[Platform, ModelPlatform] | None = None,
) -> None:
    """Run a worker until ``stop`` is set (or forever); release every resource on the way out."""
    client = client or await connect(settings.temporal)
    resources = WorkerResources(settings, platforms=platforms)
    try:
        resources.warm_up()
        worker = build_worker(client, settings, resources)
        log.info(
            "worker polling task queue %r on %s (namespace %s)",
            settings.temporal.task_queue,
            settings.temporal.address,
            settings.temporal.namespace,
        )
        if stop is None:
            await worker.run()
        else:
            async with worker:
                await stop.wait()
    finally:
        await resources.aclose()
