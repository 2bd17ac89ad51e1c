"""Judge-free semantic similarity of generic answers: cosine of their embedding vectors.

The vectors come from an embedding model (flywheel/clients/embeddings.py); this module only
does the arithmetic, so it stays pure and testable without a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EMBEDDING_COSINE", "embedding_cosine"]

EMBEDDING_COSINE = "embedding_cosine"
"""Mean cosine similarity of reference and candidate answer embeddings (-1–1, usually 0–1)."""


def embedding_cosine(reference_vecs: Any, candidate_vecs: Any) -> list[float]:
    """Row-wise cosine similarity of two ``(n, dim)`` arrays (or lists of equal-length vectors).

    Rows need not be unit length: each is normalised here. A row of zeros has no direction, so
    its pair scores 0.0. Results are clipped to [-1, 1] against rounding. ``ValueError`` when the
    shapes differ, are not two-dimensional, or hold NaN or infinity.
    """
    ref = _matrix(reference_vecs, "reference_vecs")
    cand = _matrix(candidate_vecs, "candidate_vecs")
    if ref.shape != cand.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, candidate {cand.shape}")
    if ref.shape[0] == 0:
        return []
    if ref.shape[1] == 0:  # vectors without components: every row is a zero row
        return [0.0] * ref.shape[0]
    ref, cand = _unit_rows(ref), _unit_rows(cand)
    cosine = np.einsum("ij,ij->i", ref, cand)
    return [float(value) for value in np.clip(cosine, -1.0, 1.0)]


def _unit_rows(array: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1; zero rows stay zero.

    Rows are first divided by their largest magnitude, so that neither huge nor tiny values
    overflow or underflow when squared.
    """
    scale = np.max(np.abs(array), axis=1, keepdims=True)
    scaled = array / np.where(scale > 0, scale, 1.0)
    norms = np.linalg.norm(scaled, axis=1, keepdims=True)
    return scaled / np.where(norms > 0, norms, 1.0)


def _matrix(vectors: Any, name: str) -> np.ndarray:
    """``vectors`` as a finite float64 ``(n, dim)`` array; an empty sequence is ``(0, 0)``."""
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim == 1 and array.size == 0:
        return array.reshape(0, 0)
    if array.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional (n, dim), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinity")
    return array
