"""Seeded sampling and the eval / train / val split, stratified by tool name.

Sizes follow the blueprint's scikit-learn behaviour exactly (eval is an absolute count,
``val = ceil(val_ratio × rest)``), but unlike the blueprint both splits are stratified, a lone
singleton class does not crash, and edge cases end in a clear :class:`InvalidDataError`.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from flywheel.curation.records import tool_name
from flywheel.errors import InvalidDataError

T = TypeVar("T")

OTHERS = "others"
"""Label that gathers every label occurring only once, so each class has at least two members."""


@dataclass(frozen=True)
class Split:
    """The three datasets of a run, plus notes on where stratification had to give way."""

    eval: list[dict[str, Any]]
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)
    """Records per label over all three sets (before singletons are grouped)."""


def derive_seed(run_id: str) -> int:
    """A stable 32-bit seed from a run id, so a retried activity samples and splits identically."""
    return int.from_bytes(hashlib.sha256(run_id.encode("utf-8")).digest()[:4], "big")


def sample(records: Sequence[T], limit: int, seed: int) -> list[T]:
    """A seeded random sample of ``min(limit, len(records))`` items (every seed counts, 0 too)."""
    if limit < 0:
        raise InvalidDataError(f"limit must not be negative, got {limit}")
    return random.Random(seed).sample(records, min(limit, len(records)))


def split_records(
    records: Sequence[dict[str, Any]],
    *,
    eval_size: int,
    val_ratio: float,
    seed: int,
    label: Callable[[dict[str, Any]], str] = tool_name,
) -> Split:
    """Split into eval (exactly ``min(eval_size, n)``), val (``ceil(val_ratio × rest)``) and train.

    Both splits are stratified by ``label``; a split with fewer slots than classes on either
    side falls back to a seeded random split (recorded in ``notes``). Raises
    :class:`InvalidDataError` when there is nothing to split or no training data would remain.
    """
    positions = split_labels(
        [label(record) for record in records], eval_size=eval_size, val_ratio=val_ratio, seed=seed
    )
    return Split(
        eval=[records[i] for i in positions.eval],
        train=[records[i] for i in positions.train],
        val=[records[i] for i in positions.val],
        notes=positions.notes,
        label_counts=positions.label_counts,
    )


@dataclass(frozen=True)
class SplitPositions:
    """Positions (into the labels given to :func:`split_labels`) of each set."""

    eval: list[int]
    train: list[int]
    val: list[int]
    notes: list[str] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)


def split_labels(
    labels: Sequence[str], *, eval_size: int, val_ratio: float, seed: int
) -> SplitPositions:
    """:func:`split_records` on the records' labels alone: which positions go to which set."""
    n = len(labels)
    if n == 0:
        raise InvalidDataError("there are no records to split into eval, train and val sets")
    if eval_size < 0:
        raise InvalidDataError(f"eval_size must not be negative, got {eval_size}")
    if not 0 <= val_ratio < 1:
        raise InvalidDataError(f"val_ratio must be in [0, 1), got {val_ratio}")
    eval_n = min(eval_size, n)
    if eval_n >= n:
        raise InvalidDataError(
            f"eval_size ({eval_size}) is not smaller than the {n} usable records: there would be "
            "no training data; lower eval_size or provide more records"
        )
    rest_n = n - eval_n
    val_n = math.ceil(val_ratio * rest_n)
    if val_n >= rest_n:
        raise InvalidDataError(
            f"val_ratio ({val_ratio}) of the {rest_n} records left after {eval_n} eval records "
            f"takes {val_n} for validation: there would be no training data"
        )

    rng = np.random.default_rng(seed)
    notes: list[str] = []
    rest_pos, eval_pos = _split_positions(labels, eval_n, rng, "eval", notes)
    train_pos, val_pos = _split_positions([labels[i] for i in rest_pos], val_n, rng, "val", notes)
    return SplitPositions(
        eval=eval_pos,
        train=[rest_pos[i] for i in train_pos],
        val=[rest_pos[i] for i in val_pos],
        notes=notes,
        label_counts=dict(Counter(labels)),
    )


def group_singletons(labels: Sequence[str]) -> dict[str, list[int]]:
    """Positions per label, with every label that occurs once merged into ``"others"``."""
    groups: dict[str, list[int]] = {}
    for position, name in enumerate(labels):
        groups.setdefault(name, []).append(position)
    merged: dict[str, list[int]] = {}
    for name, positions in groups.items():
        key = OTHERS if len(positions) == 1 else name
        merged.setdefault(key, []).extend(positions)
    return merged


def allocate(counts: dict[str, int], total: int) -> dict[str, int]:
    """Share ``total`` slots among classes in proportion to ``counts``, summing exactly.

    Largest-remainder rounding in integer arithmetic; ties go to the larger class, then by name.
    """
    n = sum(counts.values())
    if n == 0:
        return dict.fromkeys(counts, 0)
    shares = {name: total * count // n for name, count in counts.items()}
    left = total - sum(shares.values())
    by_remainder = sorted(counts, key=lambda c: (-(total * counts[c] % n), -counts[c], c))
    for name in by_remainder[:left]:
        shares[name] += 1
    return shares


def _split_positions(
    labels: Sequence[str], test_n: int, rng: np.random.Generator, what: str, notes: list[str]
) -> tuple[list[int], list[int]]:
    """Positions (kept, taken) with ``len(taken) == test_n``, stratified where possible."""
    n = len(labels)
    groups = group_singletons(labels)
    smaller_side = min(test_n, n - test_n)
    if len(groups) < 2 or smaller_side < len(groups):
        if len(groups) >= 2 and test_n > 0:
            notes.append(
                f"{what} split is random, not stratified: {smaller_side} records on its smaller "
                f"side for {len(groups)} classes"
            )
        positions = rng.permutation(n).tolist()
        return positions[test_n:], positions[:test_n]

    classes = sorted(groups)
    shares = allocate({name: len(groups[name]) for name in classes}, test_n)
    kept: list[int] = []
    taken: list[int] = []
    for name in classes:
        members = _shuffled(groups[name], rng)
        taken.extend(members[: shares[name]])
        kept.extend(members[shares[name] :])
    return _shuffled(kept, rng), _shuffled(taken, rng)


def _shuffled(items: list[int], rng: np.random.Generator) -> list[int]:
    """``items`` in a random order (numpy: fast for the hundreds of thousands of a big run)."""
    return np.asarray(items, dtype=np.int64)[rng.permutation(len(items))].tolist()
