"""A finished run with realistic results, built from per-record scores (no servers needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flywheel.config import RunConfig
from flywheel.schemas import (
    ArtifactRef,
    CandidateResult,
    CurationReport,
    DatasetBundle,
    DatasetFormat,
    DatasetRef,
    EvalKind,
    EvalResult,
    FlywheelRunResult,
    Platform,
    RunStatus,
    StepStatus,
    WorkloadType,
)
from flywheel.scoring.confidence import metric_intervals
from flywheel.scoring.cost import LoggedUsage
from flywheel.scoring.latency import latency_summary
from flywheel.scoring.metrics import aggregate_scores
from flywheel.scoring.recommendation import assess_run

STARTED = datetime(2026, 11, 20, 3, 15, tzinfo=UTC)
PRICING = {
    "currency": "USD",
    "production_model": "big-70b",
    "models": {
        "big-70b": {"input_per_1m": 3.0, "output_per_1m": 15.0},
        "small": {"input_per_1m": 0.1, "output_per_1m": 0.4},
        "tiny": {"gpu_hour": 2.0, "gpus": 1},
    },
}


def tool_eval(
    kind: EvalKind,
    right: int,
    args_right: int,
    n: int = 40,
    *,
    latency: float = 0.4,
    tokens_in: int = 300,
    tokens_out: int = 25,
    throughput: float | None = None,
    status: StepStatus = StepStatus.COMPLETED,
    examples: ArtifactRef | None = None,
) -> EvalResult:
    """An evaluation whose first ``right`` records name the right tool and whose first
    ``args_right`` also have the right arguments."""
    rows = [
        {
            "function_name_accuracy": float(i < right),
            "function_name_and_args_accuracy": float(i < args_right),
        }
        for i in range(n)
    ]
    latencies = [latency * (0.6 + (i % 10) / 10) for i in range(n)]
    per_tool: dict[str, dict[str, float | int | None]] = {
        "lookup_order": {
            "support": 20,
            "predicted": 19,
            "precision": 0.95,
            "recall": 0.9,
            "f1": 0.92,
        },
        "cancel_order": {
            "support": 12,
            "predicted": 10,
            "precision": 0.8,
            "recall": 0.67,
            "f1": 0.73,
        },
        "no_tool": {"support": 8, "predicted": 11, "precision": 0.7, "recall": 1.0, "f1": 0.82},
    }
    summary = latency_summary(latencies)
    return EvalResult(
        kind=kind,
        status=status,
        model=f"model-{kind.value}",
        metrics=aggregate_scores(rows),
        per_tool=per_tool,
        n_total=n,
        n_scored=n,
        n_failed=0,
        latency_p50_s=summary.p50_s if summary else None,
        latency_p95_s=summary.p95_s if summary else None,
        tokens_in=tokens_in * n,
        tokens_out=tokens_out * n,
        intervals=metric_intervals(rows),
        latency=summary,
        tokens_per_s=tokens_out / latency,
        throughput_rps=throughput,
        concurrency=8,
        examples=examples,
        started_at=STARTED,
        finished_at=STARTED + timedelta(minutes=2),
    )


def finished_run(
    *,
    run_id: str = "flywheel-support-20261120T031500Z",
    workload_id: str = "support",
    started: datetime = STARTED,
    small_args_right: int = 40,
    targets: dict[str, Any] | None = None,
    assess: bool = True,
    examples: ArtifactRef | None = None,
) -> FlywheelRunResult:
    """Two candidates: ``small`` (hosted, per token) and ``tiny`` (self-hosted, per GPU-hour)."""
    config = RunConfig.model_validate(
        {
            "pricing": PRICING,
            "acceptance": {"targets": targets or {"function_name_and_args_accuracy": ">= 0.8"}},
            "candidates": [
                {"name": "small", "model": "org/small", "base_url": "http://small/v1"},
                {"name": "tiny", "model": "org/tiny", "base_url": "http://tiny/v1"},
            ],
        }
    )
    ref = DatasetRef(
        uri="file:///x/eval.jsonl", sha256="0" * 64, n_records=40, format=DatasetFormat.EVAL
    )
    report = CurationReport(
        workload_type=WorkloadType.TOOL_CALLING,
        seed=7,
        total_records=400,
        dropped={"exact_duplicate": 12, "truncated": 3},
        selected=385,
        eval_records=40,
        train_records=310,
        val_records=35,
        tool_splits={
            "lookup_order": {"eval": 20, "train": 160, "val": 18},
            "cancel_order": {"eval": 12, "train": 90, "val": 10},
            "no_tool": {"eval": 8, "train": 60, "val": 7},
        },
        warnings=["few records of cancel_order"],
    )
    run = FlywheelRunResult(
        run_id=run_id,
        workload_id=workload_id,
        client_id="app-1",
        status=RunStatus.COMPLETED,
        started_at=started,
        finished_at=started + timedelta(minutes=9),
        config=config,
        datasets=DatasetBundle(
            eval=ref, train=ref, val=ref, workload_type=report.workload_type, report=report
        ),
        candidates=[
            CandidateResult(
                name="small",
                model="org/small",
                platform=Platform.ENDPOINTS,
                status=StepStatus.COMPLETED,
                evals=[
                    tool_eval(EvalKind.BASE, 40, small_args_right, examples=examples),
                    tool_eval(EvalKind.ICL, 40, 39, tokens_in=900),
                ],
            ),
            CandidateResult(
                name="tiny",
                model="org/tiny",
                platform=Platform.LOCAL,
                status=StepStatus.COMPLETED,
                evals=[
                    tool_eval(EvalKind.BASE, 30, 20, latency=0.2, throughput=12.0),
                    tool_eval(EvalKind.CUSTOMIZED, 40, 38, latency=0.2, throughput=12.0),
                ],
            ),
        ],
    )
    if assess:
        usage = LoggedUsage(requests=40, tokens_in=40 * 300, tokens_out=40 * 30, model="big-70b")
        run.assessment, run.recommendation = assess_run(run, usage=usage)
    return run
