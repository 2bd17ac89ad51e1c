"""Reading results beyond one snapshot: a workload's history of runs, divergent examples.

``run_history`` needs only the result store (not Temporal), so it works for runs long past
Temporal's retention and while no Temporal server is reachable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.results import open_result_store
from flywheel.config import Settings
from flywheel.errors import FlywheelError
from flywheel.schemas import FlywheelRunResult, Recommendation, RunStatus, ScoreInterval
from flywheel.scoring.recommendation import assessment_of, regression

__all__ = ["HistoryEntry", "history_entries", "load_examples", "run_history"]


class HistoryEntry(BaseModel):
    """One run of a workload, in the workload's history: its headline numbers."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus
    recommended: str | None = Field(None, description="candidate/kind, or None")
    metric: str | None = None
    score: float | None = None
    interval: ScoreInterval | None = None
    cost_per_1k: float | None = None
    savings_fraction: float | None = None
    currency: str = "USD"
    reason: str | None = Field(None, description="why nothing was recommended")
    scores: dict[str, float | None] = Field(
        default_factory=dict, description="candidate/kind → headline score"
    )
    changed: bool = Field(False, description="the recommendation differs from the previous run")
    regression: str | None = Field(
        None, description="how the previous run's recommendation regressed in this run"
    )


def history_entries(runs: Sequence[FlywheelRunResult]) -> list[HistoryEntry]:
    """Runs oldest first, each with its headline numbers; the recommendation of the latest
    earlier completed run is checked for a regression (see
    :func:`~flywheel.scoring.recommendation.regression`)."""
    entries: list[HistoryEntry] = []
    previous: Recommendation | None = None
    for run in sorted(runs, key=lambda r: (r.started_at, r.run_id)):
        assessment, rec = assessment_of(run)
        finished = run.status == RunStatus.COMPLETED
        label = rec.label
        entry = HistoryEntry(
            run_id=run.run_id,
            started_at=run.started_at,
            finished_at=run.finished_at,
            status=run.status,
            recommended=label,
            metric=rec.metric,
            score=rec.score,
            interval=rec.interval,
            cost_per_1k=rec.cost_per_1k,
            savings_fraction=rec.savings_fraction,
            currency=rec.currency,
            reason=rec.reason if label is None else None,
            scores={e.label: e.score for e in assessment.evals},
        )
        if finished and previous is not None:
            entry.regression = regression(previous, assessment)
            entry.changed = (previous.candidate, previous.kind) != (rec.candidate, rec.kind)
        if finished:
            previous = rec
        entries.append(entry)
    return entries


async def run_history(
    settings: Settings, workload_id: str, *, limit: int = 50
) -> list[HistoryEntry]:
    """The workload's stored runs (the newest ``limit``), oldest first."""
    assert settings.result_store_url is not None
    store = open_result_store(settings.result_store_url, mongodb_db=settings.mongodb_db)
    try:
        runs = await store.list_runs(workload_id=workload_id, limit=limit)
    finally:
        await store.aclose()
    return history_entries(runs)


async def load_examples(
    artifacts: ArtifactStore, run: FlywheelRunResult
) -> dict[str, list[dict[str, Any]]]:
    """Each evaluation's divergent examples (``candidate/kind`` → lines), as saved by the
    evaluator; an evaluation whose file is gone is left out."""
    examples: dict[str, list[dict[str, Any]]] = {}
    for candidate in run.candidates:
        for result in candidate.evals:
            if result.examples is None:
                continue
            try:
                lines = await artifacts.read_jsonl(result.examples.uri)
            except FlywheelError:
                continue
            examples[f"{candidate.name}/{result.kind.value}"] = lines
    return examples
