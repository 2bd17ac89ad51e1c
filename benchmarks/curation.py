"""Curation throughput and memory: N logged tool calls from the SQLite log store to datasets.

Builds N synthetic customer-service tool-calling records (≈3 KB each with their tool schemas,
~10 % repeats of earlier conversations), loads them into a fresh SQLite log store, then times
exactly what the ``prepare_datasets`` activity runs — extract → validate → dedup → sample/split
→ write eval/train/val → uniform ICL (two context lengths) — in a fresh process, with the
worker's curation process pool warm (a worker starts it when it starts) and cold (started by
the run itself), and prints JSON: records/s end to end, seconds per stage, and the peak RSS of
the measuring process, of each pool process, and of all of them together.

    .venv/bin/python -m benchmarks.curation [--records 100000] [--repeat 3] [--processes N]

Target (2 cores): ≥ 35,000 records/s end to end at 100,000 records, peak RSS ≤ 600 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from flywheel.clients.process_pool import process_pool

WORKLOAD = "benchmark-agent"
TOOLS_PER_RECORD = 5
URL = "http://127.0.0.1:9/v1"  # never called: curation only


def synthetic_records(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` newest-last records: 90 % distinct calls, 10 % later repeats of earlier ones."""
    from flywheel.sample_data import generate_customer_service_logs

    unique = n - n // 10
    records = generate_customer_service_logs(unique, seed=seed, workload_id=WORKLOAD)
    rng = random.Random(seed)
    for record in records:  # a realistic ≈3 KB: the called tool and a few others
        tools = record["request"]["tools"]
        called = {
            call["function"]["name"]
            for call in record["response"]["choices"][0]["message"].get("tool_calls") or []
        }
        first = [t for t in tools if t["function"]["name"] in called]
        rest = [t for t in tools if t["function"]["name"] not in called]
        record["request"]["tools"] = (first + rest)[:TOOLS_PER_RECORD]
    for original in rng.sample(records, n - unique):
        repeat = copy.deepcopy(original)
        repeat["timestamp"] = _later(repeat["timestamp"])
        records.append(repeat)
    return records


def _later(timestamp: str) -> str:
    from datetime import datetime

    return (datetime.fromisoformat(timestamp) + timedelta(seconds=1)).isoformat()


async def load(db: Path, n: int) -> dict[str, Any]:
    """Write the synthetic records into a SQLite log store at ``db``."""
    import orjson

    from flywheel.clients.logstore.sqlite import SQLiteLogStore
    from flywheel.schemas import LogRecord

    records = synthetic_records(n)
    sizes = [len(orjson.dumps(r)) for r in records]
    async with SQLiteLogStore(db) as store:
        for start in range(0, len(records), 5000):
            await store.add([LogRecord.model_validate(r) for r in records[start : start + 5000]])
    return {"records": len(records), "mean_record_bytes": round(statistics.mean(sizes))}


async def measure(
    db: Path, artifacts_dir: Path, n: int, workers: int, *, warm: bool = False
) -> dict[str, Any]:
    """Time one ``build_datasets`` over the store (run in a fresh process for a clean RSS)."""
    from flywheel.activities.dataset_builder import DatasetSource, StageTimes, build_datasets
    from flywheel.clients.artifacts import ArtifactStore
    from flywheel.clients.logstore.sqlite import SQLiteLogStore
    from flywheel.config import RunConfig

    config = RunConfig.model_validate(
        {
            "data_split_config": {"limit": n, "eval_size": 500, "min_total_records": 50},
            "icl_config": {"max_examples": 3, "max_context_length": 32768},
            "candidates": [
                {"name": "small", "model": "m1", "base_url": URL, "context_length": 8192},
                {"name": "large", "model": "m2", "base_url": URL, "context_length": 32768},
            ],
        }
    )
    times = StageTimes()
    pools: list[ProcessPoolExecutor] = []

    def processes() -> ProcessPoolExecutor | None:  # what a worker does (started when needed)
        if workers > 0 and not pools:
            pools.append(process_pool(workers))
        return pools[0] if pools else None

    if warm and processes() is not None:  # a long-running worker's pool: processes up already
        from flywheel.curation.scan import ScanSettings, scan_batch

        list(pools[0].map(scan_batch, [[b"{}"]] * workers, [ScanSettings()] * workers))
    async with SQLiteLogStore(db) as store:
        started = time.perf_counter()
        bundle = await build_datasets(
            store,
            ArtifactStore(artifacts_dir.as_uri()),
            config,
            DatasetSource(workload_id=WORKLOAD),
            seed=1,
            processes=processes,
            times=times,
        )
        total = time.perf_counter() - started
    pool_peaks = [max(pools[0].map(peak_rss_mb, range(8 * workers)))] if pools else [0]
    for pool in pools:
        pool.shutdown()
    report = bundle.report
    return {
        "processes": len(pools) and workers,
        "pool": ("warm" if warm else "cold") if pools else None,
        "seconds": round(total, 3),
        "records_per_second": round(report.total_records / total),
        "stages": {
            stage: {"seconds": round(s, 3), "records_per_second": round(report.total_records / s)}
            for stage, s in times.seconds.items()
            if s > 0
        },
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_pool_mb": max(pool_peaks),
        "cpu_seconds": {
            "main": round(_cpu(resource.RUSAGE_SELF), 2),
            "pool": round(_cpu(resource.RUSAGE_CHILDREN), 2),
        },
        "report": {
            "total": report.total_records,
            "dropped": report.dropped,
            "eval": report.eval_records,
            "train": report.train_records,
            "val": report.val_records,
        },
    }


def peak_rss_mb(_: object = None) -> int:
    """This process's peak resident set (VmHWM: per address space, so exec starts it afresh;
    ``ru_maxrss`` would carry over the launching process's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main(records: int, repeat: int, workers: int) -> dict[str, Any]:
    """Load once; then ``repeat`` fresh-process runs with a warm pool (as a worker has: it
    starts its curation processes when it starts) and ``repeat`` with a cold one."""
    modes = ("warm", "cold") if workers > 1 else ("none",)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "logs.db"
        loaded = asyncio.run(load(db, records))
        for attempt in range(repeat):
            for mode in modes:
                artifacts = Path(tmp) / f"artifacts-{mode}-{attempt}"
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.curation",
                        f"--records={records}",
                        f"--processes={workers}",
                        *(["--warm"] if mode == "warm" else []),
                        "--measure",
                        str(db),
                        str(artifacts),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
                )
                runs[mode].append(json.loads(out.stdout))
    every = [run for mode_runs in runs.values() for run in mode_runs]
    return {
        "benchmark": "curation",
        "cpus": os.cpu_count(),
        "processes": workers if workers > 1 else 0,
        **loaded,
        "records_per_second": {
            mode: {
                "median": round(statistics.median(r["records_per_second"] for r in mode_runs)),
                "runs": [r["records_per_second"] for r in mode_runs],
            }
            for mode, mode_runs in runs.items()
        },
        "max_peak_rss_mb": max(r["peak_rss_mb"] for r in every),
        "max_peak_rss_pool_process_mb": max(r["peak_rss_pool_mb"] for r in every),
        "max_peak_rss_total_mb": max(
            r["peak_rss_mb"] + r["processes"] * r["peak_rss_pool_mb"] for r in every
        ),
        "median_stage_seconds": {
            stage: round(statistics.median(r["stages"][stage]["seconds"] for r in every), 3)
            for stage in every[0]["stages"]
        },
        "report": every[0]["report"],
        "target": {"records_per_second": 35000, "peak_rss_mb": 600},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="curation processes (1: none)"
    )
    parser.add_argument("--measure", nargs=2, metavar=("DB", "ARTIFACTS"), help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        db, artifacts = (Path(p) for p in args.measure)
        print(
            json.dumps(
                asyncio.run(measure(db, artifacts, args.records, args.processes, warm=args.warm))
            )
        )
    else:
        print(json.dumps(main(args.records, args.repeat, args.processes), indent=2))
