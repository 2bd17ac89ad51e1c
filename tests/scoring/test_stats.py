"""Mean and numpy-compatible linear percentiles against hand-computed values."""

from __future__ import annotations

import itertools
import math

import pytest

from flywheel.scoring.stats import mean, percentile

ONE_TO_TEN = [float(i) for i in range(1, 11)]


class TestMean:
    def test_known_values(self) -> None:
        assert mean([1, 2, 3, 4]) == 2.5
        assert mean([5]) == 5.0
        assert mean([-1.0, 1.0]) == 0.0

    def test_empty_is_none(self) -> None:
        assert mean([]) is None
        assert mean(iter(())) is None

    def test_accepts_a_generator(self) -> None:
        assert mean(x * 2 for x in (1, 2, 3)) == 4.0

    def test_exact_summation(self) -> None:
        assert mean([0.1] * 10) == 0.1
        assert mean([1e16, 1.0, -1e16]) == pytest.approx(1 / 3)


class TestPercentile:
    @pytest.mark.parametrize(
        ("q", "expected"),
        [
            (0, 1.0),
            (25, 3.25),  # rank 2.25 → 3 + 0.25
            (50, 5.5),  # rank 4.5 → between 5 and 6
            (90, 9.1),  # rank 8.1
            (95, 9.55),  # rank 8.55
            (100, 10.0),
        ],
    )
    def test_one_to_ten(self, q: float, expected: float) -> None:
        assert percentile(ONE_TO_TEN, q) == pytest.approx(expected)

    def test_unsorted_input(self) -> None:
        assert percentile([10, 1, 7, 3, 9, 2, 8, 4, 6, 5], 95) == pytest.approx(9.55)

    def test_two_values(self) -> None:
        assert percentile([20.0, 10.0], 50) == 15.0
        assert percentile([10.0, 20.0], 95) == pytest.approx(19.5)

    def test_p99_of_one_to_hundred(self) -> None:
        assert percentile(range(1, 101), 99) == pytest.approx(99.01)

    def test_exact_rank_returns_the_value(self) -> None:
        assert percentile([1, 2, 3], 50) == 2.0
        assert isinstance(percentile([1, 2, 3], 50), float)

    def test_single_value(self) -> None:
        for q in (0, 37.5, 50, 95, 100):
            assert percentile([0.42], q) == 0.42

    def test_repeated_values(self) -> None:
        assert percentile([2, 2, 2, 2], 95) == 2.0

    def test_empty_is_none(self) -> None:
        assert percentile([], 50) is None

    def test_generator_input(self) -> None:
        assert percentile((x for x in ONE_TO_TEN), 50) == 5.5

    @pytest.mark.parametrize("q", [-0.1, 100.5, math.nan])
    def test_q_out_of_range(self, q: float) -> None:
        with pytest.raises(ValueError, match="between 0 and 100"):
            percentile(ONE_TO_TEN, q)

    def test_monotonic_in_q(self) -> None:
        values = [0.3, 1.7, 0.9, 4.2, 2.2, 0.1]
        results = [percentile(values, q) for q in range(0, 101)]
        assert results[0] == 0.1
        assert results[-1] == 4.2
        assert all(a <= b for a, b in itertools.pairwise(results))  # type: ignore[operator]
