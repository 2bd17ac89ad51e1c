"""Determinism: committed histories of real runs replay against today's workflow code.

A failure here means a workflow change would break runs that are in flight: guard the change
with ``workflow.patched(...)`` instead of re-recording (see tests/histories/record.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from flywheel.worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_histories_are_committed() -> None:
    names = {p.name for p in HISTORIES}
    assert {
        "replay-full-run.json",
        "replay-full-run--tuned.json",
        "replay-cancelled-run.json",
        "replay-cancelled-run--tuned.json",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem.replace("--", "/"), path.read_text())
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
