"""Orchestration overhead of a flywheel run, end to end on the embedded Temporal dev server.

A sample workload (400 logged calls), candidates served by an OpenAI-compatible server on
loopback that answers instantly, so the time measured is the flywheel's own: Temporal round
trips, curation, artifact writes, evaluation bookkeeping, result recording. Prints JSON.

    .venv/bin/python -m benchmarks.run_overhead [--candidates 3] [--eval-size 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._temporal import start_dev_server
from flywheel.api import FlywheelClient
from flywheel.config import Settings
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import RunStatus
from tests.support.flywheel_env import load_records, running_worker
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripts import build_script

WORKLOAD = "benchmark-agent"


async def main(candidates: int, eval_size: int, repeat: int) -> dict[str, object]:
    logs = generate_customer_service_logs(400, seed=1, workload_id=WORKLOAD)
    script, _ = build_script(logs)
    env = await start_dev_server()
    try:
        with ScriptedOpenAIServer(script) as server, tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                data_dir=Path(tmp),
                temporal={"address": "unused", "task_queue": "benchmark"},
                candidates=[
                    {"name": f"c{i}", "model": f"m{i}", "base_url": server.base_url}
                    for i in range(candidates)
                ],
                max_parallel_candidates=candidates,
                data_split_config={"eval_size": eval_size, "random_seed": 1},
            )
            await load_records(settings, logs)
            fw = FlywheelClient(env.client, settings)
            times: list[float] = []
            async with running_worker(env.client, settings):
                for _ in range(repeat):
                    started = time.perf_counter()
                    result = await fw.wait(await fw.start_run(WORKLOAD))
                    times.append(time.perf_counter() - started)
                    assert result.status == RunStatus.COMPLETED, result.error
            await fw.aclose()
            requests = server.count()
    finally:
        await env.shutdown()
    median = statistics.median(times)
    return {
        "benchmark": "run_overhead",
        "cpus": os.cpu_count(),
        "candidates": candidates,
        "eval_size": eval_size,
        "log_records": len(logs),
        "runs": repeat,
        "run_seconds": [round(t, 3) for t in times],
        "median_run_seconds": round(median, 3),
        "median_seconds_per_candidate": round(median / candidates, 3),
        "chat_requests": requests,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--eval-size", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.candidates, args.eval_size, args.repeat)), indent=2))
