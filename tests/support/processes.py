"""Stopping the server processes the test helpers start (only ever their own, by handle)."""

from __future__ import annotations

import subprocess


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
