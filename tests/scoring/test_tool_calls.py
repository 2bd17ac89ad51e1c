"""Tool-call extraction, argument normalisation and multiset comparison."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flywheel.scoring.tool_calls as tool_calls
from flywheel.scoring.tool_calls import (
    NO_ARGUMENTS,
    ToolCall,
    ToolCallMatch,
    compare_tool_calls,
    extract_call_names,
    extract_tool_calls,
    normalize_arguments,
)


def call(name: str | None, arguments: Any = None, *, call_id: str = "call_1") -> dict[str, Any]:
    """An OpenAI tool_calls entry (``name=None`` leaves the name out)."""
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    return {"id": call_id, "type": "function", "function": function}


def msg(*calls: dict[str, Any], content: str | None = None) -> dict[str, Any]:
    """An assistant message with the given tool calls (none: no ``tool_calls`` key)."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = list(calls)
    return message


def norm(raw: Any) -> Any:
    """The canonical arguments of a value that must parse."""
    ok, value = normalize_arguments(raw)
    assert ok, raw
    return value


# --- normalize_arguments ---------------------------------------------------------------------


class TestNormalizeArguments:
    def test_json_string_and_object_normalise_alike(self) -> None:
        assert norm('{"query": "shoes", "user_id": "4165"}') == '{"query":"shoes","user_id":"4165"}'
        assert norm({"user_id": "4165", "query": "shoes"}) == '{"query":"shoes","user_id":"4165"}'

    def test_key_order_does_not_matter(self) -> None:
        assert norm('{"b": 1, "a": 2}') == norm('{"a": 2, "b": 1}') == '{"a":2,"b":1}'

    def test_nested_objects_and_lists(self) -> None:
        left = '{"filter": {"tags": ["x", {"k": 1, "j": [1.0, 2]}], "z": null}, "a": true}'
        right = {"a": True, "filter": {"z": None, "tags": ["x", {"j": [1, 2.0], "k": 1.0}]}}
        assert norm(left) == norm(right)
        assert norm(right) == '{"a":true,"filter":{"tags":["x",{"j":[1,2],"k":1}],"z":null}}'

    def test_list_order_matters(self) -> None:
        assert norm({"ids": [1, 2]}) != norm({"ids": [2, 1]})

    def test_numbers_compare_by_value(self) -> None:
        assert norm('{"n": 1}') == norm('{"n": 1.0}') == norm({"n": 1.0}) == '{"n":1}'
        assert norm('{"n": 1e2}') == norm({"n": 100}) == '{"n":100}'
        assert norm('{"n": -0.0}') == norm({"n": 0})
        assert norm('{"n": 0.5}') == norm({"n": 0.50}) == '{"n":0.5}'
        assert norm({"n": 1.5}) != norm({"n": 1})

    def test_string_number_is_not_a_number(self) -> None:
        assert norm('{"n": "1"}') != norm('{"n": 1}')
        assert norm({"n": "1"}) == '{"n":"1"}'

    def test_bool_is_not_int(self) -> None:
        assert norm({"flag": True}) != norm({"flag": 1})
        assert norm('{"flag": false}') != norm('{"flag": 0}')
        assert norm('{"flag": false}') == norm({"flag": False}) == '{"flag":false}'

    def test_null_is_not_missing_inside_an_object(self) -> None:
        assert norm({"a": None}) != norm({})

    def test_unicode_strings_kept_verbatim(self) -> None:
        assert norm('{"city": "Zürich", "q": "猫"}') == '{"city":"Zürich","q":"猫"}'
        assert norm('{"city": "Z\\u00fcrich"}') == norm({"city": "Zürich"})

    def test_big_integers_beyond_64_bits(self) -> None:
        assert norm('{"id": 123456789012345678901234567890}') == norm(
            {"id": 123456789012345678901234567890}
        )
        assert norm('{"id": 123456789012345678901234567890}') != norm(
            {"id": 123456789012345678901234567891}
        )

    @pytest.mark.parametrize("raw", [None, "", "   ", "\n\t", "null", b"", {}, "{}", " {} "])
    def test_absent_or_empty_means_no_arguments(self, raw: Any) -> None:
        assert normalize_arguments(raw) == (True, NO_ARGUMENTS)
        assert NO_ARGUMENTS == "{}"

    @pytest.mark.parametrize(
        "raw",
        [
            "{",
            '{"a": 1',
            "{'a': 1}",
            "not json",
            '{"a": 1} trailing',
            '{"a": NaN}',
            '{"a": Infinity}',
            b"\xff\xfe",
            "[" * 5000 + "]" * 5000,
        ],
    )
    def test_unparsable_text(self, raw: Any) -> None:
        assert normalize_arguments(raw) == (False, None)

    @pytest.mark.parametrize(
        "raw",
        [{"a": float("nan")}, {"a": float("inf")}, {1: "a"}, {"a": {1, 2}}, object()],
    )
    def test_objects_that_are_not_json_data(self, raw: Any) -> None:
        assert normalize_arguments(raw) == (False, None)

    def test_bytes_parse_like_text(self) -> None:
        assert norm(b'{"b": 2, "a": 1}') == '{"a":1,"b":2}'

    def test_tuple_is_a_list(self) -> None:
        assert norm({"ids": (1, 2)}) == norm({"ids": [1, 2]})

    def test_non_object_json_is_kept_as_its_value(self) -> None:
        assert norm("[1, 2]") == "[1,2]"
        assert norm('"text"') == '"text"'
        assert norm("3") == norm(3.0) == "3"

    def test_double_encoded_json_is_not_unwrapped(self) -> None:
        assert norm('"{\\"a\\": 1}"') != norm('{"a": 1}')

    def test_string_escapes_are_canonical(self) -> None:
        assert norm('{"q": "say \\"hi\\"\\n"}') == norm({"q": 'say "hi"\n'})


# --- extract_tool_calls ----------------------------------------------------------------------


class TestExtractToolCalls:
    def test_extracts_names_and_arguments_in_order(self) -> None:
        message = msg(call("search", '{"q": "x"}'), call("lookup", {"id": 3}, call_id="call_2"))
        assert extract_tool_calls(message) == [
            ToolCall(name="search", arguments='{"q":"x"}', arguments_ok=True),
            ToolCall(name="lookup", arguments='{"id":3}', arguments_ok=True),
        ]

    @pytest.mark.parametrize(
        "message",
        [
            None,
            {},
            {"role": "assistant", "content": "hi"},
            {"role": "assistant", "content": "hi", "tool_calls": None},
            {"role": "assistant", "content": "hi", "tool_calls": []},
            "not a message",
        ],
    )
    def test_no_tool_calls(self, message: Any) -> None:
        assert extract_tool_calls(message) == []

    def test_unparsable_arguments_are_flagged(self) -> None:
        assert extract_tool_calls(msg(call("search", "{oops"))) == [
            ToolCall(name="search", arguments=None, arguments_ok=False)
        ]

    def test_missing_arguments_key_means_no_arguments(self) -> None:
        message = {"tool_calls": [{"type": "function", "function": {"name": "ping"}}]}
        assert extract_tool_calls(message) == [ToolCall("ping", "{}", True)]

    def test_missing_name_gives_a_nameless_call(self) -> None:
        assert extract_tool_calls(msg(call(None, {"a": 1}))) == [ToolCall("", '{"a":1}', True)]

    def test_non_string_name_gives_a_nameless_call(self) -> None:
        message = {"tool_calls": [{"function": {"name": 42, "arguments": "{}"}}]}
        assert extract_tool_calls(message) == [ToolCall("", "{}", True)]

    @pytest.mark.parametrize("entry", [{"id": "x", "type": "function"}, {"function": "x"}, "x"])
    def test_missing_function_gives_a_malformed_call(self, entry: Any) -> None:
        assert extract_tool_calls({"tool_calls": [entry]}) == [ToolCall("", None, False)]

    def test_tool_calls_that_is_not_a_list_is_one_malformed_call(self) -> None:
        message = {"tool_calls": {"function": {"name": "a"}}}
        assert extract_tool_calls(message) == [ToolCall("", None, False)]

    def test_legacy_function_call(self) -> None:
        message = {"content": None, "function_call": {"name": "f", "arguments": '{"x": 1}'}}
        assert extract_tool_calls(message) == [ToolCall("f", '{"x":1}', True)]

    def test_tool_calls_win_over_legacy_function_call(self) -> None:
        message = {
            "tool_calls": [call("g", "{}")],
            "function_call": {"name": "f", "arguments": "{}"},
        }
        assert [c.name for c in extract_tool_calls(message)] == ["g"]

    def test_tool_call_is_frozen(self) -> None:
        tool_call = ToolCall("a", "{}", True)
        with pytest.raises(AttributeError):
            tool_call.name = "b"  # type: ignore[misc]


# --- compare_tool_calls ----------------------------------------------------------------------

BOTH = ToolCallMatch(name=True, name_and_args=True)
NAME_ONLY = ToolCallMatch(name=True, name_and_args=False)
NEITHER = ToolCallMatch(name=False, name_and_args=False)


class TestCompareToolCalls:
    def test_identical_calls(self) -> None:
        m = msg(call("search", '{"q": "shoes", "user_id": "4165"}'))
        assert compare_tool_calls(m, m) == BOTH

    def test_string_vs_object_arguments_with_reordered_keys(self) -> None:
        expected = msg(call("search", {"user_id": "4165", "q": "shoes"}))
        predicted = msg(call("search", '{"q":"shoes","user_id":"4165"}', call_id="other"))
        assert compare_tool_calls(expected, predicted) == BOTH
        assert compare_tool_calls(predicted, expected) == BOTH

    def test_int_vs_float_arguments_match(self) -> None:
        assert compare_tool_calls(msg(call("f", {"n": 1})), msg(call("f", '{"n": 1.0}'))) == BOTH

    def test_string_vs_number_arguments_differ(self) -> None:
        assert compare_tool_calls(msg(call("f", {"n": 1})), msg(call("f", '{"n": "1"}'))) == (
            NAME_ONLY
        )

    def test_bool_vs_int_arguments_differ(self) -> None:
        assert compare_tool_calls(msg(call("f", {"b": True})), msg(call("f", {"b": 1}))) == (
            NAME_ONLY
        )

    def test_wrong_argument_value(self) -> None:
        expected = msg(call("search", {"q": "shoes"}))
        assert compare_tool_calls(expected, msg(call("search", {"q": "boots"}))) == NAME_ONLY

    def test_missing_or_extra_argument_key(self) -> None:
        expected = msg(call("search", {"q": "shoes", "limit": 5}))
        assert compare_tool_calls(expected, msg(call("search", {"q": "shoes"}))) == NAME_ONLY
        extra = msg(call("search", {"q": "shoes", "limit": 5, "x": 0}))
        assert compare_tool_calls(expected, extra) == NAME_ONLY

    def test_wrong_name(self) -> None:
        assert compare_tool_calls(msg(call("a", "{}")), msg(call("b", "{}"))) == NEITHER

    def test_names_are_case_sensitive(self) -> None:
        assert compare_tool_calls(msg(call("Search", "{}")), msg(call("search", "{}"))) == NEITHER

    def test_unparsable_predicted_arguments(self) -> None:
        expected = msg(call("search", {"q": "x"}))
        assert compare_tool_calls(expected, msg(call("search", '{"q": "x"'))) == NAME_ONLY

    def test_unparsable_on_both_sides_does_not_match(self) -> None:
        bad = msg(call("search", "{oops"))
        assert compare_tool_calls(bad, bad) == NAME_ONLY

    def test_unparsable_expected_arguments_cannot_be_matched(self) -> None:
        expected = msg(call("search", "{oops"))
        assert compare_tool_calls(expected, msg(call("search", {"q": "x"}))) == NAME_ONLY

    @pytest.mark.parametrize("empty", [None, "", "{}", {}, "null"])
    def test_empty_arguments_match_each_other(self, empty: Any) -> None:
        assert compare_tool_calls(msg(call("ping", None)), msg(call("ping", empty))) == BOTH

    def test_multiple_calls_in_a_different_order(self) -> None:
        expected = msg(call("a", {"x": 1}), call("b", {"y": 2}))
        predicted = msg(call("b", '{"y": 2}'), call("a", '{"x": 1.0}'))
        assert compare_tool_calls(expected, predicted) == BOTH

    def test_arguments_must_pair_with_their_own_name(self) -> None:
        expected = msg(call("a", {"x": 1}), call("b", {"y": 2}))
        predicted = msg(call("a", {"y": 2}), call("b", {"x": 1}))
        assert compare_tool_calls(expected, predicted) == NAME_ONLY

    def test_duplicate_calls_are_a_multiset(self) -> None:
        twice = msg(call("a", {"x": 1}), call("a", {"x": 1}))
        once = msg(call("a", {"x": 1}))
        assert compare_tool_calls(twice, once) == NEITHER
        assert compare_tool_calls(once, twice) == NEITHER
        assert compare_tool_calls(twice, twice) == BOTH

    def test_duplicate_names_with_different_arguments(self) -> None:
        expected = msg(call("a", {"x": 1}), call("a", {"x": 2}))
        assert compare_tool_calls(expected, msg(call("a", {"x": 2}), call("a", {"x": 1}))) == BOTH
        assert compare_tool_calls(expected, msg(call("a", {"x": 1}), call("a", {"x": 1}))) == (
            NAME_ONLY
        )

    def test_one_extra_call(self) -> None:
        expected = msg(call("a", "{}"))
        assert compare_tool_calls(expected, msg(call("a", "{}"), call("b", "{}"))) == NEITHER

    @pytest.mark.parametrize("plain", [None, {}, msg(content="hello"), {"tool_calls": []}])
    def test_neither_calls_a_tool(self, plain: Any) -> None:
        assert compare_tool_calls(msg(content="the answer"), plain) == BOTH
        assert compare_tool_calls(plain, None) == BOTH

    def test_expected_none_but_predicted_calls(self) -> None:
        assert compare_tool_calls(msg(content="hi"), msg(call("a", "{}"))) == NEITHER

    def test_expected_calls_but_predicted_none(self) -> None:
        assert compare_tool_calls(msg(call("a", "{}")), msg(content="I would call a")) == NEITHER
        assert compare_tool_calls(msg(call("a", "{}")), None) == NEITHER

    def test_nameless_calls_never_match(self) -> None:
        nameless = msg(call(None, "{}"))
        assert compare_tool_calls(nameless, nameless) == NEITHER
        assert compare_tool_calls(msg(call("a", "{}")), nameless) == NEITHER

    def test_malformed_prediction_is_not_no_call(self) -> None:
        predicted = {"role": "assistant", "tool_calls": [{"id": "x"}]}
        assert compare_tool_calls(msg(content="plain answer"), predicted) == NEITHER

    def test_legacy_function_call_against_tool_calls(self) -> None:
        expected = msg(call("f", {"x": 1}))
        predicted = {"function_call": {"name": "f", "arguments": '{"x": 1}'}}
        assert compare_tool_calls(expected, predicted) == BOTH


class TestArgumentEqualityPins:
    """The equalities tool metrics rely on: layout never matters, string values always do."""

    def test_whitespace_and_layout_of_json_text_do_not_matter(self) -> None:
        pretty = '{\n  "q" : "shoes",\n\t"filter": { "size" : [ 42 , 43 ] }\n}\n'
        assert norm(pretty) == norm('{"filter":{"size":[42,43]},"q":"shoes"}')

    def test_string_values_are_not_case_folded(self) -> None:
        assert norm({"city": "Paris"}) != norm({"city": "paris"})
        expected, predicted = msg(call("f", {"c": "Paris"})), msg(call("f", {"c": "paris"}))
        assert compare_tool_calls(expected, predicted) == NAME_ONLY

    def test_whitespace_inside_string_values_matters(self) -> None:
        assert norm({"q": "red shoes"}) != norm({"q": "red  shoes"})
        assert norm({"q": "red shoes"}) != norm({"q": " red shoes"})

    def test_keys_are_exact(self) -> None:
        assert norm({"Query": "x"}) != norm({"query": "x"})


@pytest.mark.parametrize(
    "message",
    [
        None,
        {"role": "assistant", "content": "hi"},
        {"tool_calls": [{"function": {"name": "a", "arguments": "{bad"}}, {"function": {}}]},
        {"tool_calls": "oops"},
        {"tool_calls": [], "function_call": {"name": "legacy", "arguments": "{}"}},
        {"tool_calls": [None, {"function": {"name": 3}}, {"type": "function"}]},
    ],
)
def test_call_names_match_the_full_extraction(message: Any) -> None:
    assert extract_call_names(message) == [c.name for c in extract_tool_calls(message)]


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), _json_leaf, max_size=6))
def test_fast_canonical_form_equals_the_general_one(value: dict[str, Any]) -> None:
    assert tool_calls._canonical(value) == tool_calls._canonical_slow(value)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        _json_leaf | st.floats(allow_nan=False, allow_infinity=False),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_fast_parse_equals_the_stdlib_parse(value: Any) -> None:
    import json

    text = json.dumps(value)
    assert tool_calls._loads(text) == json.loads(text)
    if not isinstance(value, str):  # a str argument is itself JSON text to parse
        assert normalize_arguments(text) == normalize_arguments(value)
