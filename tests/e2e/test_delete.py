"""``FlywheelClient.delete``: what a run created goes, a running run is refused, shared datasets
stay. (The CLI's `flywheel delete` on a whole real run is in tests/cli/test_cli.py.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from flywheel.api import FlywheelClient
from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.results import open_result_store
from flywheel.config import Platform, RunConfig
from flywheel.errors import FlywheelError, NotFoundError
from flywheel.schemas import (
    CurationReport,
    DatasetBundle,
    DatasetFormat,
    FlywheelRunResult,
    RunStatus,
    WorkloadType,
)

pytestmark = pytest.mark.slow


class CleaningPlatform:
    """Stands in for the nemo platform's run clean-up (its own tests run it against the NMP
    emulator): records what it was asked to delete."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, RunConfig]] = []

    async def delete_run(self, run_id: str, config: RunConfig) -> list[str]:
        self.calls.append((run_id, config))
        return [f"NeMo dataset of {run_id}"]


async def test_a_running_run_is_refused(dev_env: WorkflowEnvironment, settings_for) -> None:
    settings = settings_for(dev_env.client.service_client.config.target_host)
    async with FlywheelClient(dev_env.client, settings) as fw:
        run_id = await fw.start_run("no-worker-here")  # no worker: it stays running
        with pytest.raises(FlywheelError, match=r"still running: cancel it first"):
            await fw.delete(run_id)
        await dev_env.client.get_workflow_handle(run_id).terminate()


async def test_a_stored_run_is_deleted_and_shared_datasets_are_kept(
    dev_env: WorkflowEnvironment, settings_for
) -> None:
    settings = settings_for(dev_env.client.service_client.config.target_host)
    assert settings.artifact_store_uri is not None and settings.result_store_url is not None
    artifacts = ArtifactStore(settings.artifact_store_uri)
    shared = await artifacts.put_jsonl([{"a": 1}], DatasetFormat.EVAL)
    own = await artifacts.put_jsonl([{"b": 2}], DatasetFormat.TRAINING)
    await artifacts.write_bytes("runs/old-run/small/base/replies/chunk-000000.jsonl", b"{}\n")
    config = RunConfig.model_validate(
        {
            "nmp_config": {
                "nemo_base_url": "http://nmp",
                "nim_base_url": "http://nim",
                "datastore_base_url": "http://ds",
            },
            "candidates": [{"name": "llama", "model": "meta/llama", "platform": "nemo"}],
        }
    )

    def run(run_id: str, train: Any) -> FlywheelRunResult:
        bundle = DatasetBundle(
            eval=shared,
            train=train,
            val=train,
            workload_type=WorkloadType.GENERIC,
            report=CurationReport(workload_type=WorkloadType.GENERIC, seed=0),
        )
        return FlywheelRunResult(
            run_id=run_id,
            workload_id="w",
            status=RunStatus.COMPLETED,
            started_at=datetime(2026, 11, 1, tzinfo=UTC),
            config=config,
            datasets=bundle,
        )

    async with open_result_store(settings.result_store_url) as results:
        await results.save_run(run("old-run", own))  # past Temporal's retention: stored only
        await results.save_run(run("other-run", shared))
    cleaner = CleaningPlatform()
    async with FlywheelClient(dev_env.client, settings) as fw:
        report = await fw.delete("old-run", platforms={Platform.NEMO: cleaner})
        assert report.deleted == [
            "NeMo dataset of old-run",
            "1 dataset file(s)",
            "(kept 1 dataset file(s) other runs use)",
            f"artifacts under {artifacts.uri_for('runs/old-run')}",
            "stored results",
        ]
        assert [run_id for run_id, _ in cleaner.calls] == ["old-run"]
        assert cleaner.calls[0][1] == config  # the run's own configuration
        assert not await artifacts.exists(own.uri)
        assert await artifacts.exists(shared.uri)
        assert await artifacts.list("runs/old-run") == []
        with pytest.raises(NotFoundError, match="no run named 'old-run'"):
            await fw.delete("old-run")
        assert (await fw.stored_runs(workload_id="w"))[0].run_id == "other-run"
