"""How sure a score is: confidence intervals of a mean score and verdicts against targets.

Every evaluation score is a mean over eval records, and eval sets are small (20 records by
default), so a score of 0.95 may well come from a model whose true rate is 0.85. Each score
therefore carries a confidence interval, and a candidate is compared with an acceptance target
by its interval, not by the point value:

* **bootstrap** (the default): resample the per-record scores with replacement ``resamples``
  times, take the mean of each resample, and report the ``(1-level)/2`` and ``(1+level)/2``
  quantiles of those means (the percentile interval). For 0/1 scores the mean of a resample is
  ``Binomial(n, p)/n``, which is drawn directly: the same distribution, with no n × resamples
  matrix. Seeded, so the same scores always give the same interval.
* **wilson**: the bootstrap of n identical values has zero width (a model that got 20 of 20
  right is not certainly perfect), so an all-0 or all-1 binary score gets the Wilson score
  interval instead; it is also what an evaluation without per-record scores (NeMo Evaluator)
  gets for a proportion metric, from its mean and n alone.

A verdict is ``meets`` when the whole interval is on the good side of the target, ``below``
when it is wholly on the bad side, ``inconclusive`` when it straddles the target or the metric
was not measured. Pure functions: numpy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from statistics import NormalDist

import numpy as np

from flywheel.config import AcceptanceTarget
from flywheel.schemas import ScoreInterval, TargetVerdict, Verdict
from flywheel.scoring.metrics import FUNCTION_NAME_ACCURACY, FUNCTION_NAME_AND_ARGS_ACCURACY
from flywheel.scoring.tool_metrics import TOOL_LABEL_ACCURACY

__all__ = [
    "BINARY_METRICS",
    "DEFAULT_LEVEL",
    "DEFAULT_RESAMPLES",
    "bootstrap_interval",
    "interval_from_summary",
    "judge",
    "mean_interval",
    "metric_intervals",
    "wilson_interval",
]

DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 2000
MAX_MATRIX_CELLS = 2_000_000
"""Resampled indices drawn at a time (bounds memory: 16 MB of int64)."""

BINARY_METRICS = frozenset(
    {FUNCTION_NAME_ACCURACY, FUNCTION_NAME_AND_ARGS_ACCURACY, TOOL_LABEL_ACCURACY}
)
"""Metrics that are the share of records scored 1 (the rest 0) over every scored record: their
interval can be computed from the mean and n alone (Wilson) when per-record scores are absent."""


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    return NormalDist().inv_cdf((1 + level) / 2)


def wilson_interval(proportion: float, n: int, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a proportion observed over ``n`` trials.

    Unlike the normal approximation it stays inside [0, 1] and has a non-zero width at 0 and 1
    (20 of 20 gives about [0.84, 1.0] at 95%).
    """
    if n <= 0:
        raise ValueError("a Wilson interval needs at least one trial")
    if not 0.0 <= proportion <= 1.0:
        raise ValueError(f"a proportion must be in [0, 1], got {proportion}")
    z = _z(level)
    z2 = z * z
    centre = (proportion + z2 / (2 * n)) / (1 + z2 / n)
    half = (z / (1 + z2 / n)) * math.sqrt(proportion * (1 - proportion) / n + z2 / (4 * n * n))
    low = 0.0 if proportion == 0.0 else max(0.0, centre - half)
    high = 1.0 if proportion == 1.0 else min(1.0, centre + half)
    return low, high


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``values`` (at least one value).

    Vectorised: resample means are computed a block of resamples at a time; 0/1 values are
    resampled through the binomial distribution (exactly the bootstrap distribution of their
    mean). Deterministic for a given ``seed``.
    """
    data = np.asarray(values, dtype=np.float64)
    n = data.size
    if n == 0:
        raise ValueError("a bootstrap interval needs at least one value")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    _z(level)  # validates the level
    rng = np.random.default_rng(seed)
    if _is_binary(data):
        means = rng.binomial(n, float(data.mean()), size=resamples) / n
    else:
        means = np.empty(resamples, dtype=np.float64)
        block = max(1, MAX_MATRIX_CELLS // n)
        for start in range(0, resamples, block):
            stop = min(resamples, start + block)
            indices = rng.integers(0, n, size=(stop - start, n))
            means[start:stop] = data[indices].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def mean_interval(
    values: Iterable[float],
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> ScoreInterval | None:
    """The confidence interval of the mean of per-record scores (None for no values).

    Bootstrap, except for binary scores that are all 0 or all 1, where the bootstrap
    degenerates to a point and the Wilson interval is used.
    """
    data = np.asarray([float(v) for v in values], dtype=np.float64)
    n = int(data.size)
    if n == 0:
        return None
    if _is_binary(data) and data.min() == data.max():
        low, high = wilson_interval(float(data[0]), n, level)
        return ScoreInterval(low=low, high=high, n=n, level=level, method="wilson")
    low, high = bootstrap_interval(data, level=level, resamples=resamples, seed=seed)
    return ScoreInterval(low=low, high=high, n=n, level=level, method="bootstrap")


def metric_intervals(
    rows: Iterable[Mapping[str, float | None]],
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, ScoreInterval]:
    """An interval per metric over the rows that have it (None counts as absent), the same
    columns as :func:`~flywheel.scoring.metrics.aggregate_scores` averages."""
    columns: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row.items():
            if value is not None:
                columns.setdefault(name, []).append(float(value))
    intervals: dict[str, ScoreInterval] = {}
    for name, values in columns.items():
        interval = mean_interval(values, level=level, resamples=resamples, seed=seed)
        if interval is not None:
            intervals[name] = interval
    return intervals


def interval_from_summary(
    metric: str, value: float | None, n: int, level: float = DEFAULT_LEVEL
) -> ScoreInterval | None:
    """An interval for a score known only by its mean and n: Wilson for the proportion
    metrics in :data:`BINARY_METRICS`; None otherwise (it cannot be known without the rows)."""
    if metric not in BINARY_METRICS or value is None or n <= 0 or not 0.0 <= value <= 1.0:
        return None
    low, high = wilson_interval(value, n, level)
    return ScoreInterval(low=low, high=high, n=n, level=level, method="wilson")


def judge(
    target: AcceptanceTarget,
    value: float | None,
    interval: ScoreInterval | None = None,
    *,
    exact: bool = False,
    n: int | None = None,
) -> TargetVerdict:
    """The verdict of one score against one target.

    With an interval: ``meets`` when it lies wholly on the good side of the target (bounds on
    the target count as meeting it), ``below`` when wholly on the bad side, else
    ``inconclusive``. Without one, an ``exact`` measurement (latency, failure rate, cost) is
    compared by its value; any other score is ``inconclusive``: its uncertainty is unknown.
    """
    base = {
        "metric": target.metric,
        "op": target.op,
        "target": target.value,
        "value": value,
        "n": interval.n if interval is not None else n,
    }
    if value is None:
        return TargetVerdict(**base, verdict=Verdict.INCONCLUSIVE, note="not measured")
    if interval is None:
        if not exact:
            return TargetVerdict(
                **base,
                verdict=Verdict.INCONCLUSIVE,
                note="no confidence interval (no per-record scores)",
            )
        good = value >= target.value if target.op == ">=" else value <= target.value
        return TargetVerdict(**base, verdict=Verdict.MEETS if good else Verdict.BELOW)
    low, high = interval.low, interval.high
    if target.op == ">=":
        verdict = (
            Verdict.MEETS
            if low >= target.value
            else Verdict.BELOW
            if high < target.value
            else Verdict.INCONCLUSIVE
        )
    else:
        verdict = (
            Verdict.MEETS
            if high <= target.value
            else Verdict.BELOW
            if low > target.value
            else Verdict.INCONCLUSIVE
        )
    note = "the interval straddles the target" if verdict is Verdict.INCONCLUSIVE else None
    return TargetVerdict(**base, low=low, high=high, verdict=verdict, note=note)


def _is_binary(data: np.ndarray) -> bool:
    return bool(np.all((data == 0.0) | (data == 1.0)))
