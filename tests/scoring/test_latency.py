"""Latency distributions in a few numbers."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.scoring.latency import latency_summary, output_tokens_per_second


def test_summary_quantiles_match_numpy_and_the_histogram_counts_everything() -> None:
    values = list(np.random.default_rng(3).gamma(2.0, 0.2, size=997))
    summary = latency_summary(values, bins=20)
    assert summary is not None
    assert summary.n == 997
    for name, q in (("p25_s", 25), ("p50_s", 50), ("p75_s", 75), ("p95_s", 95), ("p99_s", 99)):
        assert getattr(summary, name) == pytest.approx(float(np.percentile(values, q)))
    assert summary.mean_s == pytest.approx(float(np.mean(values)))
    assert (summary.min_s, summary.max_s) == (min(values), max(values))
    assert len(summary.histogram_counts) == 20 and len(summary.histogram_edges_s) == 21
    assert sum(summary.histogram_counts) == 997
    assert summary.histogram_edges_s[0] == min(values)
    assert summary.histogram_edges_s[-1] == pytest.approx(max(values))


def test_one_distinct_value_is_one_bin() -> None:
    summary = latency_summary([0.5, 0.5, 0.5])
    assert summary is not None
    assert summary.histogram_edges_s == [0.5, 0.5] and summary.histogram_counts == [3]


def test_nothing_to_summarise() -> None:
    assert latency_summary([]) is None
    with pytest.raises(ValueError):
        latency_summary([1.0], bins=0)


def test_summary_stays_small_whatever_the_number_of_requests() -> None:
    summary = latency_summary(np.linspace(0.01, 3.0, 100_000))
    assert summary is not None
    assert len(summary.model_dump_json()) < 2000


def test_tokens_per_second() -> None:
    assert output_tokens_per_second(500, 10.0) == 50.0
    assert output_tokens_per_second(0, 10.0) is None
    assert output_tokens_per_second(10, 0.0) is None
