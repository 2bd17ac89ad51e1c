"""Throughput of the built-in evaluator against an endpoint with a fixed 50 ms latency.

An OpenAI-compatible server in a child process answers every chat request after exactly
``--latency-s`` (see :mod:`tests.support.fast_openai_server`), so at concurrency ``c`` an ideal
client completes ``c / latency`` requests per second; whatever is missing is the evaluator's own
overhead (HTTP client, bookkeeping, checkpoint writes, scoring). The code path is the real one:
``EndpointsPlatform.evaluate`` reads the eval dataset from a ``file://`` artifact store, replays
it through ``ChatClient`` with ``evaluation.concurrency``, checkpoints replies every
``checkpoint_every`` and scores them. Prints JSON; the ratio is measured over the whole
``evaluate`` call (dataset read and scoring included), median of ``--repeat`` runs.

    .venv/bin/python -m benchmarks.evaluator [--levels 8 32 128] [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import tempfile
import time
from typing import Any

from flywheel.clients.artifacts import ArtifactStore
from flywheel.config import Candidate, EvaluationConfig, RunConfig
from flywheel.curation.formats import to_eval_record
from flywheel.platforms.base import StepContext
from flywheel.platforms.endpoints import EndpointsPlatform
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import (
    DatasetFormat,
    DatasetRef,
    Deployment,
    EvalKind,
    EvaluateInput,
    Platform,
    StepStatus,
    WorkloadType,
)
from tests.support.fast_openai_server import MODEL, fast_server_process


def n_requests(concurrency: int, latency_s: float, seconds: float) -> int:
    """Enough requests for ``seconds`` at the ideal rate, and at least 20 per worker."""
    return max(20 * concurrency, round(concurrency / latency_s * seconds))


async def one_run(platform: EndpointsPlatform, request: EvaluateInput) -> dict[str, float]:
    """One evaluation, timed three ways (seconds).

    ``total_s``: the whole ``evaluate`` call (dataset read included); ``evaluator_s``: from the
    first heartbeat (``run_evaluation`` has loaded its checkpoint) to the result (replay,
    checkpoint writes and scoring); ``request_phase_s``: first heartbeat to the last reply.
    """
    marks: dict[str, float] = {}

    def heartbeat(details: dict[str, Any]) -> None:
        now = time.perf_counter()
        marks.setdefault("first", now)
        if details["done"] == details["total"]:
            marks.setdefault("all_replied", now)

    started = time.perf_counter()
    result = await platform.evaluate(request, StepContext(heartbeat=heartbeat))
    ended = time.perf_counter()
    if result.status != StepStatus.COMPLETED or result.n_failed:
        raise RuntimeError(f"the evaluation failed: {result.error}")
    return {
        "total_s": ended - started,
        "evaluator_s": ended - marks["first"],
        "request_phase_s": marks["all_replied"] - marks["first"],
        "p50_ms": (result.latency_p50_s or 0.0) * 1000,
        "p95_ms": (result.latency_p95_s or 0.0) * 1000,
    }


async def write_datasets(store: ArtifactStore, sizes: list[int]) -> dict[int, DatasetRef]:
    """One eval dataset per size (prefixes of one sample log), written to ``store``.

    The records are dropped afterwards: a worker holds only the dataset it evaluates, and a
    larger heap would make every garbage collection, hence the evaluator, slower.
    """
    logs = generate_customer_service_logs(max(sizes), seed=1, workload_id="bench")
    eval_records = [to_eval_record(r) for r in logs]
    refs = {n: await store.put_jsonl(eval_records[:n], DatasetFormat.EVAL) for n in set(sizes)}
    del logs, eval_records
    gc.collect()
    return refs


def summary(
    concurrency: int, n: int, latency_s: float, runs: list[dict[str, float]]
) -> dict[str, Any]:
    """Medians over the runs of one level; ``ratio`` is achieved / ideal requests per second."""
    ideal = concurrency / latency_s

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    return {
        "concurrency": concurrency,
        "requests": n,
        "ideal_rps": round(ideal, 1),
        "rps": round(n / median("evaluator_s"), 1),
        "ratio": round(n / median("evaluator_s") / ideal, 3),
        "request_phase_ratio": round(n / median("request_phase_s") / ideal, 3),
        "with_dataset_read_ratio": round(n / median("total_s") / ideal, 3),
        "p50_ms": round(median("p50_ms"), 1),
        "p95_ms": round(median("p95_ms"), 1),
        "evaluator_s": [round(r["evaluator_s"], 3) for r in runs],
    }


async def main(levels: list[int], seconds: float, repeat: int, latency_s: float) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(f"file://{tmp}")
        platform = EndpointsPlatform(store)
        datasets = await write_datasets(store, [n_requests(c, latency_s, seconds) for c in levels])
        async with fast_server_process(latency_s) as base_url:
            candidate = Candidate(name="bench", model=MODEL, base_url=base_url)
            deployment = Deployment(
                candidate="bench", platform=Platform.ENDPOINTS, model=MODEL, base_url=base_url
            )
            for concurrency in levels:
                n = n_requests(concurrency, latency_s, seconds)
                dataset = datasets[n]
                config = RunConfig(evaluation=EvaluationConfig(concurrency=concurrency))
                runs = []
                for attempt in range(repeat):
                    request = EvaluateInput(
                        run_id=f"c{concurrency}-r{attempt}",  # fresh checkpoint: no resumption
                        candidate=candidate,
                        config=config,
                        deployment=deployment,
                        kind=EvalKind.BASE,
                        dataset=dataset,
                        workload_type=WorkloadType.TOOL_CALLING,
                    )
                    runs.append(await one_run(platform, request))
                results.append(summary(concurrency, n, latency_s, runs))
    return {
        "benchmark": "evaluator",
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "latency_s": latency_s,
        "checkpoint_every": EvaluationConfig().checkpoint_every,
        "repeat": repeat,
        "levels": results,
        "min_ratio": min(r["ratio"] for r in results),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--seconds", type=float, default=5.0, help="ideal seconds per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-s", type=float, default=0.05)
    args = parser.parse_args()
    print(
        json.dumps(
            asyncio.run(main(args.levels, args.seconds, args.repeat, args.latency_s)), indent=2
        )
    )
