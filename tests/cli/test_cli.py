"""The `flywheel` command line as a user runs it: a subprocess of the venv's `flywheel` script.

Every command runs with its own data directory (FLYWHEEL_DATA_DIR in tmp_path), no config file
from the outside, and Temporal pointed at a port where nothing listens unless a test starts one.
Exit codes, messages, and the absence of tracebacks are what is checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from flywheel.clients.artifacts import ArtifactStore
from flywheel.devserver import free_port, port_is_free
from flywheel.schemas import DatasetRef
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripts import build_script, expected_accuracy

FLYWHEEL = Path(sys.executable).parent / "flywheel"
BLUEPRINT_CONFIG = Path(__file__).parents[1] / "fixtures" / "blueprint-config.yaml"
REJECTION_LINE = re.compile(r"^\s*line (\d+): (.+)$")


class Cli:
    """Runs `flywheel …` in ``cwd`` with a clean environment; checks there is no traceback."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env

    def __call__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(FLYWHEEL), *args],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
        # A Temporal SDK thread must not abort the interpreter at exit (temporalio/sdk-python#300).
        assert "Fatal Python error" not in result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        assert "Traceback" not in result.stdout, result.stdout
        return result

    async def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        limit_s: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """The same, without blocking the test's event loop."""
        return await asyncio.to_thread(self, *args, env=env, timeout=limit_s)


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    env.update(
        FLYWHEEL_DATA_DIR=str(data_dir),
        # Nothing listens here: a test that needs Temporal sets the address itself.
        FLYWHEEL_TEMPORAL__ADDRESS=f"127.0.0.1:{free_port()}",
        COLUMNS="200",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, clean_env(tmp_path / "data"))


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command writes to stderr."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- logs ------------------------------------------------------------------------------------


def sample_records(cli: Cli, name: str, records: int) -> tuple[Path, list[dict[str, Any]]]:
    path = cli.cwd / name
    result = cli("logs", "sample", str(path), "--records", str(records))
    assert result.returncode == 0, result.stderr
    assert f"wrote {records} log records to" in result.stdout
    lines = path.read_bytes().splitlines()
    assert len(lines) == records
    return path, [orjson.loads(line) for line in lines]


def mixed_file(cli: Cli) -> Path:
    """Good lines, blank lines and one line of each kind of problem (line numbers from 1)."""
    _, records = sample_records(cli, "sample.jsonl", 5)
    missing_request = {k: v for k, v in records[3].items() if k != "request"}
    wrong_type = {**records[4], "client_id": 5}
    missing_workload = {k: v for k, v in records[4].items() if k != "workload_id"}
    lines = [
        orjson.dumps(records[0]),  # 1 good
        b"",  # 2 blank
        b'{"broken": ',  # 3 bad JSON
        orjson.dumps(records[1]),  # 4 good
        orjson.dumps(missing_request),  # 5 missing field
        b"   ",  # 6 blank
        orjson.dumps(wrong_type),  # 7 wrong type
        b'{"workload_id": "caf\xe9"}',  # 8 not UTF-8 (Latin-1)
        orjson.dumps(missing_workload),  # 9 missing workload_id
        orjson.dumps(records[2]),  # 10 good
    ]
    path = cli.cwd / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def rejections(stderr: str) -> dict[int, str]:
    found = {}
    for line in stderr.splitlines():
        match = REJECTION_LINE.match(line)
        if match:
            found[int(match.group(1))] = match.group(2)
    return found


def test_logs_load_reports_every_rejected_line(cli: Cli) -> None:
    path = mixed_file(cli)
    errors_file = cli.cwd / "rejected.txt"
    result = cli("logs", "load", str(path), "--errors-file", str(errors_file))

    assert result.returncode == 1
    assert result.stdout.strip() == "accepted 3, rejected 5"
    found = rejections(result.stderr)
    assert sorted(found) == [3, 5, 7, 8, 9]
    assert found[3].startswith("bad JSON: ")
    assert found[5] == "missing field: request"
    assert found[7] == "wrong type: client_id must be a string (got int)"
    assert found[8].startswith("not UTF-8: invalid byte 0xe9 at byte ")
    assert found[9] == "missing field: workload_id"
    assert f"rejected lines written to {errors_file}" in result.stderr

    written = errors_file.read_text(encoding="utf-8").splitlines()
    assert written == [f"line {n}: {found[n]}" for n in sorted(found)]

    listed = cli("logs", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"customer-service\W+sample-app\W+3\W", listed.stdout), listed.stdout


def test_logs_load_overrides_workload_and_client(cli: Cli) -> None:
    path = mixed_file(cli)
    result = cli("logs", "load", str(path), "--workload-id", "wl-2", "--client-id", "app-2")

    # Lines 7 (client_id of a wrong type) and 9 (no workload_id) are fixed by the overrides.
    assert result.returncode == 1
    assert result.stdout.strip() == "accepted 5, rejected 3"
    assert sorted(rejections(result.stderr)) == [3, 5, 8]

    listed = cli("logs", "list")
    assert re.search(r"wl-2\W+app-2\W+5\W", listed.stdout), listed.stdout
    assert "customer-service" not in listed.stdout


def test_sample_file_loads_fully(cli: Cli) -> None:
    empty = cli("logs", "list")
    assert empty.returncode == 0
    assert "the log store is empty" in empty.stdout

    path, records = sample_records(cli, "logs/sample.jsonl", 40)
    assert {r["workload_id"] for r in records} == {"customer-service"}
    result = cli("logs", "load", str(path), "--batch-size", "7")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "accepted 40, rejected 0"
    assert rejections(result.stderr) == {}

    listed = cli("logs", "list")
    assert re.search(r"customer-service\W+sample-app\W+40\W", listed.stdout), listed.stdout


def test_logs_load_missing_file(cli: Cli) -> None:
    result = cli("logs", "load", "no-such-file.jsonl")
    assert result.returncode == 1
    assert error_line(result) == "error: log file not found: no-such-file.jsonl"
    assert result.stdout == ""


def test_logs_load_shows_the_first_100_rejections(cli: Cli) -> None:
    path = cli.cwd / "bad.jsonl"
    path.write_text("[]\n" * 105, encoding="utf-8")
    errors_file = cli.cwd / "errors" / "all.txt"
    errors_file.parent.mkdir()
    result = cli("logs", "load", str(path), "--errors-file", str(errors_file))
    assert result.returncode == 1
    assert result.stdout.strip() == "accepted 0, rejected 105"
    shown = rejections(result.stderr)
    assert sorted(shown) == list(range(1, 101))
    assert set(shown.values()) == {"not a JSON object (got array)"}
    hidden = [line for line in result.stderr.splitlines() if "5 more rejected line" in line]
    assert len(hidden) == 1 and "--errors-file" in hidden[0], result.stderr
    assert len(errors_file.read_text(encoding="utf-8").splitlines()) == 105


def test_logs_load_directory(cli: Cli) -> None:
    result = cli("logs", "load", str(cli.cwd))
    assert result.returncode == 1
    assert error_line(result) == (
        f"error: {cli.cwd} is a directory: name a JSONL file of log records"
    )


def test_data_dir_option_wins_over_the_environment(cli: Cli) -> None:
    option_dir = cli.cwd / "from-option"
    result = cli("--data-dir", str(option_dir), "config", "show")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["log_store_url"] == f"sqlite:///{option_dir}/flywheel.db"


# --- config ----------------------------------------------------------------------------------


def test_config_check_valid_blueprint_file(cli: Cli) -> None:
    result = cli("--config", str(BLUEPRINT_CONFIG), "config", "check")
    assert result.returncode == 0, result.stderr
    assert "configuration is valid (1 candidate(s))" in result.stdout

    # The same file named by FLYWHEEL_CONFIG.
    result = cli("config", "check", env={"FLYWHEEL_CONFIG": str(BLUEPRINT_CONFIG)})
    assert result.returncode == 0, result.stderr
    assert "1 candidate(s)" in result.stdout


def test_config_check_invalid_file(cli: Cli) -> None:
    path = cli.cwd / "flywheel.yaml"  # found in the working directory without --config
    path.write_text("data_split_config:\n  eval_size: -3\n  val_ratoi: 0.2\n", encoding="utf-8")
    result = cli("config", "check")
    assert result.returncode == 2
    assert "invalid configuration in flywheel.yaml" in result.stderr
    assert "data_split_config.eval_size: Input should be greater than or equal to 1" in (
        result.stderr
    )
    assert "data_split_config.val_ratoi: unknown key" in result.stderr
    assert "configuration is valid" not in result.stdout

    missing = cli("--config", "nope.yaml", "config", "check")
    assert missing.returncode == 2
    assert error_line(missing) == "error: config file not found: nope.yaml"

    not_a_mapping = cli.cwd / "list.yaml"
    not_a_mapping.write_text("- 1\n- 2\n", encoding="utf-8")
    result = cli("--config", str(not_a_mapping), "config", "check")
    assert result.returncode == 2
    assert "must hold a mapping of keys, not list" in error_line(result)


def test_config_check_run_level_rule(cli: Cli) -> None:
    path = cli.cwd / "dup.yaml"
    candidate = {"name": "same", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    path.write_text(yaml.safe_dump({"candidates": [candidate, candidate]}), encoding="utf-8")
    result = cli("--config", str(path), "config", "check")
    assert result.returncode == 2
    assert "candidate names must be unique; repeated: same" in error_line(result)


def test_config_show_with_set(cli: Cli) -> None:
    result = cli(
        "--config",
        str(BLUEPRINT_CONFIG),
        "config",
        "show",
        "--set",
        "data_split_config.eval_size=7",
        "--set",
        "evaluation.concurrency=3",
    )
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["data_split_config"]["eval_size"] == 7
    assert shown["data_split_config"]["limit"] == 1000  # the file's value is kept
    assert shown["evaluation"]["concurrency"] == 3
    assert [c["name"] for c in shown["candidates"]] == ["meta-llama-3.2-1b-instruct"]
    assert shown["log_store_url"] == f"sqlite:///{cli.cwd}/data/flywheel.db"

    bad = cli("config", "show", "--set", "temporal.address=elsewhere:7233")
    assert bad.returncode == 2
    assert "temporal cannot be set per run" in error_line(bad)


def test_config_show_output_is_yaml_at_default_width(tmp_path: Path) -> None:
    data_dir = tmp_path / ("a-data-directory-with-a-rather-long-name-" * 2) / "state"
    env = clean_env(data_dir)
    del env["COLUMNS"]
    result = Cli(tmp_path, env)("config", "show")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["log_store_url"] == f"sqlite:///{data_dir}/flywheel.db"


# --- run: usage errors before any connection -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--set", "data_split_config.eval_size=-1"],
            "data_split_config.eval_size: Input should be greater than or equal to 1",
        ),
        (["--set", "data_split_config.typo=1"], "data_split_config.typo: unknown key"),
        (["--set", "temporal.address=x:1"], "temporal cannot be set per run"),
        (["--set", "foo"], "invalid --set 'foo': expected KEY=VALUE"),
        (["--since", "last week"], "invalid since 'last week': use an ISO date or time"),
        (["--since", "1d", "--until", "7d"], "must be before until"),
        (["--set", "curation_config.pii.custom.x=("], "custom detector 'x': invalid regex"),
        (["--set", "a..b=1"], "invalid --set 'a..b=1': expected KEY=VALUE"),
        (["--endpoint", "http://127.0.0.1:9/v1"], "--endpoint and --model go together"),
        (["--model", "small"], "--endpoint and --model go together"),
        (
            ["--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--candidate", "x"],
            "use either --candidate or --endpoint/--model",
        ),
        (
            ["--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--set", "candidates=[]"],
            None,  # valid: reaches the connection step (checked below)
        ),
    ],
)
def test_run_usage_errors_need_no_server(cli: Cli, args: list[str], expected: str | None) -> None:
    result = cli("run", "some-workload", *args)
    if expected is None:
        assert result.returncode == 1
        assert "cannot reach Temporal" in error_line(result)
        return
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert expected in line
    assert "cannot reach Temporal" not in line


def test_run_with_bad_override_file(cli: Cli) -> None:
    path = cli.cwd / "run.yaml"
    path.write_text("data_split_config:\n  val_ratio: 1.5\n", encoding="utf-8")
    result = cli(
        "run", "w", "--config-file", str(path), "--endpoint", "http://h/v1", "--model", "m"
    )
    assert result.returncode == 2
    assert "data_split_config.val_ratio: Input should be less than 1" in error_line(result)


# --- Temporal unreachable ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["status", "X"],
        ["results", "X"],
        ["cancel", "X"],
        ["run", "W", "--endpoint", "http://127.0.0.1:9/v1", "--model", "small"],
    ],
    ids=lambda args: args[0],
)
def test_temporal_unreachable(cli: Cli, args: Sequence[str]) -> None:
    address = cli.env["FLYWHEEL_TEMPORAL__ADDRESS"]
    result = cli(*args)
    assert result.returncode == 1
    line = error_line(result)
    assert f"cannot reach Temporal at {address}" in line
    assert "flywheel dev" in line  # and what to do about it


# --- against a real Temporal dev server ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", ["status", "cancel", "results", "delete"])
async def test_unknown_run(dev_env: WorkflowEnvironment, cli: Cli, command: str) -> None:
    address = dev_env.client.service_client.config.target_host
    extra = ["--yes"] if command == "delete" else []
    result = await cli.run(
        command, "no-such-run", *extra, env={"FLYWHEEL_TEMPORAL__ADDRESS": address}
    )
    assert result.returncode == 1
    assert "no run named 'no-such-run'" in error_line(result)


@pytest.mark.slow
async def test_list_with_unknown_status_is_an_error(dev_env: WorkflowEnvironment, cli: Cli) -> None:
    address = dev_env.client.service_client.config.target_host
    env = {"FLYWHEEL_TEMPORAL__ADDRESS": address}
    result = await cli.run("list", "--status", "exploded", env=env)
    assert result.returncode == 1
    assert "unknown status 'exploded'" in error_line(result)
    listed = await cli.run("list", "--workload", "nothing-here", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


@pytest.mark.slow
async def test_schedule_commands(dev_env: WorkflowEnvironment, cli: Cli) -> None:
    env = {"FLYWHEEL_TEMPORAL__ADDRESS": dev_env.client.service_client.config.target_host}
    created = await cli.run(
        "schedule",
        "create",
        "cli-sched",
        "--every",
        "12h",
        "--paused",
        "--note",
        "from cli",
        "--set",
        "data_split_config.eval_size=5",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    assert "created schedule flywheel-schedule-cli-sched (paused)" in created.stdout

    again = await cli.run("schedule", "create", "cli-sched", "--every", "1d", env=env)
    assert again.returncode == 1
    assert "already has a schedule" in error_line(again)
    neither = await cli.run("schedule", "create", "other", env=env)
    assert neither.returncode == 2
    assert "--cron EXPRESSION or --every INTERVAL" in error_line(neither)
    bad = await cli.run("schedule", "create", "other", "--every", "soon", env=env)
    assert bad.returncode == 2
    assert "invalid interval 'soon'" in error_line(bad)

    listed = await cli.run("schedule", "list", env=env)
    assert listed.returncode == 0 and "flywheel-schedule-cli-sched" in listed.stdout
    described = await cli.run("schedule", "describe", "cli-sched", env=env)
    assert described.returncode == 0
    assert "every 12:00:00" in described.stdout and "paused (from cli)" in described.stdout
    for verb, shown in (("unpause", "unpaused"), ("pause", "paused")):
        result = await cli.run("schedule", verb, "cli-sched", env=env)
        assert result.returncode == 0 and f"{shown} schedule for cli-sched" in result.stdout
    deleted = await cli.run("schedule", "delete", "cli-sched", env=env)
    assert deleted.returncode == 0
    gone = await cli.run("schedule", "describe", "cli-sched", env=env)
    assert gone.returncode == 1
    assert "no schedule named flywheel-schedule-cli-sched" in error_line(gone)


# --- `flywheel dev` ------------------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class DevProcess:
    """A `flywheel dev` subprocess on free ports; output goes to files in ``workdir``."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.port = free_port()
        self.ui_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.server_pids: list[int] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def stdout(self) -> str:
        return (self.workdir / "dev.out").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.workdir / "dev.err").read_text(errors="replace")

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to be ready."""
        args = ["dev", "--port", str(self.port), "--ui-port", str(self.ui_port)]
        with (
            (self.workdir / "dev.out").open("wb") as out,
            (self.workdir / "dev.err").open("wb") as err,
        ):
            self.process = subprocess.Popen(
                [str(FLYWHEEL), *args],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        return self.process

    def start(self, timeout_s: float = 60) -> None:
        """Start the process and wait until it says where its Web UI is."""
        self.launch()
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while f"Web UI: {self.ui_url}" not in self.stdout:
            if self.process.poll() is not None:
                pytest.fail(f"flywheel dev exited {self.process.returncode}: {self.stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"flywheel dev did not start in {timeout_s}s: {self.stderr}")
            time.sleep(0.1)
        self.server_pids = child_pids(self.process.pid)

    def interrupt(self, timeout_s: float = 15) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout_s)

    def cleanup(self) -> None:
        """Stop whatever this test started and is still running (by PID)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for pid in self.server_pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@contextmanager
def flywheel_dev(workdir: Path, env: dict[str, str]) -> Iterator[DevProcess]:
    dev = DevProcess(workdir, env)
    try:
        dev.start()
        yield dev
    finally:
        dev.cleanup()


def wait_for_http(url: str, timeout_s: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200 or time.monotonic() > deadline:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


@pytest.mark.slow
def test_dev_serves_ui_refuses_a_second_start_and_stops_on_sigint(cli: Cli) -> None:
    with flywheel_dev(cli.cwd, cli.env) as dev:
        assert f"Temporal dev server at {dev.address}" in dev.stdout
        assert dev.server_pids, "flywheel dev started no server process"
        assert all(alive(pid) for pid in dev.server_pids)

        assert wait_for_http(dev.ui_url).status_code == 200
        with socket.create_connection(("127.0.0.1", dev.port), timeout=5):
            pass
        assert (cli.cwd / "data" / "temporal.db").exists()  # SQLite in the data directory

        # A second `flywheel dev` on a port in use: a usage error naming the port and the option.
        second = cli("dev", "--port", str(dev.port), "--ui-port", str(free_port()), timeout=30)
        assert second.returncode == 2
        line = error_line(second)
        assert f"port {dev.port} on 127.0.0.1 is already in use" in line
        assert "--port" in line
        second = cli("dev", "--port", str(free_port()), "--ui-port", str(dev.ui_port), timeout=30)
        assert second.returncode == 2
        line = error_line(second)
        assert f"port {dev.ui_port} on 127.0.0.1 is already in use" in line
        assert "--ui-port" in line

        # The first one still serves.
        with socket.create_connection(("127.0.0.1", dev.port), timeout=5):
            pass

        started = time.monotonic()
        assert dev.interrupt(timeout_s=15) == 0, dev.stderr
        assert time.monotonic() - started < 15
        assert "stopped" in dev.stdout
        assert "Traceback" not in dev.stderr, dev.stderr

        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in dev.server_pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in dev.server_pids)
        assert port_is_free("127.0.0.1", dev.port)
        assert port_is_free("127.0.0.1", dev.ui_port)


@pytest.mark.slow
def test_dev_interrupted_while_starting_leaves_no_server(cli: Cli) -> None:
    dev = DevProcess(cli.cwd, cli.env)
    try:
        process = dev.launch()
        deadline = time.monotonic() + 30
        while not dev.server_pids and time.monotonic() < deadline:
            assert process.poll() is None, dev.stderr
            dev.server_pids = child_pids(process.pid)
            time.sleep(0.01)
        assert dev.server_pids, "flywheel dev started no server process"
        assert "Web UI" not in dev.stdout  # still starting
        assert dev.interrupt() == 130
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in dev.server_pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in dev.server_pids)
    finally:
        dev.cleanup()


# --- the whole flywheel through the CLI ----------------------------------------------------------


@pytest.mark.slow
async def test_run_end_to_end_through_the_cli(cli: Cli) -> None:
    data_dir = cli.cwd / "data"
    path, records = await asyncio.to_thread(sample_records, cli, "customer-service.jsonl", 200)
    script, categories = build_script(records)

    dev = DevProcess(cli.cwd, cli.env)
    try:
        await asyncio.to_thread(dev.start)
        env = {
            "FLYWHEEL_TEMPORAL__ADDRESS": dev.address,
            "FLYWHEEL_TEMPORAL__UI_URL": dev.ui_url,
        }
        with ScriptedOpenAIServer(script) as server:
            loaded = await cli.run("logs", "load", str(path))
            assert loaded.returncode == 0, loaded.stderr
            assert loaded.stdout.strip() == "accepted 200, rejected 0"

            result = await cli.run(
                "run",
                "customer-service",
                "--endpoint",
                server.base_url,
                "--model",
                "small",
                "--wait",
                "--set",
                "data_split_config.eval_size=20",
                "--set",
                "data_split_config.random_seed=3",
                env=env,
                limit_s=90,
            )
            assert result.returncode == 0, result.stdout + result.stderr + dev.stderr
            match = re.search(r"started run (flywheel-customer-service-\S+)", result.stdout)
            assert match, result.stdout
            run_id = match.group(1)
            assert f"Web UI: {dev.ui_url}/namespaces/default/workflows/{run_id}" in result.stdout
            # The results table: the candidate's base eval row, and the curation line.
            assert re.search(r"Datasets: 200 logs .* eval 20 .* seed 3", result.stdout)
            assert re.search(r"small\W+base\W+completed", result.stdout), result.stdout
            assert "No recommendation: no evaluation meets every target" in result.stdout
            assert {r.model for r in server.requests if r.path.endswith("/chat/completions")} == {
                "small"
            }

        listed: list[dict[str, Any]] = []
        for _ in range(50):  # visibility is eventually consistent
            shown = await cli.run("list", "--json", env=env)
            assert shown.returncode == 0, shown.stderr
            listed = json.loads(shown.stdout)
            if listed and listed[0]["status"] == "completed":
                break
            await asyncio.sleep(0.1)
        assert [(r["run_id"], r["workload_id"], r["status"]) for r in listed] == [
            (run_id, "customer-service", "completed")
        ]

        shown = await cli.run("results", run_id, env=env)
        assert shown.returncode == 0, shown.stderr
        # The curation report: records per label and set, and the ICL line.
        assert re.search(r"label\s+eval\s+train\s+val", shown.stdout), shown.stdout
        assert re.search(r"lookup_order\s+\d+\s+\d+\s+\d+", shown.stdout)
        assert re.search(r"ICL \(context \d+, uniform\): \d\.\d examples", shown.stdout)
        # Recall per tool, a column per candidate eval (here: the base eval of "small").
        assert "Recall per tool" in shown.stdout
        assert re.search(r"no_tool\W+\d+\W+\d\.\d\d\W+\d\.\d\d", shown.stdout), shown.stdout

        shown = await cli.run("results", run_id, "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        run = json.loads(shown.stdout)
        report = run["datasets"]["report"]
        assert sum(sum(row.values()) for row in report["tool_splits"].values()) == (
            report["eval_records"] + report["train_records"] + report["val_records"]
        )
        assert run["run_id"] == run_id and run["status"] == "completed"
        assert run["config"]["data_split_config"]["random_seed"] == 3
        (candidate,) = run["candidates"]
        assert (candidate["name"], candidate["model"]) == ("small", "small")
        base = next(e for e in candidate["evals"] if e["kind"] == "base")
        assert base["status"] == "completed"
        assert (base["n_total"], base["n_scored"], base["n_failed"]) == (20, 20, 0)

        root = (data_dir / "artifacts").resolve().as_uri()
        eval_ref = DatasetRef.model_validate(run["datasets"]["eval"])
        assert eval_ref.uri.startswith(root + "/")
        eval_records = await ArtifactStore(root).read_dataset(eval_ref)
        assert len(eval_records) == 20
        name_acc, args_acc = expected_accuracy(eval_records, categories)
        assert base["metrics"]["function_name_accuracy"] == pytest.approx(name_acc)
        assert base["metrics"]["function_name_and_args_accuracy"] == pytest.approx(args_acc)
        assert 0 < args_acc < name_acc < 1

        status = await cli.run("status", run_id, env=env)
        assert status.returncode == 0, status.stderr
        assert run_id in status.stdout and "completed" in status.stdout
        status = await cli.run("status", run_id, "--json", env=env)
        assert json.loads(status.stdout)["run"]["status"] == "completed"

        # The Web UI's server lists the run by its WorkloadId search attribute.
        query = 'WorkloadId="customer-service"'
        ui = await asyncio.to_thread(
            httpx.get,
            f"{dev.ui_url}/api/v1/namespaces/default/workflows",
            params={"query": query},
            timeout=10,
        )
        assert ui.status_code == 200
        shown_ids = [e["execution"]["workflowId"] for e in ui.json()["executions"]]
        assert shown_ids == [run_id]
        # … and by its outcome: nothing met the default target (name+args ≥ 0.9 with its
        # interval), so the run's BestCandidate is "none".
        ui = await asyncio.to_thread(
            httpx.get,
            f"{dev.ui_url}/api/v1/namespaces/default/workflows",
            params={"query": 'BestCandidate="none" AND WorkloadId="customer-service"'},
            timeout=10,
        )
        assert [e["execution"]["workflowId"] for e in ui.json()["executions"]] == [run_id]

        cancel = await cli.run("cancel", run_id, env=env)
        assert cancel.returncode == 1
        assert "has already ended (completed); nothing to cancel" in error_line(cancel)

        unconfirmed = await cli.run("delete", run_id, env=env)
        assert unconfirmed.returncode == 2
        assert "pass --yes to confirm" in error_line(unconfirmed)
        deleted = await cli.run("delete", run_id, "--yes", env=env)
        assert deleted.returncode == 0, deleted.stderr
        assert "deleted 4 dataset file(s)" in deleted.stdout  # eval, ICL, train, val
        assert f"deleted artifacts under {root}/runs/" in deleted.stdout  # reply checkpoints
        assert "deleted stored results" in deleted.stdout
        assert "deleted Temporal history of 2 workflow(s)" in deleted.stdout
        assert not await ArtifactStore(root).exists(eval_ref.uri)
        for _ in range(60):  # Temporal deletes histories in the background
            gone = await cli.run("results", run_id, env=env)
            if gone.returncode == 1:
                break
            await asyncio.sleep(1)
        assert gone.returncode == 1 and "no run named" in error_line(gone)

        assert await asyncio.to_thread(dev.interrupt) == 0, dev.stderr
    finally:
        await asyncio.to_thread(dev.cleanup)
