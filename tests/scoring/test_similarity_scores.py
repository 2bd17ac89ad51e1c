"""Row-wise cosine similarity of answer embeddings (judge-free similarity for generic workloads)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from flywheel.scoring.similarity import EMBEDDING_COSINE, embedding_cosine


def test_metric_name() -> None:
    assert EMBEDDING_COSINE == "embedding_cosine"


class TestEmbeddingCosine:
    def test_known_values(self) -> None:
        reference = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
        candidate = [[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [1.0, 0.0]]
        result = embedding_cosine(reference, candidate)
        assert result == pytest.approx([1.0, 0.0, -1.0, math.sqrt(0.5)])
        assert all(type(value) is float for value in result)

    def test_unit_and_unnormalised_rows_agree(self) -> None:
        rng = np.random.default_rng(7)
        ref, cand = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))
        unit = embedding_cosine(
            ref / np.linalg.norm(ref, axis=1, keepdims=True),
            cand / np.linalg.norm(cand, axis=1, keepdims=True),
        )
        assert embedding_cosine(ref * 40.0, cand * 0.01) == pytest.approx(unit)

    def test_matches_a_direct_computation(self) -> None:
        rng = np.random.default_rng(1)
        ref, cand = rng.normal(size=(8, 32)), rng.normal(size=(8, 32))
        norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
        direct = [float(ref[i] @ cand[i] / norms[i]) for i in range(8)]
        assert embedding_cosine(ref, cand) == pytest.approx(direct)

    def test_zero_rows_score_zero(self) -> None:
        reference = [[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]
        candidate = [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]]
        assert embedding_cosine(reference, candidate) == [0.0, 0.0, 0.0]

    def test_extreme_magnitudes(self) -> None:
        assert embedding_cosine([[1e200, 1e200]], [[1e-200, 1e-200]]) == pytest.approx([1.0])
        assert embedding_cosine([[5e-324, 0.0]], [[1.0, 0.0]]) == pytest.approx([1.0])

    def test_identical_rows_are_exactly_one_at_most(self) -> None:
        rows = np.random.default_rng(3).normal(size=(50, 7))
        result = embedding_cosine(rows, rows)
        assert all(value <= 1.0 for value in result)
        assert result == pytest.approx([1.0] * 50)

    def test_float32_and_int_input(self) -> None:
        assert embedding_cosine(np.ones((2, 3), dtype=np.float32), [[1, 1, 1], [2, 2, 2]]) == (
            pytest.approx([1.0, 1.0])
        )

    def test_empty(self) -> None:
        assert embedding_cosine([], []) == []
        assert embedding_cosine(np.zeros((0, 4)), np.zeros((0, 4))) == []

    def test_vectors_without_components(self) -> None:
        assert embedding_cosine(np.zeros((2, 0)), np.zeros((2, 0))) == [0.0, 0.0]

    @pytest.mark.parametrize(
        ("reference", "candidate"),
        [
            ([[1.0, 0.0]], [[1.0, 0.0, 0.0]]),
            ([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]),
            ([1.0, 0.0], [1.0, 0.0]),
            ([[[1.0]]], [[[1.0]]]),
            ([[float("nan"), 0.0]], [[1.0, 0.0]]),
            ([[1.0, 0.0]], [[float("inf"), 0.0]]),
            ([[1.0], [1.0, 2.0]], [[1.0], [1.0, 2.0]]),
        ],
    )
    def test_rejects_bad_shapes_and_values(self, reference: object, candidate: object) -> None:
        with pytest.raises(ValueError):
            embedding_cosine(reference, candidate)


FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@given(
    st.integers(1, 6).flatmap(
        lambda dim: st.tuples(
            arrays(np.float64, (4, dim), elements=FINITE),
            arrays(np.float64, (4, dim), elements=FINITE),
        )
    )
)
def test_bounded_and_symmetric(pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cand = pair
    forward = embedding_cosine(ref, cand)
    assert len(forward) == 4
    assert all(-1.0 <= value <= 1.0 for value in forward)
    assert forward == pytest.approx(embedding_cosine(cand, ref))


@given(arrays(np.float64, (3, 5), elements=FINITE), st.floats(1e-3, 1e3))
def test_scale_invariant(rows: np.ndarray, factor: float) -> None:
    assert embedding_cosine(rows * factor, rows) == pytest.approx(
        [1.0 if row.any() else 0.0 for row in rows]
    )
