"""`flywheel history`, `flywheel report` and `flywheel results --examples` as a user runs them:
exit codes, messages, no tracebacks (a full run through them is in tests/e2e/test_results.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from flywheel.clients.results import open_result_store
from flywheel.schemas import FlywheelRunResult
from tests.cli.test_cli import Cli, clean_env, error_line
from tests.report.builders import STARTED, finished_run


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, clean_env(tmp_path / "data"))


def store(cli: Cli, *runs: FlywheelRunResult) -> None:
    """Save runs into the result store of the CLI's data directory."""
    data_dir = Path(cli.env["FLYWHEEL_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)

    async def save() -> None:
        results = open_result_store(f"sqlite:///{data_dir / 'flywheel.db'}")
        try:
            for run in runs:
                await results.save_run(run)
        finally:
            await results.aclose()

    asyncio.run(save())


def test_history_of_a_workload_without_runs(cli: Cli) -> None:
    shown = cli("history", "nothing-here")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "no stored runs of workload nothing-here"
    as_json = cli("history", "nothing-here", "--json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == []


def test_history_flags_a_regression_without_any_temporal_server(cli: Cli) -> None:
    good = finished_run(run_id="flywheel-support-1")
    worse = finished_run(
        run_id="flywheel-support-2", started=STARTED + timedelta(days=1), small_args_right=20
    )
    old = finished_run(
        run_id="flywheel-support-0", started=STARTED - timedelta(days=1), assess=False
    )  # recorded before assessments: assessed when shown
    other = finished_run(run_id="flywheel-other-1", workload_id="other")
    store(cli, good, worse, old, other)

    shown = cli("history", "support")  # Temporal is unreachable here: not needed
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    order = [
        next(i for i, line in enumerate(lines) if run in line)
        for run in ("flywheel-support-0", "flywheel-support-1", "flywheel-support-2")
    ]
    assert order == sorted(order)  # oldest first
    assert "flywheel-other-1" not in shown.stdout
    assert "REGRESSION: small/base is now below target" in shown.stdout
    assert "regression in flywheel-support-2" in shown.stdout

    entries = json.loads(cli("history", "support", "--json", "--limit", "2").stdout)
    assert [e["run_id"] for e in entries] == ["flywheel-support-1", "flywheel-support-2"]
    assert entries[0]["recommended"] == "small/base" and entries[0]["regression"] is None
    assert entries[1]["recommended"] == "tiny/customized"
    assert entries[1]["changed"] is True
    assert entries[1]["scores"]["small/base"] == 0.5


def test_report_refuses_an_unusable_output_path(cli: Cli, tmp_path: Path) -> None:
    missing = cli("report", "flywheel-x", "--out", str(tmp_path / "no" / "such" / "r.html"))
    assert missing.returncode == 2
    assert "the folder" in error_line(missing) and "does not exist" in error_line(missing)
    folder = cli("report", "flywheel-x", "--out", str(tmp_path))
    assert folder.returncode == 2 and "is a directory" in error_line(folder)
    usage = cli("report", "flywheel-x")
    assert usage.returncode == 2 and "--out" in usage.stderr


@pytest.mark.parametrize(
    "args",
    [["report", "X", "--out", "r.html"], ["results", "X", "--examples"]],
    ids=lambda args: args[0],
)
def test_report_and_results_need_temporal(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.returncode == 1
    assert "cannot reach Temporal" in error_line(result)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["report", "results"])
async def test_unknown_run(dev_env: WorkflowEnvironment, cli: Cli, command: str) -> None:
    env = {"FLYWHEEL_TEMPORAL__ADDRESS": dev_env.client.service_client.config.target_host}
    extra = ["--out", "r.html"] if command == "report" else ["--examples"]
    result = await cli.run(command, "no-such-run", *extra, env=env)
    assert result.returncode == 1
    assert "no run named 'no-such-run'" in error_line(result)
    assert not (cli.cwd / "r.html").exists()
