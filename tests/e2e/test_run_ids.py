"""Run ids: one per run, never reused (checkpoints and stored results are keyed by them)."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from flywheel.api import FlywheelClient, make_run_id
from flywheel.config import Platform
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import utcnow
from tests.support.flywheel_env import load_records, running_worker
from tests.support.recording_platform import RecordingPlatform


def test_run_id_names_the_workload_and_utc_time() -> None:
    when = utcnow().replace(year=2026, month=11, day=26, hour=3, minute=15, second=0)
    assert make_run_id("customer-service", when) == "flywheel-customer-service-20261126T031500Z"


@pytest.mark.slow
async def test_runs_started_in_the_same_second_get_distinct_ids(
    dev_env: WorkflowEnvironment, settings_for
) -> None:
    settings = settings_for(
        "unused",
        candidates=[{"name": "c1", "model": "m", "base_url": "http://127.0.0.1:9/v1"}],
    )
    await load_records(settings, generate_customer_service_logs(60, seed=9, workload_id="twice"))
    fw = FlywheelClient(dev_env.client, settings)
    platform = RecordingPlatform()
    async with running_worker(dev_env.client, settings, {Platform.ENDPOINTS: platform}):
        ids = []
        for _ in range(3):  # each finishes before the next starts, usually within one second
            run_id = await fw.start_run("twice")
            await fw.wait(run_id)
            ids.append(run_id)
    assert len(set(ids)) == 3
    assert len(platform.calls("deploy")) == 3  # three real runs, none reusing another's id
    await fw.aclose()
