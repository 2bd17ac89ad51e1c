"""Temporal Schedules for periodic runs, against the dev server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from flywheel.api import FlywheelClient, Schedules, parse_duration, schedule_id
from flywheel.config import Platform
from flywheel.errors import ConfigError, FlywheelError, NotFoundError
from flywheel.sample_data import generate_customer_service_logs
from tests.support.flywheel_env import load_records, running_worker
from tests.support.recording_platform import RecordingPlatform

pytestmark = pytest.mark.slow

WORKLOAD = "scheduled-agent"


def test_parse_duration() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("6h") == timedelta(hours=6)
    assert parse_duration(" 1d ") == timedelta(days=1)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("", "6", "h", "10x", "30s"):
        with pytest.raises(ConfigError):
            parse_duration(bad)


async def test_schedule_lifecycle_and_trigger(dev_env: WorkflowEnvironment, settings_for) -> None:
    settings = settings_for(
        "unused",
        candidates=[{"name": "c1", "model": "m", "base_url": "http://127.0.0.1:9/v1"}],
    )
    await load_records(settings, generate_customer_service_logs(80, seed=2, workload_id=WORKLOAD))
    schedules = Schedules(dev_env.client, settings)
    fw = FlywheelClient(dev_env.client, settings)

    sid = await schedules.create(
        WORKLOAD,
        "sample-app",
        every=timedelta(days=1),
        paused=True,
        note="nightly",
        overrides={"data_split_config": {"eval_size": 10}},
    )
    assert sid == schedule_id(WORKLOAD) == f"flywheel-schedule-{WORKLOAD}"
    with pytest.raises(FlywheelError, match="already has a schedule"):
        await schedules.create(WORKLOAD, every=timedelta(days=1))
    with pytest.raises(ConfigError):
        await schedules.create(
            "other", cron=["0 3 * * *"], overrides={"data_split_config": {"eval_size": 0}}
        )

    described = await schedules.describe(WORKLOAD)
    assert described.paused and described.note == "nightly"
    assert described.spec == "every 1 day, 0:00:00"
    assert described.workload_id == WORKLOAD
    listed = await schedules.list()
    assert sid in [s.schedule_id for s in listed]

    await schedules.unpause(WORKLOAD)
    assert not (await schedules.describe(WORKLOAD)).paused
    await schedules.pause(sid)
    assert (await schedules.describe(WORKLOAD)).paused

    platform = RecordingPlatform()
    async with running_worker(dev_env.client, settings, {Platform.ENDPOINTS: platform}):
        await schedules.trigger(WORKLOAD)
        runs = []
        for _ in range(200):
            runs = await fw.list_runs(workload_id=WORKLOAD)
            if runs and runs[0].status != "running":
                break
            await asyncio.sleep(0.1)
        assert len(runs) == 1
        assert runs[0].run_id.startswith(f"flywheel-{WORKLOAD}-")
        result = await fw.wait(runs[0].run_id)
    assert result.status.value == "completed"
    assert result.client_id == "sample-app"
    assert result.datasets is not None and result.datasets.report.eval_records == 10
    assert (await schedules.describe(WORKLOAD)).total_runs == 1

    await schedules.delete(WORKLOAD)
    with pytest.raises(NotFoundError, match="no schedule named"):
        await schedules.describe(WORKLOAD)
    await fw.aclose()
