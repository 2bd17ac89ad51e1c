"""curate(): logged calls in, formatted datasets and a readable report out."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel.curation.pipeline import CurationOptions, curate
from flywheel.curation.records import tool_name
from flywheel.errors import InvalidDataError
from flywheel.schemas import WorkloadType
from tests.curation.builders import labelled, make_record, tool_def

COUNTS = {"search": 120, "lookup": 90, "order": 60, "no_tool": 30}


def broken_records() -> list[dict[str, Any]]:
    """Fourteen records that validation drops, for seven different reasons."""
    too_many = make_record("too many", tool="search")
    too_many["request"]["tools"] = [tool_def("search", 9)]
    bad_call = make_record("bad call", tool="search")
    bad_call["response"]["choices"][0]["message"]["tool_calls"][0]["type"] = "retrieval"
    error = make_record("error")
    error["response"]["error"] = {"message": "overloaded"}
    return [
        {"request": {"messages": []}, "response": {"choices": []}},
        {"workload_id": "wl"},
        make_record(messages=[{"role": "robot", "content": "beep"}]),
        error,
        copy.deepcopy(error),
        *(make_record(f"unparsable {i}", tool="search", arguments="") for i in range(4)),
        make_record("cut off", finish_reason="length"),
        make_record("empty 1", content=""),
        make_record("empty 2", content=None),
        too_many,
        bad_call,
    ]


def workload() -> list[dict[str, Any]]:
    """324 newest-first logs: 300 distinct valid calls, 10 older repeats, 14 broken records."""
    valid = labelled(COUNTS)
    repeats = []
    for record in valid[:10]:
        repeat = copy.deepcopy(record)
        repeat["response"]["choices"][0]["message"]["tool_calls"][0]["id"] = "older"
        repeats.append(repeat)
    return valid + broken_records() + repeats


def options(**overrides: Any) -> CurationOptions:
    values: dict[str, Any] = {
        "eval_size": 20,
        "val_ratio": 0.1,
        "min_total_records": 50,
        "limit": 1000,
        "seed": 7,
    }
    return CurationOptions(**(values | overrides))


def test_curate_a_mixed_tool_calling_workload() -> None:
    records = workload()
    before = copy.deepcopy(records)

    curated = curate(records, options())

    report = curated.report
    assert curated.workload_type == report.workload_type == WorkloadType.TOOL_CALLING
    assert report.total_records == 324
    assert report.dropped == {
        "invalid_format": 3,
        "error_response": 2,
        "too_many_tool_properties": 1,
        "truncated_answer": 1,
        "bad_tool_call": 1,
        "unparsable_arguments": 4,
        "empty_answer": 2,
        "duplicate": 10,
    }
    assert list(report.dropped)[-1] == "duplicate"
    assert report.selected == 300
    assert (report.eval_records, report.val_records, report.train_records) == (20, 28, 252)
    assert report.tool_counts == COUNTS
    assert list(report.tool_counts) == ["search", "lookup", "order", "no_tool"]
    assert report.seed == 7
    assert report.warnings == []
    assert records == before

    assert len(curated.eval_records) == len(curated.eval_raw) == 20
    assert len(curated.train_lines) == len(curated.train_records) == 252
    assert len(curated.val_lines) == 28
    every = curated.eval_raw + curated.train_records
    assert all(
        call["id"] != "older"
        for record in every
        for call in record["response"]["choices"][0]["message"].get("tool_calls") or []
    )


def test_outputs_are_formatted() -> None:
    curated = curate(workload(), options())
    eval_tool = next(r for r in curated.eval_records if tool_name(r) != "no_tool")
    arguments = eval_tool["response"]["choices"][0]["message"]["tool_calls"][0]["function"][
        "arguments"
    ]
    assert isinstance(arguments, dict)  # parsed ground truth for the scorers
    assert set(eval_tool) == {"workload_id", "client_id", "timestamp", "request", "response"}

    for line in curated.train_lines + curated.val_lines:
        assert set(line) <= {"messages", "tools"}
        target = line["messages"][-1]
        assert target["role"] == "assistant"
        if "tool_calls" in target:
            assert target["content"] == ""
            assert isinstance(target["tool_calls"][0]["function"]["arguments"], dict)
            assert line["tools"]
        else:
            assert target["content"] == "an answer"

    raw = curated.train_records[0]
    assert set(raw) == {"workload_id", "client_id", "timestamp", "request", "response"}


def test_splits_are_stratified_by_tool() -> None:
    curated = curate(workload(), options())
    eval_counts: dict[str, int] = {}
    for record in curated.eval_raw:
        eval_counts[tool_name(record)] = eval_counts.get(tool_name(record), 0) + 1
    assert eval_counts == {"search": 8, "lookup": 6, "order": 4, "no_tool": 2}


def test_same_seed_same_datasets_and_another_seed_differs() -> None:
    one = curate(workload(), options(seed=11))
    again = curate(workload(), options(seed=11))
    other = curate(workload(), options(seed=12))
    assert one.eval_records == again.eval_records
    assert one.train_lines == again.train_lines
    assert one.val_lines == again.val_lines
    assert one.eval_records != other.eval_records


def test_curate_streams_an_iterator_once() -> None:
    pulled = 0

    def stream() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for record in workload():
            pulled += 1
            yield record

    curated = curate(stream(), options())
    assert pulled == 324
    assert curated.report.total_records == 324
    assert curated.report.selected == 300


def test_limit_samples_the_valid_records() -> None:
    curated = curate(workload(), options(limit=100))
    report = curated.report
    assert report.selected == 100
    assert report.dropped["sampled_out"] == 200
    assert list(report.dropped)[-2:] == ["duplicate", "sampled_out"]
    assert (report.eval_records, report.val_records, report.train_records) == (20, 8, 72)
    assert sum(report.tool_counts.values()) == 100


def test_too_few_valid_records_is_a_clear_error() -> None:
    records = labelled({"search": 30}) + broken_records()
    with pytest.raises(InvalidDataError) as caught:
        curate(records, options(min_total_records=40, limit=100))
    assert str(caught.value).startswith(
        "Found 30 valid records but need at least 40 (total 44, dropped: invalid_format=3, "
        "error_response=2, too_many_tool_properties=1, truncated_answer=1, bad_tool_call=1, "
        "unparsable_arguments=4, empty_answer=2)"
    )


def test_nothing_dropped_reads_none() -> None:
    with pytest.raises(InvalidDataError, match=r"Found 5 valid .* \(total 5, dropped: none\)"):
        curate(labelled({"search": 5}), options())


def test_limit_below_minimum_is_an_error() -> None:
    with pytest.raises(InvalidDataError, match=r"limit \(10\) cannot be less than"):
        curate(workload(), options(limit=10))


def test_eval_size_leaving_no_training_data_is_an_error() -> None:
    with pytest.raises(InvalidDataError, match="no training data"):
        curate(labelled({"search": 50}), options(eval_size=60, limit=100))


def test_plain_answers_can_be_dropped_from_tool_calling_workloads() -> None:
    plain_first = labelled({"no_tool": 30}) + labelled({"search": 60, "lookup": 40})
    plain_first += [make_record("late plain answer", content="sure")]
    curated = curate(plain_first, options(keep_non_tool_records=False))
    assert curated.report.dropped == {"no_tool_call": 31}
    assert curated.report.tool_counts == {"search": 60, "lookup": 40}


def test_generic_workload_keeps_plain_answers_and_dedups_them() -> None:
    records = labelled({"no_tool": 80})
    records += [copy.deepcopy(records[0]), copy.deepcopy(records[1])]
    curated = curate(records, options(keep_non_tool_records=False))
    assert curated.workload_type == WorkloadType.GENERIC
    assert curated.report.dropped == {"duplicate": 2}
    assert curated.report.selected == 80
    assert all("tools" not in line for line in curated.train_lines)
    assert curated.train_lines[0]["messages"][-1] == {"role": "assistant", "content": "an answer"}


def test_single_tool_workload_is_reported() -> None:
    curated = curate(labelled({"search": 60}), options())
    assert curated.report.warnings == ["every selected record has the same label 'search'"]


def test_unstratifiable_split_is_reported() -> None:
    records = labelled({f"tool{i}": 10 for i in range(6)})
    curated = curate(records, options(eval_size=4))
    assert curated.report.warnings == [
        "eval split is random, not stratified: 4 records on its smaller side for 6 classes"
    ]


def test_curation_imports_nothing_from_the_outer_layers() -> None:
    """The import rule of ARCHITECTURE.md: curation is pure (no Temporal, clients, platforms)."""
    code = (
        "import sys\n"
        "import flywheel.curation.pipeline, flywheel.curation.icl\n"
        "outer = ('temporalio', 'httpx', 'flywheel.clients', 'flywheel.platforms',\n"
        "         'flywheel.activities', 'flywheel.workflows')\n"
        "print(sorted(m for m in sys.modules if m.startswith(outer)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.strip() == "[]"
