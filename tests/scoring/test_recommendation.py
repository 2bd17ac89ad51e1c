"""The recommendation rule: the cheapest evaluation meeting every target, or none and why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from flywheel.config import RunConfig
from flywheel.schemas import (
    CandidateResult,
    EvalKind,
    EvalResult,
    FlywheelRunResult,
    Platform,
    Recommendation,
    RunStatus,
    StepStatus,
    Verdict,
    WorkloadType,
)
from flywheel.scoring.cost import LoggedUsage
from flywheel.scoring.recommendation import (
    assess_run,
    assessment_of,
    regression,
    workload_type_of,
)
from tests.report.builders import PRICING, STARTED, finished_run, tool_eval

USAGE = LoggedUsage(requests=40, tokens_in=12_000, tokens_out=1200, model="big-70b")


def run_with(
    evals: dict[str, list[EvalResult]],
    *,
    targets: dict[str, Any] | None = None,
    pricing: dict[str, Any] | None = None,
    status: RunStatus = RunStatus.COMPLETED,
    error: str | None = None,
    run_id: str = "run-1",
    started_offset_h: int = 0,
) -> FlywheelRunResult:
    config = RunConfig.model_validate(
        {
            "pricing": PRICING if pricing is None else pricing,
            "acceptance": {"targets": targets} if targets is not None else {},
            "candidates": [
                {"name": name, "model": f"org/{name}", "base_url": "http://x/v1"} for name in evals
            ],
        }
    )
    return FlywheelRunResult(
        run_id=run_id,
        workload_id="support",
        status=status,
        error=error,
        started_at=STARTED + timedelta(hours=started_offset_h),
        config=config,
        candidates=[
            CandidateResult(
                name=name,
                model=f"org/{name}",
                platform=Platform.ENDPOINTS,
                status=StepStatus.COMPLETED,
                evals=results,
            )
            for name, results in evals.items()
        ],
    )


def test_cheapest_evaluation_meeting_every_target_wins() -> None:
    run = finished_run()
    assessment, rec = assess_run(run, usage=USAGE)
    assert (rec.candidate, rec.kind) == ("small", EvalKind.BASE)
    assert rec.cost_per_1k == pytest.approx((300 * 0.1 + 25 * 0.4) / 1000)
    assert rec.savings_fraction == pytest.approx(1 - rec.cost_per_1k / 1.35)
    assert rec.score == 1.0 and rec.interval is not None and rec.interval.method == "wilson"
    assert rec.reason.startswith("cheapest of 3 evaluations meeting every target")
    assert rec.label == "small/base"
    # every eval is assessed: the tiny base eval is below the target
    verdicts = {e.label: e.verdicts[0].verdict for e in assessment.evals}
    assert verdicts == {
        "small/base": Verdict.MEETS,
        "small/icl": Verdict.MEETS,
        "tiny/base": Verdict.BELOW,
        "tiny/customized": Verdict.MEETS,
    }
    assert assessment.production is not None
    assert assessment.production.cost_per_1k == pytest.approx(1.35)


def test_an_inconclusive_evaluation_is_never_recommended() -> None:
    # 34 of 40 is 0.85, above 0.8, but its interval reaches below 0.8: not decided
    run = run_with(
        {"small": [tool_eval(EvalKind.BASE, 40, 34)], "tiny": [tool_eval(EvalKind.BASE, 40, 40)]}
    )
    assessment, rec = assess_run(run, usage=USAGE)
    small = assessment.find("small", EvalKind.BASE)
    assert small is not None and small.verdicts[0].verdict is Verdict.INCONCLUSIVE
    assert not small.meets_all
    assert rec.candidate == "tiny"


def test_no_recommendation_names_what_fell_short() -> None:
    run = run_with({"small": [tool_eval(EvalKind.BASE, 40, 34), tool_eval(EvalKind.ICL, 40, 10)]})
    _, rec = assess_run(run)
    assert rec.candidate is None and rec.label is None
    assert rec.reason.startswith("no evaluation meets every target (")
    assert "small/base inconclusive: function_name_and_args_accuracy 0.850" in rec.reason
    assert "small/icl below: function_name_and_args_accuracy 0.250" in rec.reason
    assert "data_split_config.eval_size" in rec.reason


def test_failed_and_skipped_evaluations_are_not_eligible() -> None:
    failed = tool_eval(EvalKind.BASE, 40, 40, status=StepStatus.FAILED)
    skipped = EvalResult(kind=EvalKind.CUSTOMIZED, status=StepStatus.SKIPPED)
    run = run_with({"small": [failed, skipped]}, error=None)
    assessment, rec = assess_run(run)
    assert [e.label for e in assessment.evals] == ["small/base"]  # skipped: not assessed
    assert assessment.evals[0].verdicts[0].verdict is Verdict.INCONCLUSIVE
    assert assessment.evals[0].verdicts[0].note == "evaluation failed"
    assert rec.candidate is None and rec.reason == "no evaluation completed"


def test_a_failed_run_says_why() -> None:
    run = run_with({}, status=RunStatus.FAILED, error="no candidate could be evaluated")
    _, rec = assess_run(run)
    assert rec.reason == "no evaluation completed (no candidate could be evaluated)"


def test_without_prices_the_best_score_wins_and_the_reason_says_so() -> None:
    run = run_with(
        {"small": [tool_eval(EvalKind.BASE, 40, 38)], "tiny": [tool_eval(EvalKind.BASE, 40, 40)]},
        pricing={},
        targets={"function_name_and_args_accuracy": 0.8},
    )
    _, rec = assess_run(run)
    assert rec.candidate == "tiny" and rec.cost_per_1k is None
    assert rec.reason.startswith("best function_name_and_args_accuracy of 2 evaluations")
    assert "no prices known" in rec.reason


def test_a_priced_evaluation_beats_an_unpriced_one() -> None:
    run = run_with(
        {"small": [tool_eval(EvalKind.BASE, 40, 38)], "other": [tool_eval(EvalKind.BASE, 40, 40)]},
        targets={"function_name_and_args_accuracy": 0.8},
    )
    _, rec = assess_run(run)
    assert rec.candidate == "small"
    assert "no price for other/base" in rec.reason
    alone = run_with(
        {"other": [tool_eval(EvalKind.BASE, 40, 40)]},
        targets={"function_name_and_args_accuracy": 0.8},
    )
    _, rec = assess_run(alone)
    assert rec.candidate == "other" and rec.reason == (
        "the only evaluation meeting every target (function_name_and_args_accuracy ≥ 0.8); "
        "its cost is unknown (see pricing.models)"
    )


def test_equal_costs_go_to_the_higher_score_then_configured_order() -> None:
    prices = {"models": {"a": {"input_per_1m": 1.0}, "b": {"input_per_1m": 1.0}}}
    run = run_with(
        {"a": [tool_eval(EvalKind.BASE, 40, 38)], "b": [tool_eval(EvalKind.BASE, 40, 40)]},
        pricing=prices,
    )
    assert assess_run(run)[1].candidate == "b"
    tie = run_with(
        {"a": [tool_eval(EvalKind.BASE, 40, 40)], "b": [tool_eval(EvalKind.BASE, 40, 40)]},
        pricing=prices,
    )
    assert assess_run(tie)[1].candidate == "a"


def test_default_target_is_the_headline_metric() -> None:
    run = run_with({"small": [tool_eval(EvalKind.BASE, 40, 40)]})
    assessment, _ = assess_run(run)
    (target,) = assessment.targets
    assert (target.metric, target.op, target.value) == (
        "function_name_and_args_accuracy",
        ">=",
        0.9,
    )


def test_operational_targets_are_compared_by_value() -> None:
    slow = tool_eval(EvalKind.BASE, 40, 40, latency=3.0)
    fast = tool_eval(EvalKind.ICL, 40, 40, latency=0.2, tokens_in=3000)
    targets = {"function_name_and_args_accuracy": 0.8, "latency_p95_s": 1.0}
    run = run_with({"small": [slow, fast]}, targets=targets)
    assessment, rec = assess_run(run)
    slow_verdicts = assessment.find("small", "base").verdicts  # type: ignore[union-attr]
    assert [v.verdict for v in slow_verdicts] == [Verdict.MEETS, Verdict.BELOW]
    assert (rec.candidate, rec.kind) == ("small", EvalKind.ICL)
    costly = run_with({"small": [fast]}, targets={"cost_per_1k": "<= 0.01"})
    assert assess_run(costly)[1].candidate is None


def test_a_target_on_an_unmeasured_metric_is_inconclusive() -> None:
    run = run_with({"small": [tool_eval(EvalKind.BASE, 40, 40)]}, targets={"rouge_l": 0.5})
    assessment, rec = assess_run(run)
    verdict = assessment.evals[0].verdicts[0]
    assert verdict.verdict is Verdict.INCONCLUSIVE and verdict.note == "not measured"
    assert rec.candidate is None


def test_results_without_per_record_scores_use_wilson_for_proportions() -> None:
    """E.g. NeMo Evaluator: metrics and n only."""
    nemo_like = EvalResult(
        kind=EvalKind.BASE,
        status=StepStatus.COMPLETED,
        metrics={"function_name_and_args_accuracy": 0.99, "rouge_l": 0.9},
        n_total=400,
        n_scored=400,
    )
    run = run_with({"small": [nemo_like]}, targets={"function_name_and_args_accuracy": 0.95})
    assessment, rec = assess_run(run)
    assert assessment.evals[0].interval is not None
    assert assessment.evals[0].interval.method == "wilson"
    assert rec.candidate == "small"
    judged_text = run_with({"small": [nemo_like]}, targets={"rouge_l": 0.5})
    verdict = assess_run(judged_text)[0].evals[0].verdicts[0]
    assert verdict.verdict is Verdict.INCONCLUSIVE
    assert "no confidence interval" in (verdict.note or "")


def test_the_previous_run_says_whether_the_recommendation_changed() -> None:
    before = finished_run(run_id="before")
    same = finished_run(run_id="same", started=STARTED + timedelta(days=1))
    _, rec = assess_run(same, usage=USAGE, previous=before)
    assert rec.previous_run_id == "before"
    assert (rec.previous_candidate, rec.previous_kind) == ("small", EvalKind.BASE)
    assert not rec.changed
    changed = finished_run(run_id="changed", small_args_right=10)
    _, rec = assess_run(changed, previous=before)
    assert rec.candidate == "tiny" and rec.changed


def test_a_previous_run_without_a_stored_recommendation_is_assessed_now() -> None:
    old = finished_run(run_id="old", assess=False)
    assert old.recommendation is None
    _, rec = assess_run(finished_run(run_id="new"), previous=old)
    assert rec.previous_candidate == "small" and not rec.changed


def test_regression_of_the_previously_recommended_candidate() -> None:
    before = Recommendation(
        candidate="small", kind=EvalKind.BASE, score=1.0, metric="m", reason="r"
    )
    same, _ = assess_run(finished_run())
    assert regression(before, same) is None
    dropped, _ = assess_run(finished_run(small_args_right=30))
    assert "fell from 1.000 to 0.750" in (regression(before, dropped) or "")
    below, _ = assess_run(finished_run(small_args_right=20))
    assert "is now below target" in (regression(before, below) or "")
    gone, _ = assess_run(run_with({"tiny": [tool_eval(EvalKind.BASE, 40, 40)]}))
    assert "was not evaluated successfully" in (regression(before, gone) or "")
    assert regression(None, same) is None
    assert regression(Recommendation(reason="none"), same) is None


def test_assessment_of_prefers_what_is_stored() -> None:
    run = finished_run()
    stored = assessment_of(run)
    assert stored == (run.assessment, run.recommendation)
    fresh = finished_run(assess=False)
    assessment, rec = assessment_of(fresh)
    assert rec.candidate == "small" and assessment.production is None


def test_workload_type_from_datasets_or_metrics() -> None:
    assert workload_type_of(finished_run()) is WorkloadType.TOOL_CALLING
    bare = run_with({"small": [tool_eval(EvalKind.BASE, 4, 4, n=4)]})
    assert workload_type_of(bare) is WorkloadType.TOOL_CALLING
    generic = run_with(
        {
            "small": [
                EvalResult(
                    kind=EvalKind.BASE, status=StepStatus.COMPLETED, metrics={"rouge_l": 0.5}
                )
            ]
        }
    )
    assert workload_type_of(generic) is WorkloadType.GENERIC
    assert assess_run(generic)[0].evals[0].metric == "rouge_l"
