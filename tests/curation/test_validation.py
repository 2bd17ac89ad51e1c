"""validate_record: which logged calls are kept, how they are normalised, and every drop reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from flywheel.curation import validation as v
from flywheel.curation.validation import check_record, validate_record
from flywheel.schemas import WorkloadType
from tests.curation.builders import make_record, tool_call, tool_def

TOOL = WorkloadType.TOOL_CALLING
GENERIC = WorkloadType.GENERIC


def validate(record: Any, **kwargs: Any) -> tuple[dict[str, Any] | None, str | None]:
    kwargs.setdefault("workload_type", TOOL)
    return validate_record(record, **kwargs)


def test_valid_tool_record_gets_parsed_arguments_without_mutating_the_input() -> None:
    record = make_record("where is my order", tool="order_status", arguments={"id": "42"})
    before = copy.deepcopy(record)

    kept, reason = validate(record)

    assert reason is None
    assert kept is not None
    call = kept["response"]["choices"][0]["message"]["tool_calls"][0]
    assert call == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "order_status", "arguments": {"id": "42"}},
    }
    assert record == before  # the input still holds the JSON string
    assert kept["request"] is record["request"]  # untouched parts are shared, not copied
    assert kept["response"]["usage"] is record["response"]["usage"]


def test_parse_function_arguments_false_keeps_strings_and_the_record() -> None:
    record = make_record(tool="search", arguments={"q": "x"})
    kept, reason = validate(record, parse_function_arguments=False)
    assert reason is None
    assert kept is record
    assert kept["response"]["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == (
        '{"q": "x"}'
    )


def test_already_parsed_arguments_are_kept() -> None:
    record = make_record(tool_calls=[])
    record["response"]["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": [1]}}}
        ],
    }
    kept, reason = validate(record)
    assert reason is None
    assert kept is record
    assert kept["response"]["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == {
        "a": [1]
    }


def test_only_the_string_calls_are_replaced() -> None:
    parsed = {"id": "c2", "type": "function", "function": {"name": "g", "arguments": {"b": 2}}}
    record = make_record(tool_calls=[tool_call("f", {"a": 1}), parsed], content=None)
    kept, _ = validate(record)
    assert kept is not None
    calls = kept["response"]["choices"][0]["message"]["tool_calls"]
    assert calls[0]["function"]["arguments"] == {"a": 1}
    assert calls[1] is parsed


def test_plain_answer_is_valid_in_both_workload_types() -> None:
    record = make_record(content="Paris")
    assert validate(record, workload_type=GENERIC) == (record, None)
    assert validate(record, workload_type=TOOL) == (record, None)


def _mutate(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set a nested key; path items are dict keys or list indexes."""

    def apply(record: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = record
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return apply


_DELETE = object()
MESSAGE = "response.choices.0.message"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_mutate("request", _DELETE), v.INVALID_FORMAT),
        (_mutate("response", _DELETE), v.INVALID_FORMAT),
        (_mutate("request", ["messages"]), v.INVALID_FORMAT),
        (_mutate("response", "ok"), v.INVALID_FORMAT),
        (_mutate("request.messages", "hi"), v.INVALID_FORMAT),
        (_mutate("request.messages", []), v.INVALID_FORMAT),
        (_mutate("request.messages", _DELETE), v.INVALID_FORMAT),
        (_mutate("request.messages.1", "hi"), v.INVALID_FORMAT),
        (_mutate("request.messages.1.role", "robot"), v.INVALID_FORMAT),
        (_mutate("request.messages.1.role", _DELETE), v.INVALID_FORMAT),
        (_mutate("response.choices", {"0": {}}), v.INVALID_FORMAT),
        (_mutate("response.choices.0", "text"), v.INVALID_FORMAT),
        (_mutate("response.choices.0.message", _DELETE), v.INVALID_FORMAT),
        (_mutate("response.error", {"message": "rate limited"}), v.ERROR_RESPONSE),
        (_mutate("response.choices", []), v.NO_CHOICES),
        (_mutate("response.choices", _DELETE), v.NO_CHOICES),
        (_mutate("request.tools", [tool_def("big", 9)]), v.TOO_MANY_TOOL_PROPERTIES),
        (_mutate("request.tools", "search"), v.BAD_TOOL_SCHEMA),
        (_mutate("request.tools.0.type", "retrieval"), v.BAD_TOOL_SCHEMA),
        (_mutate("request.tools.0.function.name", ""), v.BAD_TOOL_SCHEMA),
        (_mutate("request.tools.0.function", _DELETE), v.BAD_TOOL_SCHEMA),
        (_mutate(f"{MESSAGE}.tool_calls.0.type", "retrieval"), v.BAD_TOOL_CALL),
        (_mutate(f"{MESSAGE}.tool_calls.0.type", _DELETE), v.BAD_TOOL_CALL),
        (_mutate(f"{MESSAGE}.tool_calls.0.function.name", "  "), v.BAD_TOOL_CALL),
        (_mutate(f"{MESSAGE}.tool_calls.0.function", "search()"), v.BAD_TOOL_CALL),
        (_mutate(f"{MESSAGE}.tool_calls.0.function.arguments", [1, 2]), v.BAD_TOOL_CALL),
        (_mutate(f"{MESSAGE}.tool_calls", "search"), v.BAD_TOOL_CALL),
        (_mutate(f"{MESSAGE}.tool_calls.0.function.arguments", ""), v.UNPARSABLE_ARGUMENTS),
        (_mutate(f"{MESSAGE}.tool_calls.0.function.arguments", "  \n"), v.UNPARSABLE_ARGUMENTS),
        (_mutate(f"{MESSAGE}.tool_calls.0.function.arguments", '{"q": '), v.UNPARSABLE_ARGUMENTS),
        (_mutate(f"{MESSAGE}.tool_calls.0.function.arguments", "[1, 2]"), v.UNPARSABLE_ARGUMENTS),
        (_mutate(f"{MESSAGE}.tool_calls", []), v.EMPTY_ANSWER),
        (_mutate("response.choices.0.finish_reason", "length"), v.TRUNCATED_ANSWER),
    ],
)
def test_drop_reasons_of_a_tool_record(change: Callable[[Any], None], reason: str) -> None:
    record = make_record("find shoes", tool="search", tools=["search", "lookup"])
    change(record)
    assert validate(record) == (None, reason)
    assert validate(record, workload_type=GENERIC) == (None, reason)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, v.EMPTY_ANSWER), ("", v.EMPTY_ANSWER), ("  \n", v.EMPTY_ANSWER), ([], v.EMPTY_ANSWER)],
)
def test_empty_plain_answers_are_dropped(content: Any, reason: str) -> None:
    assert validate(make_record(content=content), workload_type=GENERIC) == (None, reason)


def test_content_parts_count_as_an_answer() -> None:
    record = make_record(content=[{"type": "text", "text": "hi"}])
    assert validate(record, workload_type=GENERIC) == (record, None)


def test_non_record_inputs_are_invalid_format() -> None:
    assert validate(None) == (None, v.INVALID_FORMAT)
    assert validate(["request", "response"]) == (None, v.INVALID_FORMAT)


def test_error_key_with_null_value_is_not_an_error() -> None:
    record = make_record(content="fine")
    record["response"]["error"] = None
    assert validate(record) == (record, None)


def test_null_tools_are_no_tools() -> None:
    record = make_record(content="fine")
    record["request"]["tools"] = None
    assert validate(record) == (record, None)


def test_tool_property_limit_is_configurable() -> None:
    eight = make_record(tool="search")
    eight["request"]["tools"] = [tool_def("search", 8)]
    nine = make_record(tool="search")
    nine["request"]["tools"] = [tool_def("search", 9)]

    assert validate(eight)[1] is None
    assert validate(nine) == (None, v.TOO_MANY_TOOL_PROPERTIES)
    assert validate(nine, max_tool_properties=None)[1] is None
    assert validate(nine, max_tool_properties=9)[1] is None
    assert validate(eight, max_tool_properties=2) == (None, v.TOO_MANY_TOOL_PROPERTIES)


def test_unparsable_arguments_drop_even_without_parsing() -> None:
    record = make_record(tool="search", arguments="")
    assert validate(record, parse_function_arguments=False) == (None, v.UNPARSABLE_ARGUMENTS)


def test_non_tool_records_in_tool_calling_workloads() -> None:
    plain = make_record(content="no tool needed")
    assert validate(plain, keep_non_tool_records=False) == (None, v.NO_TOOL_CALL)
    assert validate(plain, keep_non_tool_records=True) == (plain, None)
    assert validate(plain, workload_type=GENERIC, keep_non_tool_records=False) == (plain, None)
    tool = make_record(tool="search")
    assert validate(tool, keep_non_tool_records=False)[1] is None


def test_no_tool_call_check_runs_after_the_others() -> None:
    empty = make_record(content="")
    assert validate(empty, keep_non_tool_records=False) == (None, v.EMPTY_ANSWER)


def test_check_record_ignores_the_workload_rule() -> None:
    plain = make_record(content="no tool needed")
    assert check_record(plain) == (plain, None)


def test_reasons_are_distinct_and_complete() -> None:
    constants = {
        value
        for name, value in vars(v).items()
        if name.isupper() and isinstance(value, str) and name != "ROLES"
    }
    assert set(v.REASONS) == constants
    assert len(v.REASONS) == len(set(v.REASONS)) == 10
