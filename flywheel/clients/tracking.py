"""MLflow tracking of a finished run's evaluations (the blueprint's optional MLflow upload).

Used only when ``mlflow_config.enabled`` is true and the ``mlflow`` package (``mlflow-skinny``
is enough) is installed on the worker. Like the blueprint: one experiment per flywheel run,
``{experiment_name_prefix}-{run_id}``, created with ``artifact_location``; one MLflow run per
evaluation named ``{model with / as _}_{eval kind}`` with the params ``model``, ``run_name``,
``experiment_name``, ``flywheel_run_id`` and ``eval_type``, and the metrics ``mean_<metric>``
and ``total_evaluations``. Beyond it: each score's interval (``<metric>_ci_low``/``_ci_high``),
latency, tokens, failure rate and cost, and a tag saying which evaluation was recommended.

Idempotent: an evaluation's MLflow run is found again by its ``flywheel.eval`` tag, so a retried
activity logs into the same run. Blocking (the MLflow client is synchronous): call it from a
thread.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

from flywheel.config import MLflowConfig
from flywheel.errors import FlywheelError
from flywheel.schemas import EvalResult, FlywheelRunResult, StepStatus

__all__ = ["experiment_name", "log_run_to_mlflow", "mlflow_available", "mlflow_run_name"]


def mlflow_available() -> bool:
    """Whether the ``mlflow`` package can be imported on this worker."""
    return importlib.util.find_spec("mlflow") is not None


def experiment_name(config: MLflowConfig, run_id: str) -> str:
    return f"{config.experiment_name_prefix}-{run_id}"


def mlflow_run_name(model: str, kind: str) -> str:
    return f"{model.replace('/', '_')}_{kind}"


def log_run_to_mlflow(run: FlywheelRunResult, config: MLflowConfig) -> str:
    """Log every completed evaluation of ``run``; return the experiment's URI in the UI."""
    if not mlflow_available():
        raise FlywheelError("mlflow is not installed on the worker (pip install mlflow-skinny)")
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    name = experiment_name(config, run.run_id)
    try:
        client = MlflowClient(tracking_uri=config.tracking_uri)
        experiment = client.get_experiment_by_name(name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(name, artifact_location=config.artifact_location)
        )
        recommended = run.recommendation.label if run.recommendation else None
        for candidate in run.candidates:
            for result in candidate.evals:
                if result.status != StepStatus.COMPLETED:
                    continue
                key = f"{candidate.name}/{result.kind.value}"
                model = result.model or candidate.model
                run_name = mlflow_run_name(model, result.kind.value)
                found = client.search_runs(
                    [experiment_id], filter_string=f"tags.`flywheel.eval` = '{key}'"
                )
                mlflow_run = (
                    found[0]
                    if found
                    else client.create_run(
                        experiment_id, run_name=run_name, tags={"flywheel.eval": key}
                    )
                )
                run_id = mlflow_run.info.run_id
                params = {
                    "model": model,
                    "run_name": run_name,
                    "experiment_name": name,
                    "flywheel_run_id": run.run_id,
                    "eval_type": result.kind.value,
                    "candidate": candidate.name,
                    "workload_id": run.workload_id,
                }
                existing = mlflow_run.data.params if found else {}
                client.log_batch(
                    run_id,
                    metrics=[
                        Metric(k, v, 0, 0) for k, v in eval_metrics(run, candidate.name, result)
                    ],
                    params=[Param(k, v) for k, v in params.items() if k not in existing],
                    tags=[RunTag("flywheel.recommended", str(key == recommended).lower())],
                )
                client.set_terminated(run_id)
    except FlywheelError:
        raise
    except Exception as exc:  # MLflow raises many kinds; none may fail the run
        raise FlywheelError(f"MLflow logging failed: {type(exc).__name__}: {exc}") from None
    return f"{config.tracking_uri.rstrip('/')}/#/experiments/{experiment_id}"


def eval_metrics(
    run: FlywheelRunResult, candidate: str, result: EvalResult
) -> list[tuple[str, float]]:
    """The (name, value) pairs logged for one evaluation; finite numbers only."""
    values: dict[str, Any] = {f"mean_{k}": v for k, v in result.metrics.items()}
    for metric, interval in result.intervals.items():
        values[f"{metric}_ci_low"] = interval.low
        values[f"{metric}_ci_high"] = interval.high
    values.update(
        total_evaluations=result.n_scored,
        failed_requests=result.n_failed,
        latency_p50_s=result.latency_p50_s,
        latency_p95_s=result.latency_p95_s,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        tokens_per_s=result.tokens_per_s,
    )
    if run.assessment is not None:
        assessed = run.assessment.find(candidate, result.kind)
        if assessed is not None:
            values["cost_per_1k"] = assessed.cost.cost_per_1k
            values["savings_per_1k"] = assessed.cost.savings_per_1k
    return [
        (name, float(value))
        for name, value in values.items()
        if isinstance(value, int | float) and math.isfinite(float(value))
    ]
