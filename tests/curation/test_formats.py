"""Eval records and chat training lines (blueprint-spec §3.3)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from flywheel.curation.formats import to_eval_record, to_training_line
from flywheel.schemas import WorkloadType
from tests.curation.builders import make_record, tool_call

TOOL = WorkloadType.TOOL_CALLING
GENERIC = WorkloadType.GENERIC


def history_record() -> dict[str, Any]:
    """A second agent step: history holds a tool call with object arguments; answer calls again."""
    history_call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": "search", "arguments": {"q": "shoes", "size": 42}},
    }
    record = make_record(
        messages=[
            {"role": "system", "content": "You sell shoes."},
            {"role": "user", "content": "find shoes"},
            {"role": "assistant", "content": None, "tool_calls": [history_call]},
            {"role": "tool", "tool_call_id": "call_0", "content": "3 results"},
        ],
        tools=["search", "order"],
        tool="order",
    )
    answer_call = record["response"]["choices"][0]["message"]["tool_calls"][0]
    answer_call["function"]["arguments"] = {"item": 1}  # as validation leaves it (parsed)
    record["extra_field"] = "kept"
    return record


def test_eval_record_stringifies_request_arguments_only() -> None:
    record = history_record()
    before = copy.deepcopy(record)

    formatted = to_eval_record(record)

    history_call = formatted["request"]["messages"][2]["tool_calls"][0]
    assert isinstance(history_call["function"]["arguments"], str)
    assert json.loads(history_call["function"]["arguments"]) == {"q": "shoes", "size": 42}
    assert history_call["id"] == "call_0"
    answer = formatted["response"]["choices"][0]["message"]["tool_calls"][0]
    assert answer["function"]["arguments"] == {"item": 1}
    assert set(formatted) == {
        "workload_id",
        "client_id",
        "timestamp",
        "request",
        "response",
        "extra_field",
    }
    assert formatted["request"]["tools"] == record["request"]["tools"]
    assert record == before


def test_eval_record_leaves_string_arguments_and_plain_records_alone() -> None:
    record = make_record(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [tool_call("f", {"a": 1})]},
            {"role": "tool", "content": "done"},
        ]
    )
    assert to_eval_record(record) == record
    plain = make_record("hello")
    assert to_eval_record(plain) == plain


def test_training_line_for_a_generic_workload() -> None:
    record = make_record(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None},
            {"role": "user", "content": "capital of France?"},
        ],
        content="Paris",
    )
    line = to_training_line(record, GENERIC)
    assert line == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "capital of France?"},
            {"role": "assistant", "content": "Paris"},
        ]
    }
    assert record["request"]["messages"][2]["content"] is None


def test_training_line_for_a_tool_call() -> None:
    record = make_record("find shoes", tool="search", arguments={"q": "shoes"}, tools=["search"])
    record["response"]["choices"][0]["message"]["content"] = "Let me look."
    before = copy.deepcopy(record)

    line = to_training_line(record, TOOL)

    assert line is not None
    assert line["tools"] == record["request"]["tools"]
    target = line["messages"][-1]
    assert target == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "search", "arguments": {"q": "shoes"}},
            }
        ],
    }
    assert line["messages"][:-1] == record["request"]["messages"]
    assert record == before


def test_training_line_history_arguments_become_objects() -> None:
    record = make_record(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [tool_call("f", {"a": 1})]},
            {"role": "tool", "content": "done"},
        ],
        tool="g",
        tools=["f", "g"],
    )
    line = to_training_line(record, TOOL)
    assert line is not None
    history = line["messages"][1]
    assert history["content"] == ""
    assert history["tool_calls"][0]["function"]["arguments"] == {"a": 1}
    assert isinstance(
        record["request"]["messages"][1]["tool_calls"][0]["function"]["arguments"], str
    )


def test_plain_answer_in_a_tool_calling_workload_keeps_its_text() -> None:
    record = make_record("thanks!", content="You're welcome.", tools=["search"])
    line = to_training_line(record, TOOL)
    assert line is not None
    assert line["messages"][-1] == {"role": "assistant", "content": "You're welcome."}
    assert line["tools"] == record["request"]["tools"]


def test_tool_calling_line_without_request_tools_has_no_tools_key() -> None:
    line = to_training_line(make_record("hi", content="hello"), TOOL)
    assert line is not None
    assert "tools" not in line


@pytest.mark.parametrize(
    "record",
    [
        {"response": {"choices": [{"message": {"role": "assistant", "content": "x"}}]}},
        {"request": {"messages": [{"role": "user", "content": "x"}]}},
        {"request": {"messages": "x"}, "response": {"choices": [{"message": {}}]}},
        {"request": {"messages": [{"role": "user", "content": "x"}]}, "response": {"choices": []}},
        {"request": "x", "response": {"choices": [{"message": {}}]}},
    ],
)
def test_unusable_records_give_no_training_line(record: dict[str, Any]) -> None:
    assert to_training_line(record, GENERIC) is None
    assert to_training_line(record, TOOL) is None
