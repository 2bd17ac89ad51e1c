"""Seeds, sampling and the stratified eval / train / val split (sizes pinned to the blueprint)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from flywheel.curation.records import tool_name
from flywheel.curation.split import (
    OTHERS,
    Split,
    allocate,
    derive_seed,
    group_singletons,
    sample,
    split_records,
)
from flywheel.errors import InvalidDataError
from tests.curation.builders import labelled


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [id(record) for record in records]


def labels(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(tool_name(record) for record in records)


def assert_partition(split: Split, records: list[dict[str, Any]]) -> None:
    together = ids(split.eval) + ids(split.train) + ids(split.val)
    assert sorted(together) == sorted(ids(records))


# --- seeds and sampling -----------------------------------------------------------------------


def test_derive_seed_is_stable_and_pinned() -> None:
    assert derive_seed("") == 0xE3B0C442  # first four bytes of sha256("")
    assert derive_seed("flywheel-wl-20250101T000000Z") == 2336643399
    assert derive_seed("run-a") == derive_seed("run-a")
    assert derive_seed("run-a") != derive_seed("run-b")
    assert 0 <= derive_seed("anything") < 2**32


def test_sample_size_and_determinism() -> None:
    items = list(range(100))
    first = sample(items, 10, seed=0)
    assert len(first) == 10
    assert len(set(first)) == 10
    assert set(first) <= set(items)
    assert sample(items, 10, seed=0) == first  # seed 0 is a real seed
    assert sample(items, 10, seed=1) != first
    assert sorted(sample(items, 500, seed=3)) == items
    assert sample([], 5, seed=1) == []


def test_sample_rejects_a_negative_limit() -> None:
    with pytest.raises(InvalidDataError, match="limit"):
        sample([1, 2], -1, seed=0)


# --- allocation helpers -----------------------------------------------------------------------


def test_allocate_uses_largest_remainders_and_sums_exactly() -> None:
    assert allocate({"a": 27, "b": 18, "c": 9}, 11) == {"a": 5, "b": 4, "c": 2}
    assert allocate({"a": 30, "b": 20, "c": 10}, 6) == {"a": 3, "b": 2, "c": 1}
    assert allocate({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}
    assert allocate({"a": 5}, 0) == {"a": 0}
    assert allocate({}, 0) == {}


def test_group_singletons_into_others() -> None:
    groups = group_singletons(["a", "b", "a", "c", "d", "d"])
    assert groups == {"a": [0, 2], OTHERS: [1, 3], "d": [4, 5]}


# --- pinned sizes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "eval_size", "val_ratio", "expected"),
    [
        (100, 5, 0.1, (5, 10, 85)),
        (200, 20, 0.15, (20, 27, 153)),
        (20, 2, 0.2, (2, 4, 14)),
    ],
)
def test_pinned_sizes(
    n: int, eval_size: int, val_ratio: float, expected: tuple[int, int, int]
) -> None:
    records = labelled({"search": n // 2, "lookup": n // 4, "no_tool": n - n // 2 - n // 4})
    split = split_records(records, eval_size=eval_size, val_ratio=val_ratio, seed=42)
    assert (len(split.eval), len(split.val), len(split.train)) == expected
    assert_partition(split, records)


def test_three_tools_sizes_and_proportions() -> None:
    records = labelled({"search": 30, "lookup": 20, "order": 10})
    split = split_records(records, eval_size=6, val_ratio=0.2, seed=7)
    assert (len(split.eval), len(split.val), len(split.train)) == (6, 11, 43)
    assert labels(split.eval) == {"search": 3, "lookup": 2, "order": 1}
    assert labels(split.val) == {"search": 5, "lookup": 4, "order": 2}
    assert labels(split.train) == {"search": 22, "lookup": 14, "order": 7}
    assert split.label_counts == {"search": 30, "lookup": 20, "order": 10}
    assert split.notes == []
    assert_partition(split, records)


def test_large_split_is_proportional_per_class() -> None:
    records = labelled({"a": 600, "b": 300, "c": 100})
    split = split_records(records, eval_size=100, val_ratio=0.1, seed=1)
    assert labels(split.eval) == {"a": 60, "b": 30, "c": 10}
    assert labels(split.val) == {"a": 54, "b": 27, "c": 9}
    assert labels(split.train) == {"a": 486, "b": 243, "c": 81}


def test_outputs_are_mixed_not_grouped_by_class() -> None:
    records = labelled({"a": 50, "b": 50})
    split = split_records(records, eval_size=10, val_ratio=0.1, seed=3)
    train_labels = [tool_name(record) for record in split.train]
    assert train_labels != sorted(train_labels)


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_same_split_and_different_seed_different_split() -> None:
    records = labelled({"search": 40, "lookup": 30, "no_tool": 30})
    one = split_records(records, eval_size=10, val_ratio=0.1, seed=5)
    again = split_records(records, eval_size=10, val_ratio=0.1, seed=5)
    other = split_records(records, eval_size=10, val_ratio=0.1, seed=6)
    assert ids(one.eval) == ids(again.eval)
    assert ids(one.train) == ids(again.train)
    assert ids(one.val) == ids(again.val)
    assert set(ids(one.eval)) != set(ids(other.eval))
    assert set(ids(one.val)) != set(ids(other.val))


# --- classes that cannot be stratified --------------------------------------------------------


def test_a_single_singleton_class_does_not_break_the_split() -> None:
    records = labelled({"search": 30, "lookup": 29, "rare": 1})
    split = split_records(records, eval_size=6, val_ratio=0.2, seed=2)
    assert (len(split.eval), len(split.val), len(split.train)) == (6, 11, 43)
    assert_partition(split, records)


def test_two_singleton_tools_are_grouped_as_others() -> None:
    records = labelled({"search": 20, "lookup": 20, "rare1": 1, "rare2": 1})
    split = split_records(records, eval_size=6, val_ratio=0.2, seed=2)
    assert (len(split.eval), len(split.val), len(split.train)) == (6, 8, 28)
    assert_partition(split, records)


def test_a_single_class_splits_randomly_without_a_note() -> None:
    records = labelled({"search": 50})
    split = split_records(records, eval_size=5, val_ratio=0.1, seed=2)
    assert (len(split.eval), len(split.val), len(split.train)) == (5, 5, 40)
    assert split.notes == []


def test_fewer_eval_slots_than_classes_falls_back_to_random() -> None:
    records = labelled({"a": 10, "b": 10, "c": 10, "d": 10})
    split = split_records(records, eval_size=3, val_ratio=0.1, seed=2)
    assert (len(split.eval), len(split.val), len(split.train)) == (3, 4, 33)
    assert split.notes == [
        "eval split is random, not stratified: 3 records on its smaller side for 4 classes"
    ]
    assert_partition(split, records)


def test_no_tool_can_appear_in_every_split() -> None:
    records = labelled({"no_tool": 60, "search": 40})
    split = split_records(records, eval_size=10, val_ratio=0.2, seed=9)
    for part in (split.eval, split.val, split.train):
        assert labels(part)["no_tool"] > 0


# --- edge cases -------------------------------------------------------------------------------


def test_val_ratio_zero_gives_an_empty_val_set() -> None:
    records = labelled({"a": 10, "b": 10})
    split = split_records(records, eval_size=4, val_ratio=0.0, seed=1)
    assert (len(split.eval), len(split.val), len(split.train)) == (4, 0, 16)
    assert split.notes == []


def test_eval_size_zero_gives_an_empty_eval_set() -> None:
    records = labelled({"a": 10, "b": 10})
    split = split_records(records, eval_size=0, val_ratio=0.5, seed=1)
    assert (len(split.eval), len(split.val), len(split.train)) == (0, 10, 10)


@pytest.mark.parametrize("eval_size", [20, 25])
def test_eval_size_covering_every_record_is_an_error(eval_size: int) -> None:
    records = labelled({"a": 10, "b": 10})
    with pytest.raises(
        InvalidDataError, match=rf"eval_size \({eval_size}\).*20 usable.*no training"
    ):
        split_records(records, eval_size=eval_size, val_ratio=0.1, seed=1)


def test_val_taking_every_remaining_record_is_an_error() -> None:
    records = labelled({"a": 3})
    with pytest.raises(InvalidDataError, match=r"takes 2 for validation.*no training"):
        split_records(records, eval_size=1, val_ratio=0.9, seed=1)


def test_no_records_is_an_error() -> None:
    with pytest.raises(InvalidDataError, match="no records"):
        split_records([], eval_size=1, val_ratio=0.1, seed=1)


@pytest.mark.parametrize(("eval_size", "val_ratio"), [(-1, 0.1), (1, 1.0), (1, -0.1)])
def test_bad_parameters_are_errors(eval_size: int, val_ratio: float) -> None:
    with pytest.raises(InvalidDataError):
        split_records(labelled({"a": 10}), eval_size=eval_size, val_ratio=val_ratio, seed=1)


def test_custom_label_function_is_used_for_strata() -> None:
    records = labelled({"a": 40})
    for i, record in enumerate(records):
        record["client_id"] = "big" if i < 30 else "small"
    split = split_records(
        records, eval_size=4, val_ratio=0.25, seed=1, label=lambda r: r["client_id"]
    )
    assert Counter(r["client_id"] for r in split.eval) == {"big": 3, "small": 1}
    assert split.label_counts == {"big": 30, "small": 10}
