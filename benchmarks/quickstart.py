"""The quickstart end to end, timed: SmolLM2-135M-Instruct on the local platform, offline.

Runs exactly what `flywheel quickstart` runs (embedded Temporal dev server, worker, the compact
sample workload, base / ICL / LoRA / customized evaluations) in a fresh data directory and
prints JSON: wall time, and function-name accuracy of each evaluation — the customized model
must beat its base.

    .venv/bin/python -m benchmarks.quickstart [--records 320]

Target on 2 CPU cores: ≤ 10 minutes, customized > base on function_name_accuracy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from flywheel.api import FlywheelClient
from flywheel.config import Settings
from flywheel.quickstart import QuickstartEvents, run_quickstart, smollm2_candidate
from flywheel.schemas import FlywheelRunResult


async def main(records: int) -> dict[str, Any]:
    async def watch(fw: FlywheelClient, run_id: str) -> FlywheelRunResult:
        return await fw.wait(run_id)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = await run_quickstart(
            Settings(data_dir=Path(tmp)),
            candidate=smollm2_candidate(),
            records=records,
            compact=True,
            events=QuickstartEvents(say=lambda _text: None, watch=watch),
        )
        seconds = time.perf_counter() - started
    (candidate,) = result.candidates
    accuracy = {e.kind.value: e.metrics.get("function_name_accuracy") for e in candidate.evals}
    customization = candidate.customization
    return {
        "benchmark": "quickstart",
        "cpus": os.cpu_count(),
        "status": result.status.value,
        "seconds": round(seconds, 1),
        "records": records,
        "eval_records": result.datasets.report.eval_records if result.datasets else None,
        "function_name_accuracy": accuracy,
        "lora_steps": customization.steps_completed if customization else None,
        "val_loss": customization.val_loss if customization else None,
        "customized_beats_base": (accuracy.get("customized") or 0) > (accuracy.get("base") or 0),
        "target": {"seconds": 600, "customized_beats_base": True},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=320)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.records)), indent=2))
