"""The decision a run supports: which candidate evaluation could replace the production model.

:func:`assess_run` turns a run's results into a :class:`RunAssessment` (per candidate and eval
kind: headline score with its interval, a verdict per acceptance target, cost per 1,000
requests and savings) and a :class:`Recommendation`:

* an evaluation is **eligible** when it completed and its verdict on every target is ``meets``;
* the recommendation is the eligible evaluation with the lowest known cost per 1,000 requests
  (ties, and evaluations whose cost is unknown, by the higher headline score, then by the
  configured candidate order and base → ICL → customized);
* when none is eligible there is no recommendation, and the reason names what fell short.

:func:`regression` compares a run with the previous run's recommendation (for ``flywheel
history``). Pure functions: the activity that calls them reads the eval records and the
previous run.
"""

from __future__ import annotations

from collections.abc import Sequence

from flywheel.config import AcceptanceTarget, RunConfig
from flywheel.schemas import (
    CandidateResult,
    EvalAssessment,
    EvalKind,
    EvalResult,
    FlywheelRunResult,
    ProductionCost,
    Recommendation,
    RunAssessment,
    ScoreInterval,
    StepStatus,
    TargetVerdict,
    Verdict,
    WorkloadType,
)
from flywheel.scoring.confidence import interval_from_summary, judge
from flywheel.scoring.cost import LoggedUsage, eval_cost, production_cost
from flywheel.scoring.metrics import (
    FUNCTION_NAME_ACCURACY,
    FUNCTION_NAME_AND_ARGS_ACCURACY,
    headline_metric,
)

__all__ = [
    "OPERATIONAL_METRICS",
    "assess_eval",
    "assess_run",
    "assessment_of",
    "recommend",
    "regression",
    "workload_type_of",
]

OPERATIONAL_METRICS = frozenset(
    {
        "latency_p50_s",
        "latency_p95_s",
        "ttft_p50_s",
        "ttft_p95_s",
        "failure_rate",
        "tokens_per_s",
        "cost_per_1k",
    }
)
"""Targets on measurements rather than scores: compared by value (they carry no interval)."""

_KIND_ORDER = list(EvalKind)
_REASONS_SHOWN = 4


def workload_type_of(run: FlywheelRunResult) -> WorkloadType:
    """The run's workload type: from its datasets, else guessed from the metrics it has."""
    if run.datasets is not None:
        return run.datasets.workload_type
    for candidate in run.candidates:
        for result in candidate.evals:
            if {FUNCTION_NAME_ACCURACY, FUNCTION_NAME_AND_ARGS_ACCURACY} & result.metrics.keys():
                return WorkloadType.TOOL_CALLING
    return WorkloadType.GENERIC


def assess_eval(
    candidate: CandidateResult,
    result: EvalResult,
    *,
    config: RunConfig,
    metric: str,
    targets: Sequence[AcceptanceTarget],
    production: ProductionCost | None = None,
) -> EvalAssessment:
    """Headline score, interval, verdicts and cost of one evaluation."""
    level = config.evaluation.confidence_level
    cost = eval_cost(
        config.pricing,
        result,
        candidate=candidate.name,
        model=candidate.model,
        production=production,
    )
    measured: dict[str, float | None] = {
        "latency_p50_s": result.latency_p50_s,
        "latency_p95_s": result.latency_p95_s,
        "ttft_p50_s": result.ttft_p50_s,
        "ttft_p95_s": result.ttft_p95_s,
        "failure_rate": result.failure_rate,
        "tokens_per_s": result.tokens_per_s,
        "cost_per_1k": cost.cost_per_1k,
    }
    completed = result.status == StepStatus.COMPLETED
    verdicts: list[TargetVerdict] = []
    for target in targets:
        if target.metric in OPERATIONAL_METRICS:
            value = measured.get(target.metric)
            verdict = judge(target, value, exact=True, n=result.n_scored)
        else:
            value = result.metrics.get(target.metric)
            verdict = judge(
                target, value, _interval(result, target.metric, level), n=result.n_scored
            )
        if not completed:
            verdict = verdict.model_copy(
                update={"verdict": Verdict.INCONCLUSIVE, "note": f"evaluation {result.status}"}
            )
        verdicts.append(verdict)
    return EvalAssessment(
        candidate=candidate.name,
        kind=result.kind,
        model=result.model or candidate.model,
        status=result.status,
        metric=metric,
        score=result.metrics.get(metric),
        interval=_interval(result, metric, level),
        n=result.n_scored,
        failure_rate=result.failure_rate,
        latency_p50_s=result.latency_p50_s,
        latency_p95_s=result.latency_p95_s,
        ttft_p50_s=result.ttft_p50_s,
        tokens_out_per_request=result.tokens_out_per_request,
        tokens_per_s=result.tokens_per_s,
        cost=cost,
        verdicts=verdicts,
        meets_all=completed
        and bool(verdicts)
        and all(v.verdict is Verdict.MEETS for v in verdicts),
    )


def assess_run(
    run: FlywheelRunResult,
    *,
    usage: LoggedUsage | None = None,
    previous: FlywheelRunResult | None = None,
) -> tuple[RunAssessment, Recommendation]:
    """Assess every evaluation of ``run`` and recommend one (see the module docstring).

    ``usage``: the production model's logged usage on the eval records (its cost is unknown
    without it). ``previous``: the workload's previous finished run, to say whether the
    recommendation changed.
    """
    config = run.config or RunConfig()
    metric = headline_metric(workload_type_of(run))
    targets = config.acceptance.target_list(metric)
    production = production_cost(config.pricing, usage) if usage is not None else None
    evals = [
        assess_eval(
            candidate, result, config=config, metric=metric, targets=targets, production=production
        )
        for candidate in run.candidates
        for result in candidate.evals
        if result.status in (StepStatus.COMPLETED, StepStatus.FAILED)
    ]
    assessment = RunAssessment(
        currency=config.pricing.currency, targets=targets, production=production, evals=evals
    )
    order = [c.name for c in config.candidates] or [c.name for c in run.candidates]
    recommendation = recommend(assessment, order=order, run_error=run.error)
    if previous is not None:
        recommendation = _with_previous(recommendation, previous)
    return assessment, recommendation


def recommend(
    assessment: RunAssessment, *, order: Sequence[str] = (), run_error: str | None = None
) -> Recommendation:
    """The cheapest evaluation meeting every target, or none with the reason."""
    currency = assessment.currency
    targets = "; ".join(str(t) for t in assessment.targets)
    eligible = [e for e in assessment.evals if e.meets_all]
    if not eligible:
        return Recommendation(currency=currency, reason=_why_none(assessment, run_error))

    def rank(e: EvalAssessment) -> tuple[bool, float, float, int, int]:
        cost = e.cost.cost_per_1k
        position = order.index(e.candidate) if e.candidate in order else len(order)
        return (
            cost is None,
            cost if cost is not None else 0.0,
            -(e.score if e.score is not None else float("-inf")),
            position,
            _KIND_ORDER.index(e.kind),
        )

    best = min(eligible, key=rank)
    if len(eligible) == 1:
        reason = f"the only evaluation meeting every target ({targets})"
        if best.cost.cost_per_1k is None:
            reason += "; its cost is unknown (see pricing.models)"
    elif best.cost.cost_per_1k is not None:
        reason = f"cheapest of {len(eligible)} evaluations meeting every target ({targets})"
        unpriced = [e.label for e in eligible if e.cost.cost_per_1k is None]
        if unpriced:
            reason += f"; no price for {', '.join(unpriced)}"
    else:
        reason = (
            f"best {best.metric} of {len(eligible)} evaluations meeting every target "
            f"({targets}); no prices known, so not ranked by cost (see pricing.models)"
        )
    return Recommendation(
        candidate=best.candidate,
        kind=best.kind,
        model=best.model,
        metric=best.metric,
        score=best.score,
        interval=best.interval,
        cost_per_1k=best.cost.cost_per_1k,
        savings_per_1k=best.cost.savings_per_1k,
        savings_fraction=best.cost.savings_fraction,
        currency=currency,
        reason=reason,
    )


def regression(previous: Recommendation | None, current: RunAssessment) -> str | None:
    """Why the candidate the previous run recommended regressed in ``current``, or None.

    A regression: it was not evaluated (or its evaluation failed), it is now below a target, or
    its headline score's whole interval is under the score the previous run recommended it at.
    """
    if previous is None or previous.candidate is None or previous.kind is None:
        return None
    label = f"{previous.candidate}/{previous.kind.value}"
    now = current.find(previous.candidate, previous.kind)
    if now is None or now.status != StepStatus.COMPLETED:
        return f"{label} (recommended before) was not evaluated successfully"
    below = [v for v in now.verdicts if v.verdict is Verdict.BELOW]
    if below:
        return f"{label} is now below target: {below[0].describe()}"
    if (
        previous.score is not None
        and now.score is not None
        and now.interval is not None
        and now.interval.high < previous.score
    ):
        return (
            f"{label} {now.metric} fell from {previous.score:.3f} to {now.score:.3f} "
            f"[{now.interval.low:.3f}, {now.interval.high:.3f}]"
        )
    return None


def assessment_of(run: FlywheelRunResult) -> tuple[RunAssessment, Recommendation]:
    """The run's stored assessment and recommendation, else both computed now (runs recorded
    before assessments existed, or still running: no production cost then)."""
    if run.assessment is not None and run.recommendation is not None:
        return run.assessment, run.recommendation
    return assess_run(run)


def _interval(result: EvalResult, metric: str, level: float) -> ScoreInterval | None:
    interval = result.intervals.get(metric)
    if interval is not None:
        return interval
    return interval_from_summary(metric, result.metrics.get(metric), result.n_scored, level)


def _why_none(assessment: RunAssessment, run_error: str | None) -> str:
    completed = [e for e in assessment.evals if e.status == StepStatus.COMPLETED]
    if not completed:
        reason = "no evaluation completed"
        return f"{reason} ({run_error})" if run_error else reason
    misses: list[str] = []
    inconclusive = False
    for e in completed:
        failing = [v for v in e.verdicts if v.verdict is not Verdict.MEETS]
        if not failing:
            continue
        first = min(failing, key=lambda v: v.verdict is not Verdict.BELOW)  # below first
        inconclusive = inconclusive or any(v.verdict is Verdict.INCONCLUSIVE for v in failing)
        misses.append(f"{e.label} {first.verdict.value}: {first.describe()}")
    reason = "no evaluation meets every target"
    if misses:
        shown = "; ".join(misses[:_REASONS_SHOWN])
        more = f"; and {len(misses) - _REASONS_SHOWN} more" if len(misses) > _REASONS_SHOWN else ""
        reason += f" ({shown}{more})"
    if inconclusive:
        reason += "; a larger eval set (data_split_config.eval_size) narrows the intervals"
    return reason


def _with_previous(recommendation: Recommendation, previous: FlywheelRunResult) -> Recommendation:
    """Note the previous run's recommendation (computed now for runs recorded without one)."""
    before = assessment_of(previous)[1]
    return recommendation.model_copy(
        update={
            "previous_run_id": previous.run_id,
            "previous_candidate": before.candidate,
            "previous_kind": before.kind,
            "changed": (before.candidate, before.kind)
            != (recommendation.candidate, recommendation.kind),
        }
    )
