"""`flywheel schedule create --update-existing`: re-runnable schedule creation (the Helm chart's
setup Job runs it on every install and upgrade), against the dev server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from flywheel.api import Schedules
from flywheel.errors import FlywheelError

pytestmark = pytest.mark.slow

FLYWHEEL = Path(sys.executable).parent / "flywheel"


async def test_upsert_creates_then_updates_and_keeps_state(
    dev_env: WorkflowEnvironment, settings_for
) -> None:
    settings = settings_for("unused")
    schedules = Schedules(dev_env.client, settings)
    workload = "upsert-agent"

    sid, created = await schedules.upsert(workload, "app", every=timedelta(days=1), note="v1")
    assert created and sid == f"flywheel-schedule-{workload}"
    await schedules.pause(workload, note="paused by an operator")

    again, created = await schedules.upsert(
        workload, "app", cron=["0 3 * * *"], overrides={"data_split_config": {"eval_size": 7}}
    )
    assert (again, created) == (sid, False)
    described = await schedules.describe(workload)
    assert described.paused and described.note == "paused by an operator"  # state kept
    schedule = (await dev_env.client.get_schedule_handle(sid).describe()).schedule
    assert not schedule.spec.intervals  # the cron spec replaced the interval
    assert schedule.spec.calendars or schedule.spec.cron_expressions
    [payload] = schedule.action.args  # type: ignore[attr-defined]
    request = json.loads(payload.data)
    assert request["config_overrides"] == {"data_split_config": {"eval_size": 7}}
    assert schedule.action.task_queue == settings.temporal.task_queue  # type: ignore[attr-defined]

    with pytest.raises(FlywheelError, match="already has a schedule"):
        await schedules.create(workload, every=timedelta(days=1))  # create alone still refuses
    await schedules.delete(workload)


def test_cli_update_existing_is_rerunnable(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "FLYWHEEL_DATA_DIR": str(tmp_path / "data"),
        "FLYWHEEL_TEMPORAL__ADDRESS": dev_env.client.service_client.config.target_host,
    }
    command = [str(FLYWHEEL), "schedule", "create", "cli-upsert", "--every", "6h"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    first = run("--update-existing", "--paused")
    assert first.returncode == 0, first.stderr
    assert "created schedule flywheel-schedule-cli-upsert (paused)" in first.stdout
    second = run("--update-existing")
    assert second.returncode == 0, second.stderr
    assert "updated schedule flywheel-schedule-cli-upsert" in second.stdout
    plain = run()
    assert plain.returncode == 1 and "already has a schedule" in plain.stderr
    deleted = subprocess.run(
        [str(FLYWHEEL), "schedule", "delete", "cli-upsert"], env=env, cwd=tmp_path, timeout=60
    )
    assert deleted.returncode == 0
