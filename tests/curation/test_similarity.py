"""Semantic-similarity ICL selection: query text, exact cosine top-k, relevance-coverage (§4.3)."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.curation.similarity import (
    query_text,
    relevance_coverage,
    select_semantic,
    top_k_cosine,
)
from tests.curation.builders import make_record


def unit(*angles_deg: float) -> np.ndarray:
    """2-D unit vectors at the given angles: cosine with [1, 0] is cos(angle)."""
    radians = np.radians(angles_deg)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


def brute_top_k(queries: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: full cosine matrix, stable sort by descending score (ties: lower index)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    p = pool / np.linalg.norm(pool, axis=1, keepdims=True)
    scores = q @ p.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


# --- query_text ---------------------------------------------------------------------------------


def test_query_text_is_the_last_user_message() -> None:
    record = make_record(
        messages=[
            {"role": "system", "content": "S"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": "follow-up question"},
            {"role": "tool", "content": "tool output"},
        ]
    )
    assert query_text(record) == "follow-up question"


def test_query_text_joins_text_parts_and_skips_others() -> None:
    content = [
        {"type": "text", "text": "what is in"},
        {"type": "image_url", "image_url": {"url": "data:..."}},
        {"type": "text", "text": "this picture?"},
    ]
    record = make_record(messages=[{"role": "user", "content": content}])
    assert query_text(record) == "what is in\nthis picture?"


@pytest.mark.parametrize(
    "record",
    [
        make_record(messages=[{"role": "system", "content": "only a system prompt"}]),
        make_record(messages=[]),
        make_record(messages=[{"role": "user", "content": None}]),
        make_record(messages=[{"role": "user", "content": "   "}]),
        make_record(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
        {"request": {"messages": "not a list"}},
        {"request": None},
        {},
    ],
)
def test_query_text_is_none_without_user_text(record: dict) -> None:
    assert query_text(record) is None


def test_query_text_uses_the_last_user_message_even_when_it_is_empty() -> None:
    record = make_record(
        messages=[{"role": "user", "content": "earlier"}, {"role": "user", "content": ""}]
    )
    assert query_text(record) is None


# --- top_k_cosine -------------------------------------------------------------------------------


def test_top_k_cosine_orders_by_score() -> None:
    pool = unit(90, 10, 45, 0, 170)
    indices, scores = top_k_cosine(unit(0), pool, 3)
    assert indices.tolist() == [[3, 1, 2]]
    np.testing.assert_allclose(scores[0], np.cos(np.radians([0, 10, 45])), rtol=1e-6)
    assert indices.dtype == np.int64
    assert scores.dtype == np.float32


def test_top_k_cosine_ignores_vector_length() -> None:
    pool = unit(30, 0, 60) * np.array([[100.0], [0.01], [7.0]], dtype=np.float32)
    indices, scores = top_k_cosine(unit(0) * 5, pool, 3)
    assert indices.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(scores[0], np.cos(np.radians([0, 30, 60])), rtol=1e-6)


def test_top_k_cosine_clips_k_to_the_pool() -> None:
    indices, scores = top_k_cosine(unit(0, 90), unit(80, 0), 10)
    assert indices.shape == scores.shape == (2, 2)
    assert indices.tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize("k", [0, -3])
def test_top_k_cosine_with_no_k(k: int) -> None:
    indices, scores = top_k_cosine(unit(0), unit(0, 90), k)
    assert indices.shape == scores.shape == (1, 0)


def test_top_k_cosine_with_empty_inputs() -> None:
    indices, _ = top_k_cosine(np.zeros((0, 4), np.float32), np.ones((3, 4), np.float32), 2)
    assert indices.shape == (0, 2)
    indices, _ = top_k_cosine(np.ones((2, 4), np.float32), np.zeros((0, 4), np.float32), 2)
    assert indices.shape == (2, 0)


def test_top_k_cosine_breaks_ties_by_lower_index() -> None:
    pool = np.array([[0, 1], [1, 0], [2, 0], [1, 0], [0, 3], [5, 0]], dtype=np.float32)
    indices, scores = top_k_cosine(unit(0), pool, 3)
    assert indices.tolist() == [[1, 2, 3]]  # four rows score 1.0: the lowest indices win
    np.testing.assert_allclose(scores[0], [1, 1, 1])
    indices, _ = top_k_cosine(unit(0), pool, 5)
    assert indices.tolist() == [[1, 2, 3, 5, 0]]


def test_top_k_cosine_ties_with_many_equal_rows() -> None:
    """Many duplicates (repeated user questions) straddle the cut: the lowest indices win."""
    rng = np.random.default_rng(7)
    pool = rng.standard_normal((500, 16)).astype(np.float32)
    query = rng.standard_normal((1, 16)).astype(np.float32)
    duplicate_rows = rng.choice(500, size=60, replace=False)
    pool[duplicate_rows] = query[0] * 2  # all score exactly 1.0 against the query
    indices, scores = top_k_cosine(query, pool, 25)
    assert indices[0].tolist() == sorted(duplicate_rows.tolist())[:25]
    np.testing.assert_allclose(scores[0], 1.0, rtol=1e-6)


def test_top_k_cosine_zero_and_non_finite_rows_score_zero() -> None:
    pool = np.array([[0, 0], [-1, 0], [np.nan, 1], [1, 1], [np.inf, 0]], dtype=np.float32)
    indices, scores = top_k_cosine(unit(0), pool, 5)
    assert indices.tolist() == [[3, 0, 2, 4, 1]]
    np.testing.assert_allclose(scores[0], [np.sqrt(0.5), 0, 0, 0, -1], atol=1e-6)
    indices, scores = top_k_cosine(np.zeros((1, 2), np.float32), pool, 2)
    assert indices.tolist() == [[0, 1]]
    assert scores.tolist() == [[0, 0]]
    assert np.isfinite(pool[[1, 3]]).all(), "the caller's array is not modified"
    assert np.isnan(pool[2, 0])


def test_top_k_cosine_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((37, 24)).astype(np.float32)
    pool = rng.standard_normal((401, 24)).astype(np.float32)
    indices, scores = top_k_cosine(queries, pool, 15)
    expected_indices, expected_scores = brute_top_k(queries, pool, 15)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 36, 37, 1000])
def test_top_k_cosine_chunking_gives_the_same_result(chunk_size: int) -> None:
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((37, 8)).astype(np.float32)
    pool = np.round(rng.standard_normal((300, 8)), 1).astype(np.float32)
    pool[::7] = pool[3]  # plenty of ties
    whole = top_k_cosine(queries, pool, 20, query_chunk=10_000)
    chunked = top_k_cosine(queries, pool, 20, query_chunk=chunk_size)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])


def test_top_k_cosine_default_chunks_bound_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    import flywheel.curation.similarity as similarity

    rng = np.random.default_rng(2)
    queries = rng.standard_normal((50, 8)).astype(np.float32)
    pool = rng.standard_normal((100, 8)).astype(np.float32)
    expected = top_k_cosine(queries, pool, 5)
    seen: list[tuple[int, ...]] = []
    original = similarity._top_k_rows

    def spy(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        seen.append(block.shape)
        return original(block, k)

    monkeypatch.setattr(similarity, "BLOCK_ELEMENTS", 1000)
    monkeypatch.setattr(similarity, "_top_k_rows", spy)
    result = top_k_cosine(queries, pool, 5)
    assert seen == [(10, 100)] * 5  # 1000 // 100 queries per block
    np.testing.assert_array_equal(result[0], expected[0])


def test_top_k_cosine_scores_are_float32_whatever_the_input() -> None:
    _, scores = top_k_cosine(unit(0).astype(np.float64), unit(0, 1).astype(np.float64), 2)
    assert scores.dtype == np.float32


@pytest.mark.parametrize(("query_chunk", "pool_chunk"), [(None, 1), (3, 16), (5, 19), (1, 300)])
def test_top_k_cosine_pool_tiles_merge_exactly(query_chunk: int | None, pool_chunk: int) -> None:
    rng = np.random.default_rng(6)
    queries = rng.standard_normal((11, 8)).astype(np.float32)
    pool = np.round(rng.standard_normal((120, 8)), 1).astype(np.float32)
    pool[5::9] = pool[50]  # duplicates spread over many tiles
    queries[0] = pool[50]
    whole = top_k_cosine(queries, pool, 25)
    tiled = top_k_cosine(queries, pool, 25, query_chunk=query_chunk, pool_chunk=pool_chunk)
    np.testing.assert_array_equal(tiled[0], whole[0])
    np.testing.assert_array_equal(tiled[1], whole[1])
    assert tiled[0][0, :13].tolist() == list(range(5, 120, 9))  # the 13 exact matches, in order
    assert (tiled[1][0, :13] == tiled[1][0, 0]).all()


def test_top_k_cosine_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    queries = rng.standard_normal((20, 32)).astype(np.float32)
    pool = np.repeat(rng.standard_normal((50, 32)).astype(np.float32), 4, axis=0)
    first = top_k_cosine(queries, pool, 30)
    for _ in range(3):
        again = top_k_cosine(queries, pool, 30)
        np.testing.assert_array_equal(again[0], first[0])


@pytest.mark.parametrize(
    ("queries", "pool", "message"),
    [
        (np.ones(4), np.ones((3, 4)), "2-D"),
        (np.ones((2, 4)), np.ones((3, 5)), "4 dimensions but pool vectors have 5"),
    ],
)
def test_top_k_cosine_rejects_bad_shapes(queries: np.ndarray, pool: np.ndarray, message: str):
    with pytest.raises(ValueError, match=message):
        top_k_cosine(queries, pool, 2)


@pytest.mark.parametrize("name", ["query_chunk", "pool_chunk"])
def test_top_k_cosine_rejects_a_bad_chunk_size(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be at least 1"):
        top_k_cosine(unit(0), unit(0), 1, **{name: 0})


# --- relevance_coverage -------------------------------------------------------------------------

LABELS = ["a", "a", "b", "a", "c", "b", "c", "a"]
"""Tool of pool rows 0..7."""


def test_ratio_one_is_pure_relevance() -> None:
    ranked = [0, 1, 3, 2, 4]
    assert relevance_coverage(ranked, LABELS, max_examples=3, relevance_ratio=1.0) == [0, 1, 3]


def test_defaults_take_two_for_relevance_and_one_for_coverage() -> None:
    # int(3 * 0.7) = 2 relevant (both "a"), then the best of an uncovered tool: 2 ("b").
    ranked = [0, 1, 3, 2, 4]
    assert relevance_coverage(ranked, LABELS, max_examples=3, relevance_ratio=0.7) == [0, 1, 2]


def test_ratio_half_covers_both_tools() -> None:
    labels = ["t1", "t1", "t1", "t1", "t2", "t2"]
    ranked = [0, 1, 2, 3, 4, 5]
    chosen = relevance_coverage(ranked, labels, max_examples=2, relevance_ratio=0.5)
    assert chosen == [0, 4]
    assert {labels[i] for i in chosen} == {"t1", "t2"}


def test_pass_a_takes_one_per_uncovered_tool_in_score_order() -> None:
    # 1 relevant ("a"); coverage 3: pass A takes the best "b" (2) and best "c" (4), then pass B
    # fills the last slot with the best unused candidate (1, an "a").
    ranked = [0, 1, 2, 3, 5, 4, 6]
    chosen = relevance_coverage(ranked, LABELS, max_examples=4, relevance_ratio=0.25)
    assert chosen == [0, 1, 2, 4]  # grouped by tool: a (0, 1), b (2), c (4)


def test_pass_a_stops_when_the_coverage_slots_are_full() -> None:
    # relevance 1 ("a"), coverage 1: only the best uncovered tool ("c", ranked before "b").
    ranked = [0, 4, 2, 1]
    assert relevance_coverage(ranked, LABELS, max_examples=2, relevance_ratio=0.5) == [0, 4]


def test_nothing_uncovered_takes_the_next_candidates() -> None:
    ranked = [0, 2, 1, 5, 3]  # a, b, a, b, a: the remaining tools are all covered already
    chosen = relevance_coverage(ranked, LABELS, max_examples=4, relevance_ratio=0.5)
    assert chosen == [0, 1, 2, 5]  # took 0, 2 (relevance) then 1, 5 (next), grouped by tool


def test_result_is_grouped_by_tool_in_insertion_order() -> None:
    ranked = [2, 0, 5, 3, 4]  # b, a, b, a, c
    chosen = relevance_coverage(ranked, LABELS, max_examples=5, relevance_ratio=1.0)
    assert chosen == [2, 5, 0, 3, 4]
    assert [LABELS[i] for i in chosen] == ["b", "b", "a", "a", "c"]


def test_ratio_zero_is_all_coverage() -> None:
    ranked = [0, 1, 3, 2, 6, 5]  # a, a, a, b, c, b
    chosen = relevance_coverage(ranked, LABELS, max_examples=4, relevance_ratio=0.0)
    assert chosen == [0, 1, 2, 6]  # pass A: a, b, c; pass B: the next best (1, an "a")


def test_fewer_candidates_than_slots() -> None:
    assert relevance_coverage([3, 2], LABELS, max_examples=3, relevance_ratio=0.7) == [3, 2]
    assert relevance_coverage([3], LABELS, max_examples=3, relevance_ratio=0.0) == [3]
    assert relevance_coverage([], LABELS, max_examples=3, relevance_ratio=0.7) == []


def test_relevance_size_truncates() -> None:
    # int(3 * 0.5) = 1 relevant, 2 coverage: pass A takes the only "y", pass B the next "x".
    labels = ["x"] * 7 + ["y"]
    chosen = relevance_coverage(range(8), labels, max_examples=3, relevance_ratio=0.5)
    assert chosen == [0, 1, 7]
    # int(3 * 0.9) = 2 relevant: even a 0.9 ratio leaves one coverage slot for "y".
    chosen = relevance_coverage(range(8), labels, max_examples=3, relevance_ratio=0.9)
    assert chosen == [0, 1, 7]
    # int(10 * 0.7) = 7 (0.7 * 10 is 7.000000000000001), so 3 coverage slots.
    many = ["x"] * 9 + ["y", "z", "w"]
    chosen = relevance_coverage(range(12), many, max_examples=10, relevance_ratio=0.7)
    assert chosen == [0, 1, 2, 3, 4, 5, 6, 9, 10, 11]


def test_no_examples_and_repeated_candidates() -> None:
    assert relevance_coverage([0, 1], LABELS, max_examples=0, relevance_ratio=0.7) == []
    assert relevance_coverage([0, 0, 1, 1], LABELS, max_examples=3, relevance_ratio=1.0) == [0, 1]


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_relevance_ratio_out_of_range(ratio: float) -> None:
    with pytest.raises(ValueError, match="relevance_ratio"):
        relevance_coverage([0], LABELS, max_examples=1, relevance_ratio=ratio)


# --- select_semantic ----------------------------------------------------------------------------


def test_generic_takes_the_nearest_in_score_order() -> None:
    pool = unit(50, 5, 30, 90, 10)
    selections = select_semantic(
        unit(0, 90),
        pool,
        ["generic"] * 5,
        max_examples=3,
        relevance_ratio=0.7,
        tool_calling=False,
    )
    assert selections == [[1, 4, 2], [3, 0, 2]]


def test_tool_calling_searches_five_per_slot_then_covers() -> None:
    # Query at 0°: the 5 nearest are all "near" tools; the only "far" tool is 6th nearest, so
    # with max_examples 1 (K = 5) it is out of reach, with 2 (K = 10) it is covered.
    angles = [1, 2, 3, 4, 5, 60, 70, 80]
    labels = ["near"] * 5 + ["far"] + ["near"] * 2
    pool = unit(*angles)
    one = select_semantic(
        unit(0), pool, labels, max_examples=1, relevance_ratio=0.0, tool_calling=True
    )
    assert one == [[0]]
    two = select_semantic(
        unit(0), pool, labels, max_examples=2, relevance_ratio=0.5, tool_calling=True
    )
    assert two == [[0, 5]]


def test_tool_calling_pure_relevance() -> None:
    pool = unit(1, 50, 2, 3)
    labels = ["a", "b", "a", "a"]
    selections = select_semantic(
        unit(0), pool, labels, max_examples=3, relevance_ratio=1.0, tool_calling=True
    )
    assert selections == [[0, 2, 3]]


def test_queries_without_text_get_nothing_and_bad_pool_rows_are_never_chosen() -> None:
    queries = np.array([[1, 0], [0, 0], [np.nan, 1], [0, 1]], dtype=np.float32)
    pool = np.array([[0, 0], [1, 0.1], [np.nan, 0], [0.1, 1]], dtype=np.float32)
    selections = select_semantic(
        queries, pool, ["a"] * 4, max_examples=5, relevance_ratio=0.7, tool_calling=False
    )
    assert selections == [[1, 3], [], [], [3, 1]]


def test_select_semantic_edge_cases() -> None:
    args = {"relevance_ratio": 0.7, "tool_calling": True}
    assert select_semantic(unit(0), unit(0), ["a"], max_examples=0, **args) == [[]]
    empty_pool = np.zeros((0, 2), np.float32)
    assert select_semantic(unit(0, 9), empty_pool, [], max_examples=3, **args) == [[], []]
    assert select_semantic(np.zeros((0, 2)), unit(0), ["a"], max_examples=3, **args) == []
    with pytest.raises(ValueError, match="2 labels for 1 pool vectors"):
        select_semantic(unit(0), unit(0), ["a", "b"], max_examples=3, **args)


def test_select_semantic_chunking_and_determinism() -> None:
    rng = np.random.default_rng(4)
    queries = rng.standard_normal((30, 16)).astype(np.float32)
    pool = np.repeat(rng.standard_normal((40, 16)).astype(np.float32), 3, axis=0)
    labels = [f"tool{i % 4}" for i in range(len(pool))]
    args = {"max_examples": 3, "relevance_ratio": 0.7, "tool_calling": True}
    whole = select_semantic(queries, pool, labels, **args)
    assert all(len(chosen) == 3 for chosen in whole)
    assert select_semantic(queries, pool, labels, query_chunk=4, pool_chunk=7, **args) == whole
    assert select_semantic(queries, pool, labels, **args) == whole


def test_select_semantic_matches_brute_force_generic() -> None:
    rng = np.random.default_rng(5)
    queries = rng.standard_normal((25, 12)).astype(np.float32)
    pool = rng.standard_normal((90, 12)).astype(np.float32)
    selections = select_semantic(
        queries, pool, ["g"] * 90, max_examples=4, relevance_ratio=0.7, tool_calling=False
    )
    expected, _ = brute_top_k(queries, pool, 4)
    assert selections == expected.tolist()
