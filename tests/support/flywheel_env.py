"""Helpers to run real flywheel workers and runs inside a test's event loop."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from flywheel.activities.resources import WorkerResources
from flywheel.clients.logstore import open_log_store
from flywheel.clients.results import open_result_store
from flywheel.config import Platform, Settings
from flywheel.platforms.base import ModelPlatform
from flywheel.schemas import FlywheelRunInput, FlywheelRunResult, LogRecord
from flywheel.worker import build_worker
from flywheel.workflows.flywheel import FlywheelWorkflow


async def load_records(settings: Settings, records: Iterable[Mapping[str, Any]]) -> int:
    """Put log records into the settings' log store."""
    assert settings.log_store_url is not None
    store = open_log_store(settings.log_store_url)
    try:
        return await store.add([LogRecord.model_validate(r) for r in records])
    finally:
        await store.aclose()


async def stored_run(settings: Settings, run_id: str) -> FlywheelRunResult | None:
    assert settings.result_store_url is not None
    store = open_result_store(settings.result_store_url)
    try:
        return await store.get_run(run_id)
    finally:
        await store.aclose()


@asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings,
    platforms: Mapping[Platform, ModelPlatform] | None = None,
) -> AsyncIterator[WorkerResources]:
    """A worker polling the settings' task queue for the duration of the block."""
    resources = WorkerResources(settings, platforms=platforms)
    worker = build_worker(client, settings, resources)
    try:
        async with worker:
            yield resources
    finally:
        await resources.aclose()


async def start_run(
    client: Client,
    settings: Settings,
    workload_id: str,
    *,
    client_id: str | None = None,
    overrides: dict[str, Any] | None = None,
    candidates: list[str] | None = None,
    run_id: str | None = None,
) -> WorkflowHandle[Any, FlywheelRunResult]:
    """Start FlywheelWorkflow directly (no search attributes: the test server has none)."""
    return await client.start_workflow(
        FlywheelWorkflow.run,
        FlywheelRunInput(
            workload_id=workload_id,
            client_id=client_id,
            config_overrides=overrides or {},
            candidates=candidates,
        ),
        id=run_id or f"flywheel-{workload_id}-{uuid.uuid4().hex[:8]}",
        task_queue=settings.temporal.task_queue,
    )


async def activity_attempts(handle: WorkflowHandle[Any, Any], activity_name: str) -> list[int]:
    """Attempt numbers of each started ``activity_name`` in the workflow's history."""
    scheduled: dict[int, str] = {}
    attempts: list[int] = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            if scheduled.get(attrs.scheduled_event_id) == activity_name:
                attempts.append(attrs.attempt)
    return attempts
