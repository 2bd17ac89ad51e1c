"""Curation beyond the blueprint: raw text input, near duplicates, eval leakage, PII, report."""

from __future__ import annotations

import copy
import json
import random
import re
from typing import Any

import orjson
import pytest

from flywheel.config import PIIConfig
from flywheel.curation.near_dup import normalised_key
from flywheel.curation.pii import build_redactor
from flywheel.curation.pipeline import CurationOptions, Curator, curate
from flywheel.errors import InvalidDataError
from tests.curation.builders import labelled, make_record

TOOLS = ("search", "lookup", "order")


def options(**overrides: Any) -> CurationOptions:
    values: dict[str, Any] = {
        "eval_size": 20,
        "val_ratio": 0.1,
        "min_total_records": 20,
        "limit": 1000,
        "seed": 3,
    }
    return CurationOptions(**(values | overrides))


WORDS = [
    f"{a}{b}"
    for a in ("par", "ship", "box", "rate", "mail", "card", "zone", "desk")
    for b in ("cel", "ment", "ing", "er", "ly", "ous", "ant", "ive", "ist", "ure")
]


def sentence(i: int) -> str:
    """A 40-word text with a vocabulary of its own (distinct texts share few 5-grams)."""
    rng = random.Random(i)
    return " ".join(rng.choice(WORDS) for _ in range(40))


def twins(n: int) -> list[dict[str, Any]]:
    """``n`` pairs of records whose inputs differ only in case and punctuation."""
    records = []
    for i in range(n):
        tool = TOOLS[i % 3]
        records.append(make_record(sentence(i), tool=tool))
        records.append(make_record(sentence(i).upper() + "!!", tool=tool))
    return records


def inputs(records: list[dict[str, Any]]) -> set[bytes]:
    return {normalised_key(record) for record in records}


def test_raw_json_text_and_parsed_records_give_the_same_datasets() -> None:
    records = labelled({"search": 40, "lookup": 30, "no_tool": 10})
    parsed = curate(copy.deepcopy(records), options())
    as_bytes = curate([orjson.dumps(r) for r in records], options())
    as_text = curate([json.dumps(r) for r in records], options())
    for other in (as_bytes, as_text):
        assert other.eval_records == parsed.eval_records
        assert other.train_lines == parsed.train_lines
        assert other.val_lines == parsed.val_lines
        assert other.report == parsed.report


def test_lines_that_are_not_json_objects_are_counted() -> None:
    records = [orjson.dumps(r) for r in labelled({"search": 30})]
    records += [b"{not json", b"[1, 2]", "\ud800 lone surrogate", b"\xff\xfe"]
    report = curate(records, options()).report
    assert report.total_records == 34
    assert report.dropped == {"invalid_json": 4}
    assert report.selected == 30


def test_feeding_in_batches_equals_feeding_at_once() -> None:
    records = labelled({"search": 50, "lookup": 25})
    whole = curate(records, options())
    curator = Curator(options())
    for start in range(0, len(records), 7):
        curator.feed(records[start : start + 7])
    plan = curator.finish()
    assert plan.eval_records() == whole.eval_records
    assert list(plan.training_lines("train")) == whole.train_lines
    assert list(plan.training_lines("val")) == whole.val_lines


def test_leakage_guard_keeps_eval_inputs_out_of_train_and_val() -> None:
    records = twins(60)
    curated = curate(records, options())
    eval_inputs = inputs(curated.eval_raw)
    assert not eval_inputs & inputs(curated.train_records)
    leaked = curated.report.dropped["eval_leakage"]
    assert leaked > 0
    report = curated.report
    assert report.eval_records == 20
    assert report.train_records + report.val_records + leaked == 120 - 20
    assert sum(sum(row.values()) for row in report.tool_splits.values()) == 120 - leaked

    unguarded = curate(records, options(leakage_guard=False))
    assert "eval_leakage" not in unguarded.report.dropped
    assert inputs(unguarded.eval_raw) & inputs(unguarded.train_records)


def test_val_lines_are_guarded_too() -> None:
    curated = curate(twins(60), options(val_ratio=0.5))
    val_texts = {line["messages"][-2]["content"].lower() for line in curated.val_lines}
    eval_texts = {
        m["content"].lower()
        for r in curated.eval_raw
        for m in r["request"]["messages"]
        if m["role"] == "user"
    }
    stripped = {re.sub(r"\W+$", "", t) for t in val_texts}
    assert not stripped & {re.sub(r"\W+$", "", t) for t in eval_texts}


def test_near_duplicates_are_removed_keeping_the_newest() -> None:
    records = []
    for i in range(40):
        records.append(make_record(sentence(i), tool=TOOLS[i % 3]))
    older_edits = []
    for i in range(10):  # one word changed: near, not exact, duplicates of older logs
        edited = make_record(sentence(i) + " kindly", tool=TOOLS[i % 3])
        older_edits.append(edited)
    curated = curate(records + older_edits, options(near_duplicate_threshold=0.8))
    assert curated.report.dropped == {"near_duplicate": 10}
    kept = [
        m["content"]
        for r in curated.eval_raw + curated.train_records
        for m in r["request"]["messages"]
        if m["role"] == "user"
    ]
    assert not any("kindly" in text for text in kept)

    exact_only = curate(records + older_edits, options())
    assert "near_duplicate" not in exact_only.report.dropped
    assert exact_only.report.selected == 50


def test_near_duplicate_removal_leaves_nothing_to_leak() -> None:
    records = []
    for i in range(60):
        records.append(make_record(sentence(i), tool=TOOLS[i % 3]))
        records.append(make_record(sentence(i) + " thanks", tool=TOOLS[i % 3]))
    # Removal drops the older twin of every pair, so no near duplicate is left to leak.
    curated = curate(records, options(near_duplicate_threshold=0.8))
    assert curated.report.dropped["near_duplicate"] == 60
    assert "eval_leakage" not in curated.report.dropped


def test_pii_is_redacted_in_every_dataset_and_counted() -> None:
    records = []
    for i in range(30):
        record = make_record(
            f"I am jane.doe{i}@example.com, call me on +1 415 555 01{i:02d}",
            tool="lookup",
            arguments={"email": f"jane.doe{i}@example.com", "order": f"A{i}"},
        )
        records.append(record)
    redactor = build_redactor(PIIConfig(enabled=True))
    curated = curate(records, options(eval_size=5), redactor=redactor)
    dumped = orjson.dumps([curated.eval_records, curated.train_lines, curated.val_lines]).decode()
    assert "@example.com" not in dumped
    assert "555 01" not in dumped
    assert "[EMAIL]" in dumped and "[PHONE]" in dumped
    counts = curated.report.pii_redactions
    assert counts["email"] >= 60  # user text and tool arguments of every record
    assert counts["phone"] >= 30
    # Arguments stay objects with their other values intact.
    line = curated.train_lines[0]
    arguments = line["messages"][-1]["tool_calls"][0]["function"]["arguments"]
    assert arguments["email"] == "[EMAIL]" and arguments["order"].startswith("A")


def test_redaction_is_off_by_default() -> None:
    assert build_redactor(PIIConfig()) is None


def test_report_counts_every_record_once() -> None:
    records = [*twins(40), {"request": "broken"}, *copy.deepcopy(twins(40))[:5]]
    curated = curate(records, options(limit=60))
    report = curated.report
    accounted = sum(report.dropped.values()) + report.eval_records + report.train_records
    accounted += report.val_records
    assert accounted == report.total_records == 86
    assert list(report.dropped) == [
        "invalid_format",
        "duplicate",
        "sampled_out",
        "eval_leakage",
    ]


def test_minimum_counts_the_survivors_after_near_dedup() -> None:
    records = [make_record(sentence(1) + f" {'x' * i}", tool="search") for i in range(30)]
    with pytest.raises(InvalidDataError, match=r"near_duplicate="):
        curate(records, options(near_duplicate_threshold=0.5))


def test_training_lines_carry_tools_only_in_tool_calling_workloads() -> None:
    offered = ["search", "lookup"]
    plain = [make_record(sentence(i), tools=offered) for i in range(40)]  # tools offered, unused
    generic = curate(plain, options())
    assert generic.report.workload_type.value == "generic"
    assert all("tools" not in line for line in generic.train_lines + generic.val_lines)

    # Plain answers seen before the first tool call still get the tool-calling form.
    calls = [make_record(sentence(100 + i), tool=TOOLS[i % 3], tools=offered) for i in range(40)]
    mixed = curate(plain + calls, options())
    assert mixed.report.workload_type.value == "tool_calling"
    lines = mixed.train_lines + mixed.val_lines
    assert all(line["tools"][0]["function"]["name"] == "search" for line in lines)
    plain_lines = [line for line in lines if "tool_calls" not in line["messages"][-1]]
    assert plain_lines and all(
        line["messages"][-1]["content"] == "an answer" for line in plain_lines
    )
