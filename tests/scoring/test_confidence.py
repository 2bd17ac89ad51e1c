"""Confidence intervals of mean scores and verdicts against acceptance targets."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.config import AcceptanceTarget
from flywheel.schemas import ScoreInterval, Verdict
from flywheel.scoring.confidence import (
    bootstrap_interval,
    interval_from_summary,
    judge,
    mean_interval,
    metric_intervals,
    wilson_interval,
)

AT_LEAST = AcceptanceTarget(metric="function_name_and_args_accuracy", op=">=", value=0.9)
AT_MOST = AcceptanceTarget(metric="latency_p95_s", op="<=", value=2.0)


# --- Wilson -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proportion", "n", "low", "high"),
    [
        (1.0, 20, 0.8389, 1.0),  # 20 of 20 is not "certainly perfect"
        (0.0, 20, 0.0, 0.1611),
        (0.5, 20, 0.2993, 0.7007),
        (0.9, 100, 0.8256, 0.9448),
    ],
)
def test_wilson_known_values(proportion: float, n: int, low: float, high: float) -> None:
    got = wilson_interval(proportion, n)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_wilson_is_narrower_at_a_lower_level_and_with_more_trials() -> None:
    wide = wilson_interval(0.8, 50, 0.99)
    normal = wilson_interval(0.8, 50, 0.95)
    more = wilson_interval(0.8, 500, 0.95)
    assert wide[0] < normal[0] < more[0] < 0.8 < more[1] < normal[1] < wide[1]


@pytest.mark.parametrize(
    ("proportion", "n", "level"), [(0.5, 0, 0.95), (1.5, 10, 0.95), (0.5, 10, 1.0), (0.5, 10, 0)]
)
def test_wilson_rejects_nonsense(proportion: float, n: int, level: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval(proportion, n, level)


# --- bootstrap ----------------------------------------------------------------------------------


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    values = [0.1, 0.4, 0.45, 0.8, 0.95, 0.3, 0.6]
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    assert bootstrap_interval(values, seed=3) != bootstrap_interval(values, seed=4)


def test_bootstrap_of_binary_scores_matches_resampling_records() -> None:
    """The binomial shortcut draws from the same distribution as resampling the records."""
    values = np.array([1.0] * 33 + [0.0] * 7)
    fast = bootstrap_interval(values, resamples=20_000, seed=1)
    rng = np.random.default_rng(2)
    means = values[rng.integers(0, values.size, size=(20_000, values.size))].mean(axis=1)
    slow = tuple(np.quantile(means, [0.025, 0.975]))
    assert fast == pytest.approx(slow, abs=0.026)  # one record is 0.025


def test_bootstrap_of_continuous_scores_brackets_the_mean_and_narrows_with_n() -> None:
    rng = np.random.default_rng(0)
    small = rng.random(30)
    large = rng.random(3000)
    low, high = bootstrap_interval(small)
    assert low < small.mean() < high
    big_low, big_high = bootstrap_interval(large)
    assert big_high - big_low < (high - low) / 5


def test_bootstrap_covers_the_true_rate_about_95_percent_of_the_time() -> None:
    """Coverage over many simulated evaluations of a model with a known true rate."""
    rng = np.random.default_rng(42)
    covered = 0
    trials = 400
    for trial in range(trials):
        scores = (rng.random(60) < 0.8).astype(float)
        low, high = bootstrap_interval(scores, resamples=1000, seed=trial)
        covered += low <= 0.8 <= high
    assert 0.90 <= covered / trials <= 0.985


def test_bootstrap_is_fast_on_a_large_evaluation() -> None:
    values = np.random.default_rng(5).random(10_000)
    started = time.perf_counter()
    bootstrap_interval(values)
    assert time.perf_counter() - started < 2.0


def test_bootstrap_rejects_nothing_to_resample() -> None:
    with pytest.raises(ValueError):
        bootstrap_interval([])
    with pytest.raises(ValueError):
        bootstrap_interval([1.0], resamples=0)
    with pytest.raises(ValueError):
        bootstrap_interval([1.0, 0.0], level=1.5)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), min_size=1, max_size=60),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_intervals_are_ordered_and_within_the_data(values: list[float], seed: int) -> None:
    interval = mean_interval(values, resamples=200, seed=seed)
    assert interval is not None
    assert interval.n == len(values)
    assert interval.low <= interval.high
    if interval.method == "bootstrap":
        assert min(values) - 1e-9 <= interval.low and interval.high <= max(values) + 1e-9
    else:  # all-0 or all-1 binary: Wilson, inside [0, 1] and containing the value
        assert 0.0 <= interval.low <= values[0] <= interval.high <= 1.0


# --- mean_interval / metric_intervals -----------------------------------------------------------


def test_mean_interval_of_nothing_is_none() -> None:
    assert mean_interval([]) is None


def test_unanimous_binary_scores_get_a_wilson_interval() -> None:
    perfect = mean_interval([1.0] * 20)
    assert perfect is not None and perfect.method == "wilson"
    assert perfect.low == pytest.approx(0.8389, abs=1e-4) and perfect.high == 1.0
    hopeless = mean_interval([0, 0, 0])
    assert hopeless is not None and hopeless.method == "wilson" and hopeless.low == 0.0


def test_mixed_scores_get_a_bootstrap_interval() -> None:
    interval = mean_interval([1, 0, 1, 1], level=0.9, resamples=500)
    assert interval == ScoreInterval(
        low=interval.low, high=interval.high, n=4, level=0.9, method="bootstrap"
    )


def test_metric_intervals_per_column_skipping_absent_values() -> None:
    rows = [
        {"a": 1.0, "b": 0.5},
        {"a": 0.0, "b": None},
        {"a": 1.0},
        {"c": None},
    ]
    intervals = metric_intervals(rows, resamples=300)
    assert set(intervals) == {"a", "b"}
    assert intervals["a"].n == 3 and intervals["b"].n == 1
    assert intervals["b"].low == intervals["b"].high == 0.5


def test_interval_from_summary_only_for_proportions() -> None:
    decided = interval_from_summary("function_name_accuracy", 0.95, 200)
    assert decided is not None and decided.method == "wilson" and decided.n == 200
    assert decided.low == pytest.approx(wilson_interval(0.95, 200)[0])
    assert interval_from_summary("rouge_l", 0.5, 200) is None
    assert interval_from_summary("function_name_accuracy", None, 200) is None
    assert interval_from_summary("function_name_accuracy", 0.9, 0) is None
    assert interval_from_summary("function_name_accuracy", 1.2, 10) is None


# --- verdicts -----------------------------------------------------------------------------------


def _interval(low: float, high: float, n: int = 40) -> ScoreInterval:
    return ScoreInterval(low=low, high=high, n=n)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.92, 0.99, Verdict.MEETS),
        (0.90, 0.99, Verdict.MEETS),  # a bound on the target meets it
        (0.80, 0.89, Verdict.BELOW),
        (0.85, 0.95, Verdict.INCONCLUSIVE),
        (0.85, 0.90, Verdict.INCONCLUSIVE),
    ],
)
def test_at_least_target(low: float, high: float, expected: Verdict) -> None:
    verdict = judge(AT_LEAST, (low + high) / 2, _interval(low, high))
    assert verdict.verdict is expected
    assert (verdict.low, verdict.high, verdict.n) == (low, high, 40)
    assert (verdict.note is not None) == (expected is Verdict.INCONCLUSIVE)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(1.0, 1.9, Verdict.MEETS), (2.1, 3.0, Verdict.BELOW), (1.5, 2.5, Verdict.INCONCLUSIVE)],
)
def test_at_most_target(low: float, high: float, expected: Verdict) -> None:
    assert judge(AT_MOST, (low + high) / 2, _interval(low, high)).verdict is expected


def test_exact_measurements_are_compared_by_value() -> None:
    assert judge(AT_MOST, 1.2, exact=True, n=20).verdict is Verdict.MEETS
    assert judge(AT_MOST, 2.0, exact=True).verdict is Verdict.MEETS
    assert judge(AT_MOST, 2.01, exact=True).verdict is Verdict.BELOW
    assert judge(AT_LEAST, 0.95, exact=True).verdict is Verdict.MEETS
    assert judge(AT_MOST, 1.2, exact=True, n=20).n == 20


def test_a_score_without_interval_or_value_is_inconclusive() -> None:
    unknown = judge(AT_LEAST, 0.99)
    assert unknown.verdict is Verdict.INCONCLUSIVE and "no confidence interval" in (
        unknown.note or ""
    )
    missing = judge(AT_LEAST, None, exact=True)
    assert missing.verdict is Verdict.INCONCLUSIVE and missing.note == "not measured"
    assert "not measured" in missing.describe()


def test_verdict_describes_itself() -> None:
    verdict = judge(AT_LEAST, 0.93, _interval(0.85, 0.98))
    assert verdict.describe() == ("function_name_and_args_accuracy 0.930 [0.850, 0.980] vs ≥ 0.9")
    assert judge(AT_MOST, 1.5, exact=True).describe() == "latency_p95_s 1.500 vs ≤ 2"
