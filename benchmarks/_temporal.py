"""The embedded Temporal dev server, started for a benchmark."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from flywheel.clients.temporal import SEARCH_ATTRIBUTES


async def start_dev_server() -> WorkflowEnvironment:
    """The venv's `temporal` dev server with the flywheel's search attributes; its start-up
    banner goes to stderr, so a benchmark's stdout stays its JSON result."""
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
            search_attributes=list(SEARCH_ATTRIBUTES),
            data_converter=pydantic_data_converter,
            dev_server_log_level="error",
        )
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
