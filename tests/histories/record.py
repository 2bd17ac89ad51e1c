"""Record the workflow histories that the replay test checks determinism against.

Re-record only with a deliberate, versioned workflow change (``workflow.patched``):

    .venv/bin/python -m tests.histories.record

It runs, on a fresh dev server: a full run with two candidates (one customizes, one fails to
deploy) and a run cancelled mid-evaluation; it writes each workflow's history as JSON here.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from flywheel.config import Platform
from flywheel.sample_data import generate_customer_service_logs
from tests.conftest import TEMPORAL_CLI, make_settings
from tests.support.flywheel_env import load_records, running_worker, start_run
from tests.support.recording_platform import Behaviour, RecordingPlatform

HERE = Path(__file__).parent
WORKLOAD = "replayed-agent"


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI), data_converter=pydantic_data_converter
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = make_settings(
                Path(tmp),
                "unused",
                candidates=[
                    {
                        "name": "tuned",
                        "model": "org/tuned",
                        "base_url": "http://127.0.0.1:9/v1",
                        "customization_enabled": True,
                    },
                    {"name": "broken", "model": "org/broken", "base_url": "http://127.0.0.1:9/v1"},
                ],
            )
            await load_records(
                settings, generate_customer_service_logs(120, seed=4, workload_id=WORKLOAD)
            )
            platform = RecordingPlatform(
                {
                    "broken": Behaviour(deploy_error="no capacity"),
                    "tuned": Behaviour(evaluate_delay_s=0.2),
                }
            )
            async with running_worker(env.client, settings, {Platform.ENDPOINTS: platform}):
                full = await start_run(env.client, settings, WORKLOAD, run_id="replay-full-run")
                await full.result()
                platform.behaviours["tuned"] = Behaviour(evaluate_delay_s=30)
                cancelled = await start_run(
                    env.client,
                    settings,
                    WORKLOAD,
                    run_id="replay-cancelled-run",
                    candidates=["tuned"],
                )
                while "tuned" not in platform.deployed:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                await cancelled.cancel()
                try:
                    await cancelled.result()
                except Exception:
                    pass
            for workflow_id in (
                "replay-full-run",
                "replay-full-run/tuned",
                "replay-full-run/broken",
                "replay-cancelled-run",
                "replay-cancelled-run/tuned",
            ):
                history = await env.client.get_workflow_handle(workflow_id).fetch_history()
                name = workflow_id.replace("/", "--") + ".json"
                (HERE / name).write_text(history.to_json(), encoding="utf-8")
                print(f"wrote {name} ({len(history.events)} events)")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
