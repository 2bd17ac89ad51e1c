"""A run whose results go to MongoDB (a real wire-protocol server), read back through the API."""

from __future__ import annotations

import pytest
from pymongo import AsyncMongoClient
from temporalio.testing import WorkflowEnvironment

from flywheel.api import FlywheelClient
from flywheel.config import Platform
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import RunStatus, StepStatus
from tests.support.flywheel_env import load_records, running_worker
from tests.support.recording_platform import Behaviour, RecordingPlatform

pytestmark = pytest.mark.slow

WORKLOAD = "mongo-agent"


async def test_run_results_are_stored_in_mongodb(
    dev_env: WorkflowEnvironment, settings_for, mongo_url: str
) -> None:
    settings = settings_for(
        "unused",
        result_store_url=f"{mongo_url}/flywheel_e2e",
        candidates=[
            {"name": "ok", "model": "m-ok", "base_url": "http://127.0.0.1:9/v1"},
            {"name": "down", "model": "m-down", "base_url": "http://127.0.0.1:9/v1"},
        ],
    )
    await load_records(settings, generate_customer_service_logs(90, seed=8, workload_id=WORKLOAD))
    platform = RecordingPlatform({"down": Behaviour(deploy_error="endpoint unreachable")})
    fw = FlywheelClient(dev_env.client, settings)
    async with running_worker(dev_env.client, settings, {Platform.ENDPOINTS: platform}):
        run_id = await fw.start_run(WORKLOAD)
        result = await fw.wait(run_id)

    assert result.status == RunStatus.COMPLETED
    stored = await fw.results(run_id)
    assert stored.model_dump(exclude={"revision"}) == result.model_dump(exclude={"revision"})
    assert {c.name: c.status for c in stored.candidates} == {
        "ok": StepStatus.COMPLETED,
        "down": StepStatus.FAILED,
    }
    history = await fw.stored_runs(workload_id=WORKLOAD)
    assert [r.run_id for r in history] == [run_id]
    await fw.aclose()

    client: AsyncMongoClient = AsyncMongoClient(mongo_url)
    try:
        doc = await client["flywheel_e2e"]["flywheel_runs"].find_one({"_id": run_id})
    finally:
        await client.close()
    assert doc is not None
    assert doc["workload_id"] == WORKLOAD and doc["status"] == "completed"
    assert doc["config"]["data_split_config"]["random_seed"] == 7  # the effective config
