"""Request latencies (or any durations) in a few numbers: quantiles and a small histogram.

An evaluation may replay thousands of requests; its result carries their distribution as a
:class:`~flywheel.schemas.LatencySummary` of fixed size (quantiles and at most ``bins`` counts),
enough for a distribution chart, never one number per request. Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from flywheel.schemas import LatencySummary
from flywheel.scoring.stats import mean, percentile

__all__ = ["DEFAULT_BINS", "latency_summary", "output_tokens_per_second"]

DEFAULT_BINS = 20


def latency_summary(values: Iterable[float], bins: int = DEFAULT_BINS) -> LatencySummary | None:
    """Quantiles (numpy's linear method) and an equal-width histogram; None for no values."""
    data = sorted(float(v) for v in values)
    if not data:
        return None
    if bins < 1:
        raise ValueError("a histogram needs at least one bin")
    low, high = data[0], data[-1]
    if high > low:
        counts, edges = np.histogram(np.asarray(data), bins=bins, range=(low, high))
        edge_list = [float(e) for e in edges]
        count_list = [int(c) for c in counts]
    else:
        edge_list, count_list = [low, high], [len(data)]
    return LatencySummary(
        n=len(data),
        mean_s=mean(data),
        min_s=low,
        p25_s=percentile(data, 25),
        p50_s=percentile(data, 50),
        p75_s=percentile(data, 75),
        p90_s=percentile(data, 90),
        p95_s=percentile(data, 95),
        p99_s=percentile(data, 99),
        max_s=high,
        histogram_edges_s=edge_list,
        histogram_counts=count_list,
    )


def output_tokens_per_second(tokens_out: int, seconds: float) -> float | None:
    """Output tokens per second of request time; None when either is zero (nothing to say)."""
    if tokens_out <= 0 or seconds <= 0:
        return None
    return tokens_out / seconds
