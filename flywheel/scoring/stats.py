"""Summary statistics for evaluation results (latency percentiles, mean scores), numpy-free."""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["mean", "percentile"]


def mean(values: Iterable[float]) -> float | None:
    """Arithmetic mean (exactly rounded sum via ``math.fsum``); None when there are no values."""
    items = list(values)
    if not items:
        return None
    return math.fsum(items) / len(items)


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100), interpolating linearly between the closest ranks.

    Same as numpy's default (``method="linear"``): the value at rank ``(n-1)·q/100`` of the
    sorted values. None when there are no values; ``ValueError`` when ``q`` is outside [0, 100].
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    if fraction == 0:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * fraction
