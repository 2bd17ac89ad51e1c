"""Accessors of logged calls: answer message, tool calls, tool-name label, workload type."""

from __future__ import annotations

from typing import Any

import pytest

from flywheel.curation.records import (
    NO_TOOL,
    classify_workload,
    has_tool_calls,
    response_message,
    tool_calls_of,
    tool_name,
)
from flywheel.schemas import WorkloadType
from tests.curation.builders import make_record, tool_call


def test_response_message_is_the_first_choice_message() -> None:
    record = make_record(content="first")
    record["response"]["choices"].append(
        {"index": 1, "message": {"role": "assistant", "content": "second"}}
    )
    assert response_message(record) == {"role": "assistant", "content": "first"}


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"response": None},
        {"response": {"choices": []}},
        {"response": {"choices": "nope"}},
        {"response": {"choices": ["not a dict"]}},
        {"response": {"choices": [{"message": "text"}]}},
        {"response": {"choices": [{"finish_reason": "stop"}]}},
    ],
)
def test_response_message_is_none_for_malformed_records(record: dict[str, Any]) -> None:
    assert response_message(record) is None


def test_tool_calls_of() -> None:
    calls = [tool_call("search")]
    assert tool_calls_of({"tool_calls": calls}) == calls
    assert tool_calls_of({"tool_calls": None}) == []
    assert tool_calls_of({"tool_calls": {"not": "a list"}}) == []
    assert tool_calls_of({"content": "x"}) == []
    assert tool_calls_of(None) == []


def test_tool_name_is_the_first_call_of_the_first_choice() -> None:
    record = make_record(tool_calls=[tool_call("search"), tool_call("lookup")])
    record["response"]["choices"].append(
        {"message": {"role": "assistant", "tool_calls": [tool_call("other")]}}
    )
    assert tool_name(record) == "search"
    assert has_tool_calls(record)


@pytest.mark.parametrize(
    "record",
    [
        make_record(content="plain"),
        make_record(tool_calls=[]),
        make_record(tool_calls=[{"type": "function", "function": {"name": ""}}]),
        make_record(tool_calls=[{"type": "function", "function": {"name": 7}}]),
        make_record(tool_calls=[{"type": "function"}]),
        make_record(tool_calls=["garbage"]),
        {"response": {"choices": []}},
        {"response": "text"},
    ],
)
def test_tool_name_falls_back_to_no_tool(record: dict[str, Any]) -> None:
    assert tool_name(record) == NO_TOOL == "no_tool"


def test_classify_tool_calling_if_any_record_calls_a_tool() -> None:
    records = [make_record("a"), make_record("b"), make_record("c", tool="search")]
    assert classify_workload(records) == WorkloadType.TOOL_CALLING


def test_classify_generic_skips_malformed_records() -> None:
    later_choice_only = make_record("d")
    later_choice_only["response"]["choices"].append(
        {"message": {"role": "assistant", "tool_calls": [tool_call("search")]}}
    )
    records: list[Any] = [
        make_record("a"),
        "not a record",
        None,
        {"response": {"choices": [{"message": {"tool_calls": "bad"}}]}},
        make_record("c", tool_calls=[]),
        later_choice_only,
    ]
    assert classify_workload(records) == WorkloadType.GENERIC
    assert classify_workload([]) == WorkloadType.GENERIC
