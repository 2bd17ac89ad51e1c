"""Semantic-similarity ICL selection (blueprint-spec §4.3), exact and in memory.

The blueprint indexes the train pool into a temporary Elasticsearch kNN index and searches it
once per eval record. Here the search is an exact cosine top-k over numpy arrays, processed in
chunks of queries so memory stays bounded, then §4.3's relevance-coverage rule picks the
examples. Everything is deterministic: equal scores rank the lower pool index first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

TOOL_CALLING_CANDIDATES = 5
"""Candidates searched per example slot for tool calling (§4.3 step 4: K = max_examples * 5)."""

BLOCK_ELEMENTS = 1 << 21
"""Scores computed at once by default (~60 MB with float64 and argpartition's temporaries)."""

POOL_CHUNK = 8192
"""Pool rows per tile by default: each is converted to float64 unit rows once per query chunk."""


def query_text(record: Mapping[str, Any]) -> str | None:
    """The text of the record's LAST ``user`` message (text parts joined), or None if it has none.

    This is what gets embedded for both the train pool and the eval queries (§4.3 step 1).
    Whitespace-only text counts as none: it says nothing to search with.
    """
    request = record.get("request")
    messages = request.get("messages") if isinstance(request, Mapping) else None
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            text = _content_text(message.get("content"))
            return text if text and not text.isspace() else None
    return None


def top_k_cosine(
    queries: np.ndarray,
    pool: np.ndarray,
    k: int,
    *,
    query_chunk: int | None = None,
    pool_chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` pool rows most cosine-similar to each query: ``(indices, scores)``, best first.

    Both arrays have shape ``(len(queries), min(k, len(pool)))``; scores are float32. Equal
    scores rank the lower pool index first. A zero or non-finite row (in either array) has
    cosine 0 with everything. The work is tiled (``query_chunk`` queries by ``pool_chunk`` pool
    rows, by default about :data:`BLOCK_ELEMENTS` scores), so 1,000 x 100,000 x 384 needs tens
    of MB, not the 400 MB of a full score matrix. Scores are computed in float64 and rounded to
    float32, so BLAS rounding (which varies with the tiling) cannot reorder equal scores.
    """
    queries = np.asarray(queries)
    pool = np.asarray(pool)
    if queries.ndim != 2 or pool.ndim != 2:
        raise ValueError(
            f"queries and pool must be 2-D arrays (rows are vectors), got shapes "
            f"{queries.shape} and {pool.shape}"
        )
    if queries.shape[1] != pool.shape[1]:
        raise ValueError(
            f"query vectors have {queries.shape[1]} dimensions but pool vectors have "
            f"{pool.shape[1]}: embed both with the same model"
        )
    for name, value in (("query_chunk", query_chunk), ("pool_chunk", pool_chunk)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    n_queries, n_pool = queries.shape[0], pool.shape[0]
    k = max(0, min(int(k), n_pool))
    indices = np.empty((n_queries, k), dtype=np.int64)
    scores = np.empty((n_queries, k), dtype=np.float32)
    if k == 0 or n_queries == 0:
        return indices, scores

    pool_step = pool_chunk or min(n_pool, max(POOL_CHUNK, k))
    query_step = query_chunk or max(1, BLOCK_ELEMENTS // pool_step)
    unit_queries = _unit_rows(queries)
    for start in range(0, n_queries, query_step):
        stop = min(start + query_step, n_queries)
        indices[start:stop], scores[start:stop] = _top_k_tiles(
            unit_queries[start:stop], pool, k, pool_step
        )
    return indices, scores


def relevance_coverage(
    ranked: Sequence[int],
    labels: Sequence[str],
    *,
    max_examples: int,
    relevance_ratio: float,
) -> list[int]:
    """Pick up to ``max_examples`` of the ``ranked`` pool indices: best ones, then unseen tools.

    §4.3 step 6. ``ranked`` holds pool indices, best first; ``labels[i]`` is pool row i's tool.
    The top ``int(max_examples * relevance_ratio)`` are taken for relevance. The remaining slots
    go first to the best candidate of each tool not chosen yet (pass A), then to the best
    candidates left (pass B). The result is grouped by tool in order of first choice.
    """
    if not 0.0 <= relevance_ratio <= 1.0:
        raise ValueError(f"relevance_ratio must be between 0 and 1, got {relevance_ratio}")
    if max_examples <= 0:
        return []
    candidates = list(dict.fromkeys(int(i) for i in ranked))  # drop repeats, keep rank order
    relevance_size = int(max_examples * relevance_ratio)
    coverage_size = max_examples - relevance_size

    chosen = candidates[:relevance_size]
    remaining = candidates[relevance_size:]
    if coverage_size > 0 and remaining:
        covered = {labels[i] for i in chosen}
        taken: set[int] = set()
        for index in remaining:  # pass A: one example of each tool not chosen yet
            if len(taken) == coverage_size:
                break
            if labels[index] not in covered:
                covered.add(labels[index])
                taken.add(index)
        for index in remaining:  # pass B: fill the slots left with the best unused candidates
            if len(taken) == coverage_size:
                break
            taken.add(index)
        chosen += [index for index in remaining if index in taken]

    groups: dict[str, list[int]] = {}
    for index in chosen:
        groups.setdefault(labels[index], []).append(index)
    return [index for group in groups.values() for index in group]


def select_semantic(
    query_vectors: np.ndarray,
    pool_vectors: np.ndarray,
    pool_labels: Sequence[str],
    *,
    max_examples: int,
    relevance_ratio: float,
    tool_calling: bool,
    query_chunk: int | None = None,
    pool_chunk: int | None = None,
) -> list[list[int]]:
    """For each query vector, the pool indices of its ICL examples (§4.3 steps 4 to 6).

    Tool calling searches ``max_examples * 5`` candidates and applies
    :func:`relevance_coverage`; generic takes the ``max_examples`` nearest, best first.
    A query row that is all zeros or not finite (no query text) gets ``[]``; such pool rows
    are never chosen. ``query_chunk`` and ``pool_chunk`` tile the search (see
    :func:`top_k_cosine`); they change memory use, never the result.
    """
    query_vectors = np.asarray(query_vectors)
    pool_vectors = np.asarray(pool_vectors)
    if len(pool_labels) != len(pool_vectors):
        raise ValueError(
            f"pool_labels has {len(pool_labels)} labels for {len(pool_vectors)} pool vectors"
        )
    selections: list[list[int]] = [[] for _ in range(len(query_vectors))]
    if max_examples <= 0:
        return selections
    k = max_examples * TOOL_CALLING_CANDIDATES if tool_calling else max_examples
    live_queries = np.flatnonzero(_usable_rows(query_vectors))
    live_pool = np.flatnonzero(_usable_rows(pool_vectors))
    if live_queries.size == 0 or live_pool.size == 0:
        return selections
    if live_pool.size < len(pool_vectors):  # copy the pool only when some rows must go
        pool_vectors = pool_vectors[live_pool]
    ranked_rows, _ = top_k_cosine(
        query_vectors[live_queries],
        pool_vectors,
        k,
        query_chunk=query_chunk,
        pool_chunk=pool_chunk,
    )
    for query_index, ranked in zip(live_queries.tolist(), live_pool[ranked_rows], strict=True):
        candidates = ranked.tolist()
        if tool_calling:
            selections[query_index] = relevance_coverage(
                candidates, pool_labels, max_examples=max_examples, relevance_ratio=relevance_ratio
            )
        else:
            selections[query_index] = candidates
    return selections


# --- internals ---


def _content_text(content: Any) -> str:
    """Text of message content: a string as is, or the text parts of a content list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (part.get("text") if isinstance(part, Mapping) else part for part in content)
        return "\n".join(text for text in texts if isinstance(text, str))
    return ""


def _usable_rows(vectors: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows that are finite and not all zero (rows that have a direction)."""
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {vectors.shape}")
    with np.errstate(invalid="ignore", over="ignore"):
        squared = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
    return np.isfinite(squared) & (squared > 0)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` in float64 with rows scaled to unit length; zero or non-finite rows are zero."""
    unit = np.array(vectors, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", unit, unit))
    bad = ~np.isfinite(norms) | (norms == 0)
    norms[bad] = 1
    unit /= norms[:, None]
    unit[bad] = 0
    return unit


def _top_k_tiles(
    unit_queries: np.ndarray, pool: np.ndarray, k: int, pool_step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of some queries over the whole pool, one tile of ``pool_step`` rows at a time.

    Each tile's top k is merged into the running best; since tiles come in index order and
    the merge sorts by (score desc, index asc), the result equals the untiled one.
    """
    best_indices = np.empty((len(unit_queries), 0), dtype=np.int64)
    best_scores = np.empty((len(unit_queries), 0), dtype=np.float32)
    for offset in range(0, len(pool), pool_step):
        tile = _unit_rows(pool[offset : offset + pool_step])
        block = (unit_queries @ tile.T).astype(np.float32)
        tile_indices, tile_scores = _top_k_rows(block, min(k, block.shape[1]))
        if best_indices.shape[1] == 0:
            best_indices, best_scores = tile_indices + offset, tile_scores
            continue
        merged_indices = np.concatenate([best_indices, tile_indices + offset], axis=1)
        merged_scores = np.concatenate([best_scores, tile_scores], axis=1)
        order = np.lexsort((merged_indices, -merged_scores), axis=1)[:, :k]
        best_indices = np.take_along_axis(merged_indices, order, axis=1)
        best_scores = np.take_along_axis(merged_scores, order, axis=1)
    return best_indices, best_scores


def _top_k_rows(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``block``: the column indices of the ``k`` largest values and those values.

    Sorted by value descending, then index ascending; ties at the k-th value keep the lowest
    indices, so the result does not depend on how argpartition happened to split them.
    """
    n_cols = block.shape[1]
    if k < n_cols:
        top = np.argpartition(block, n_cols - k, axis=1)[:, n_cols - k :]
        values = np.take_along_axis(block, top, axis=1)
        threshold = values.min(axis=1)
        at_or_above = np.count_nonzero(block >= threshold[:, None], axis=1)
        for row in np.flatnonzero(at_or_above > k):  # ties straddle the cut: redo exactly
            columns = np.flatnonzero(block[row] >= threshold[row])
            order = np.lexsort((columns, -block[row, columns]))[:k]
            top[row] = columns[order]
            values[row] = block[row, top[row]]
    else:
        top = np.broadcast_to(np.arange(n_cols), block.shape)
        values = block
    order = np.lexsort((top, -values), axis=1)
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)
