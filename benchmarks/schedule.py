"""Scheduling of candidates on the `nemo` platform: 3 candidates, 1 slot versus 3.

Whole flywheel runs on the embedded Temporal dev server against the NMP emulator
(tests/support/nmp_emulator) with scaled job durations in the blueprint's proportions: a NIM
deployment takes 5 units, a LoRA customization 60 and an evaluation job 5 (``--unit`` seconds
each). One candidate's critical path is deploy → customize → evaluate the customized model
(70 units; its base and ICL evaluations run beside the customization). Prints JSON: time to
results with ``max_parallel_candidates`` 1 and 3, the speed-up, and the orchestration overhead
per candidate — the measured time minus the emulated job time on the critical path (curation,
Temporal round trips, polling, dataset publishing and teardown are all in it).

    .venv/bin/python -m benchmarks.schedule [--unit 0.1] [--repeat 2]

Targets: ≥ 2.5× faster with 3 slots than sequential; overhead ≤ 1 s per candidate.
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
from typing import Any

from huggingface_hub import constants as hf_constants
from temporalio.testing import WorkflowEnvironment

from benchmarks._temporal import start_dev_server
from flywheel.api import FlywheelClient
from flywheel.config import Settings
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import RunStatus, StepStatus
from tests.support.flywheel_env import load_records, running_worker
from tests.support.nmp import HF_TOKEN
from tests.support.nmp_emulator import Durations, EmulatorConfig, NMPEmulator

WORKLOAD = "benchmark-agent"
HF_ENV = "FLYWHEEL_BENCHMARK_HF_TOKEN"
MODELS = ("meta/llama-3.2-1b-instruct", "meta/llama-3.2-3b-instruct", "meta/llama-3.1-8b-instruct")
DEPLOY, TRAIN, EVALUATE = 5, 60, 5
"""Emulated job durations in units (the blueprint's proportions)."""


def settings_for(data_dir: Path, emulator: NMPEmulator, slots: int) -> Settings:
    return Settings(
        data_dir=data_dir,
        temporal={"address": "unused", "task_queue": "benchmark"},
        nmp_config={
            "nemo_base_url": emulator.base_url,
            "nim_base_url": emulator.nim_url,
            "datastore_base_url": emulator.base_url,
            "nmp_namespace": "bench",
            "evaluator": "nemo",
            "hf_token_env": HF_ENV,
        },
        candidates=[
            {
                "name": model.split("/")[-1],
                "model": model,
                "platform": "nemo",
                "customization_enabled": True,
                "customizer": {"target": f"{model}@2.0", "gpus": 1},
                "nim": {"tag": "1.8.3", "gpus": 1},
            }
            for model in MODELS
        ],
        max_parallel_candidates=slots,
        data_split_config={"eval_size": 20, "random_seed": 1},
        icl_config={"max_examples": 2, "max_context_length": 8192, "reserved_tokens": 512},
        timeouts={"poll_interval_s": 0.05},
    )


async def timed_run(env: WorkflowEnvironment, settings: Settings) -> float:
    fw = FlywheelClient(env.client, settings)
    try:
        started = time.perf_counter()
        result = await fw.wait(await fw.start_run(WORKLOAD))
        elapsed = time.perf_counter() - started
    finally:
        await fw.aclose()
    if result.status != RunStatus.COMPLETED or any(
        c.status != StepStatus.COMPLETED for c in result.candidates
    ):
        errors = [c.error for c in result.candidates if c.error]
        raise RuntimeError(f"the run did not complete: {result.error or errors}")
    return elapsed


async def main(unit: float, repeat: int) -> dict[str, Any]:
    os.environ[HF_ENV] = HF_TOKEN
    os.environ.pop("HF_HUB_OFFLINE", None)
    hf_constants.HF_HUB_OFFLINE = False
    durations = Durations(
        deploy=DEPLOY * unit,
        customization_queue=0.0,
        customization=TRAIN * unit,
        evaluation_queue=0.0,
        evaluation=EVALUATE * unit,
        model_sync=0.0,
    )
    env = await start_dev_server()
    times: dict[int, list[float]] = {1: [], 3: []}
    logs = generate_customer_service_logs(300, seed=1, workload_id=WORKLOAD)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for attempt in range(repeat):
                for slots in (1, 3):
                    emulator = NMPEmulator(
                        EmulatorConfig(durations=durations, datastore_token=HF_TOKEN)
                    ).start()
                    try:
                        data_dir = Path(tmp) / f"{slots}-{attempt}"
                        settings = settings_for(data_dir, emulator, slots)
                        await load_records(settings, logs)
                        async with running_worker(env.client, settings):
                            times[slots].append(await timed_run(env, settings))
                    finally:
                        emulator.stop()
    finally:
        await env.shutdown()
    critical_path = (DEPLOY + TRAIN + EVALUATE) * unit
    sequential, parallel = statistics.median(times[1]), statistics.median(times[3])
    n = len(MODELS)
    return {
        "benchmark": "schedule",
        "cpus": os.cpu_count(),
        "unit_s": unit,
        "candidates": n,
        "emulated_seconds_per_candidate": critical_path,
        "seconds": {
            "1_slot": [round(t, 2) for t in times[1]],
            "3_slots": [round(t, 2) for t in times[3]],
        },
        "median_seconds": {"1_slot": round(sequential, 2), "3_slots": round(parallel, 2)},
        "speedup": round(sequential / parallel, 2),
        "overhead_seconds_per_candidate": {
            "1_slot": round((sequential - n * critical_path) / n, 2),
            "3_slots": round((parallel - critical_path) / n, 2),
        },
        "target": {"speedup": 2.5, "overhead_seconds_per_candidate": 1.0},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", type=float, default=0.1, help="seconds per duration unit")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.unit, args.repeat)), indent=2))
