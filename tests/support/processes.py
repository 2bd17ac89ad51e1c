"""Stopping the server processes the test helpers start (only ever their own, by handle)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def stop_process(
    process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout_s: float
) -> None:
    """Close its stdin (servers that watch it exit), terminate it, kill it if it lingers."""
    if process.stdin is not None:
        process.stdin.close()
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout_s)


FLYWHEEL = Path(sys.executable).parent / "flywheel"
"""The `flywheel` command of the virtual environment running the tests."""


def start_worker(
    config: Path, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``flywheel --config CONFIG worker`` as a child process, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(FLYWHEEL), "--config", str(config), "worker"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else {**os.environ, "PYTHONUNBUFFERED": "1"},
        )
