"""Parsing local models' generated text into OpenAI assistant messages (tool_parsing)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.platforms.tool_parsing import parse_assistant_output
from flywheel.scoring.tool_calls import compare_tool_calls

W = {"city": "Paris"}
"""Arguments used throughout the table."""


def calls_of(message: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, parsed arguments) of each tool call of a parsed message."""
    return [
        (call["function"]["name"], json.loads(call["function"]["arguments"]))
        for call in message.get("tool_calls", [])
    ]


def hermes(name: str, arguments: Any, key: str = "arguments") -> str:
    return f"<tool_call>\n{json.dumps({'name': name, key: arguments})}\n</tool_call>"


# (id, text, expected calls, expected content)
CASES: list[tuple[str, str, list[tuple[str, Any]], str | None]] = [
    # --- Hermes / Qwen <tool_call> tags
    ("hermes-1", hermes("get_weather", W), [("get_weather", W)], None),
    (
        "hermes-2",
        hermes("get_weather", W) + "\n" + hermes("get_time", {"tz": "CET"}),
        [("get_weather", W), ("get_time", {"tz": "CET"})],
        None,
    ),
    (
        "hermes-compact",
        '<tool_call>{"name":"f","arguments":{"a":1}}</tool_call>',
        [("f", {"a": 1})],
        None,
    ),
    (
        "hermes-whitespace-inside",
        '<tool_call>\n\n  {\n  "name" : "f" ,\n  "arguments" : { "a" : 1 }\n}\n\n</tool_call>',
        [("f", {"a": 1})],
        None,
    ),
    (
        "hermes-unclosed",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}',
        [("get_weather", W)],
        None,
    ),
    (
        "hermes-unclosed-then-another",
        '<tool_call>{"name": "f", "arguments": {}}\n<tool_call>{"name": "g", "arguments": {}}',
        [("f", {}), ("g", {})],
        None,
    ),
    (
        "hermes-two-objects-one-tag",
        '<tool_call>\n{"name": "f", "arguments": {}}\n{"name": "g", "arguments": {}}\n</tool_call>',
        [("f", {}), ("g", {})],
        None,
    ),
    (
        "hermes-prose-before-after",
        "Let me look that up.\n" + hermes("get_weather", W) + "\nOne moment.",
        [("get_weather", W)],
        "Let me look that up.\nOne moment.",
    ),
    (
        "hermes-prose-between",
        "First:" + hermes("f", {}) + " then: " + hermes("g", {}) + "<|im_end|>",
        [("f", {}), ("g", {})],
        "First:\nthen:",
    ),
    (
        "hermes-list-inside-tag",
        '<tool_call>[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}]</tool_call>',
        [("f", {}), ("g", {})],
        None,
    ),
    (
        "hermes-fenced-inside-tag",
        '<tool_call>\n```json\n{"name": "f", "arguments": {"a": [1]}}\n```\n</tool_call>',
        [("f", {"a": [1]})],
        None,
    ),
    ("hermes-parameters-key", hermes("f", W, key="parameters"), [("f", W)], None),
    # --- SmolLM2 / plain JSON lists and objects
    ("list-1", '[{"name": "f", "arguments": {"a": 1}}]', [("f", {"a": 1})], None),
    (
        "list-2",
        '[{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {"b": "x"}}]',
        [("f", {"a": 1}), ("g", {"b": "x"})],
        None,
    ),
    (
        "list-fenced",
        'Here you go:\n```json\n[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {}}]'
        "\n```\nAnything else?",
        [("f", {}), ("g", {})],
        "Here you go:\nAnything else?",
    ),
    (
        "list-fenced-no-language",
        '```\n[{"name": "f", "arguments": {}}]\n```',
        [("f", {})],
        None,
    ),
    (
        "list-fenced-unclosed",
        '```json\n[{"name": "f", "arguments": {}}]',
        [("f", {})],
        None,
    ),
    (
        "two-objects-in-one-fence",
        '```json\n{"name": "f", "arguments": {}}\n{"name": "g", "arguments": {}}\n```',
        [("f", {}), ("g", {})],
        None,
    ),
    ("object-arguments", '{"name": "f", "arguments": {"a": 1}}', [("f", {"a": 1})], None),
    ("object-parameters", '{"name": "f", "parameters": {"a": 1}}', [("f", {"a": 1})], None),
    (
        "object-fenced-with-prose",
        'I will call it.\n```json\n{"name": "f", "arguments": {"a": 1}}\n```',
        [("f", {"a": 1})],
        "I will call it.",
    ),
    # --- Llama 3.x JSON
    (
        "llama-python-tag",
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}<|eom_id|>',
        [("get_weather", W)],
        None,
    ),
    (
        "llama-type-function",
        '{"type": "function", "name": "get_weather", "parameters": {"city": "Paris"}}',
        [("get_weather", W)],
        None,
    ),
    (
        "llama-two-semicolon",
        '{"name": "f", "parameters": {"a": 1}}; {"name": "g", "parameters": {"b": 2}}',
        [("f", {"a": 1}), ("g", {"b": 2})],
        None,
    ),
    (
        "llama-python-tag-eot",
        '<|python_tag|>{"type": "function", "name": "f", "parameters": {}}<|eot_id|>',
        [("f", {})],
        None,
    ),
    (
        "mistral-marker",
        '[TOOL_CALLS][{"name": "f", "arguments": {"a": 1}}]',
        [("f", {"a": 1})],
        None,
    ),
    # --- OpenAI-shaped objects
    (
        "openai-tool-calls-1",
        json.dumps(
            {
                "tool_calls": [
                    {
                        "id": "abc",
                        "type": "function",
                        "function": {"name": "f", "arguments": json.dumps(W)},
                    }
                ]
            }
        ),
        [("f", W)],
        None,
    ),
    (
        "openai-tool-calls-2",
        json.dumps(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"function": {"name": "f", "arguments": "{}"}},
                    {"function": {"name": "g", "arguments": {"x": [1, 2]}}},
                ],
            }
        ),
        [("f", {}), ("g", {"x": [1, 2]})],
        None,
    ),
    (
        "openai-function-object",
        '{"type": "function", "function": {"name": "f", "arguments": "{\\"a\\": 1}"}}',
        [("f", {"a": 1})],
        None,
    ),
    ("openai-function-no-arguments", '{"function": {"name": "f"}}', [("f", {})], None),
    (
        "openai-function-list",
        '[{"function": {"name": "f", "arguments": {}}}, {"function": {"name": "g"}}]',
        [("f", {}), ("g", {})],
        None,
    ),
    (
        "legacy-function-call",
        '{"function_call": {"name": "f", "arguments": "{}"}}',
        [("f", {})],
        None,
    ),
    (
        "tool-calls-flat-entries",
        '{"tool_calls": [{"name": "f", "arguments": {"a": 1}}]}',
        [("f", {"a": 1})],
        None,
    ),
    # --- arguments: encodings and values
    (
        "arguments-string",
        '{"name": "f", "arguments": "{\\"city\\": \\"Paris\\"}"}',
        [("f", W)],
        None,
    ),
    (
        "arguments-double-encoded",
        json.dumps({"name": "f", "arguments": json.dumps(json.dumps(W))}),
        [("f", W)],
        None,
    ),
    (
        "arguments-triple-encoded",
        json.dumps({"name": "f", "arguments": json.dumps(json.dumps(json.dumps(W)))}),
        [("f", W)],
        None,
    ),
    ("arguments-missing-openai", '{"function": {"name": "f"}}', [("f", {})], None),
    ("arguments-null", '{"name": "f", "arguments": null}', [("f", {})], None),
    ("arguments-empty-string", '{"name": "f", "arguments": ""}', [("f", {})], None),
    ("arguments-blank-string", '{"name": "f", "arguments": "  "}', [("f", {})], None),
    (
        "arguments-scalars",
        '{"name": "f", "arguments": {"n": 3, "x": -1.5e3, "ok": true, "no": false, "z": null}}',
        [("f", {"n": 3, "x": -1500.0, "ok": True, "no": False, "z": None})],
        None,
    ),
    (
        "arguments-big-int-exact",
        '{"name": "f", "arguments": {"id": 123456789012345678901234567890}}',
        [("f", {"id": 123456789012345678901234567890})],
        None,
    ),
    (
        "arguments-nested",
        '<tool_call>{"name": "f", "arguments": {"a": {"b": [1, {"c": [[], {}]}]}, "d": []}}'
        "</tool_call>",
        [("f", {"a": {"b": [1, {"c": [[], {}]}]}, "d": []})],
        None,
    ),
    (
        "arguments-braces-and-quotes-in-strings",
        json.dumps({"name": "f", "arguments": {"q": "a}b]{c[\"d\" \\ 'e'", "r": "</tool_call>"}}),
        [("f", {"q": "a}b]{c[\"d\" \\ 'e'", "r": "</tool_call>"})],
        None,
    ),
    (
        "arguments-unicode",
        hermes("traduire", {"texte": "Ça coûte 5 € — 東京 🚀"}),
        [("traduire", {"texte": "Ça coûte 5 € — 東京 🚀"})],
        None,
    ),
    (
        "arguments-unicode-raw",
        '{"name": "f", "arguments": {"t": "東京 🚀"}}',
        [("f", {"t": "東京 🚀"})],
        None,
    ),
    (
        "arguments-raw-newline-in-string",
        '{"name": "f", "arguments": {"t": "line one\nline two"}}',
        [("f", {"t": "line one\nline two"})],
        None,
    ),
    # non-object arguments: still a call (the name may be right), arguments kept as given
    ("arguments-list", '{"name": "f", "arguments": [1, 2]}', [("f", [1, 2])], None),
    ("arguments-number", '{"name": "f", "arguments": 7}', [("f", 7)], None),
    ("arguments-plain-string", '{"name": "f", "arguments": "Paris"}', [("f", "Paris")], None),
    (
        "arguments-truncated-string",
        '{"name": "f", "arguments": "{\\"a\\": 1"}',
        [("f", '{"a": 1')],
        None,
    ),
    # --- repairs
    (
        "trailing-commas",
        '{"name": "f", "arguments": {"a": [1, 2,],},}',
        [("f", {"a": [1, 2]})],
        None,
    ),
    (
        "single-quotes",
        "{'name': 'f', 'arguments': {'q': \"it's\", 'r': 'say \"hi\"', 's': 'a\\'b'}}",
        [("f", {"q": "it's", "r": 'say "hi"', "s": "a'b"})],
        None,
    ),
    (
        "python-literals",
        "[{'name': 'f', 'arguments': {'a': True, 'b': False, 'c': None}}]",
        [("f", {"a": True, "b": False, "c": None})],
        None,
    ),
    (
        "name-whitespace-stripped",
        '{"name": " f ", "arguments": {}}',
        [("f", {})],
        None,
    ),
    # --- partially broken output: what parses is kept
    (
        "truncated-list-keeps-complete-calls",
        '[{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {"b": ',
        [("f", {"a": 1})],
        '[\n, {"name": "g", "arguments": {"b":',  # the leftovers, pieces one per line
    ),
    (
        "broken-tag-then-good-tag",
        "<tool_call>{oops}</tool_call>\n" + hermes("f", {}),
        [("f", {})],
        "<tool_call>{oops}</tool_call>",
    ),
    (
        "unknown-tool-is-still-a-call",
        hermes("launch_rockets", {"n": 3}),
        [("launch_rockets", {"n": 3})],
        None,
    ),
    (
        "data-then-call",
        'Result so far: {"temp": 21, "unit": "C"}\n' + hermes("f", {}),
        [("f", {})],
        'Result so far: {"temp": 21, "unit": "C"}',
    ),
    (
        "tool-definition-echoed-beside-call",
        '{"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}}'
        + hermes("f", {}),
        [("f", {})],
        '{"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}}',
    ),
]

# Outputs with no call in them: the whole text (stripped) is the content.
NO_CALLS: list[tuple[str, str]] = [
    ("empty", ""),
    ("whitespace", "  \n\t "),
    ("prose", "The weather in Paris is sunny, 21°C."),
    ("prose-with-braces", "Use {curly} braces and [square {brackets}] freely; f(x) = {x | x > 0}."),
    ("data-object", '{"temperature": 21, "unit": "C"}'),
    ("data-name-person", '{"name": "Alice", "age": 30}'),
    ("data-name-not-string", '{"name": 42, "arguments": {}}'),
    ("data-name-empty", '{"name": "", "arguments": {}}'),
    ("data-name-null", '{"name": null, "arguments": {"a": 1}}'),
    ("data-name-only", '{"name": "f"}'),
    ("data-list", '[{"id": 1}, {"id": 2}]'),
    ("data-list-mixed", '[{"name": "f", "arguments": {}}, {"id": 2}]'),
    ("data-list-of-numbers", "[1, 2, 3]"),
    ("data-empty-list", "[]"),
    ("data-type-not-function", '{"type": "text", "name": "f", "arguments": {}}'),
    ("data-tool-calls-empty", '{"tool_calls": []}'),
    ("data-tool-calls-not-calls", '{"tool_calls": [{"id": 1}]}'),
    ("data-tool-definition", '{"type": "function", "function": {"name": "f", "description": "x"}}'),
    ("data-nested-call-shape", '{"result": {"name": "f", "arguments": {}}}'),
    ("truncated-json", '{"name": "get_weather", "arguments": {"city": "Par'),
    ("truncated-in-tag", '<tool_call>\n{"name": "get_weather", "arguments": {"city": '),
    ("empty-tag", "<tool_call></tool_call>"),
    ("garbage-in-tag", "<tool_call>call get_weather for Paris</tool_call>"),
    ("unquoted-keys", "{name: f, arguments: {}}"),
    ("mismatched-brackets", '{"name": "f", "arguments": {"a": [1}]}'),
    ("nan-arguments", '{"name": "f", "arguments": {"x": NaN}}'),
    ("code-fence-prose", "```python\nprint({'a': 1})\n```"),
    ("only-python-tag", "<|python_tag|>"),
]


@pytest.mark.parametrize(
    ("text", "expected", "content"),
    [pytest.param(text, expected, content, id=name) for name, text, expected, content in CASES],
)
def test_parses_calls(text: str, expected: list[tuple[str, Any]], content: str | None) -> None:
    message = parse_assistant_output(text)
    assert message["role"] == "assistant"
    assert calls_of(message) == expected
    assert message["content"] == content
    for index, call in enumerate(message["tool_calls"]):
        assert call["id"] == f"call_{index}"
        assert call["type"] == "function"
        assert set(call["function"]) == {"name", "arguments"}


@pytest.mark.parametrize("text", [pytest.param(text, id=name) for name, text in NO_CALLS])
def test_text_without_calls_is_content(text: str) -> None:
    assert parse_assistant_output(text) == {"role": "assistant", "content": text.strip()}
    assert parse_assistant_output(text, tool_names={"get_weather", "search"}) == {
        "role": "assistant",
        "content": text.strip(),
    }


def test_exact_message_shape() -> None:
    message = parse_assistant_output(
        'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", '
        '"days": 2}}\n</tool_call>\n<tool_call>{"name": "get_time", "arguments": "{}"}</tool_call>'
    )
    assert message == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris","days":2}'},
            },
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_time", "arguments": "{}"},
            },
        ],
    }


def test_arguments_are_compact_and_keep_key_order_and_unicode() -> None:
    message = parse_assistant_output('{"name": "f", "arguments": {"z": 1, "a": "é", "m": [1, 2]}}')
    assert message["tool_calls"][0]["function"]["arguments"] == '{"z":1,"a":"é","m":[1,2]}'


def test_known_tool_name_without_arguments_is_a_call() -> None:
    assert parse_assistant_output('{"name": "get_time"}') == {
        "role": "assistant",
        "content": '{"name": "get_time"}',
    }
    message = parse_assistant_output('{"name": "get_time"}', tool_names=["get_time"])
    assert calls_of(message) == [("get_time", {})]
    assert message["content"] is None


def test_unknown_tool_name_is_still_a_call_with_tool_names() -> None:
    message = parse_assistant_output(hermes("rm_rf", {}), tool_names={"get_weather"})
    assert calls_of(message) == [("rm_rf", {})]


def test_data_stays_content_with_tool_names() -> None:
    text = 'The answer is {"name": "Alice", "age": 30}.'
    assert parse_assistant_output(text, tool_names={"get_weather"}) == {
        "role": "assistant",
        "content": text,
    }


def test_scored_by_the_evaluator() -> None:
    """The parsed message is what the scorer reads: names and arguments compare as expected."""
    expected = {
        "role": "assistant",
        "tool_calls": [
            {
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    good = parse_assistant_output(hermes("get_weather", W))
    wrong_args = parse_assistant_output(hermes("get_weather", {"city": "Lyon"}))
    prose = parse_assistant_output("It is sunny in Paris.")
    match = compare_tool_calls(expected, good)
    assert (match.name, match.name_and_args) == (True, True)
    match = compare_tool_calls(expected, wrong_args)
    assert (match.name, match.name_and_args) == (True, False)
    match = compare_tool_calls(expected, prose)
    assert (match.name, match.name_and_args) == (False, False)
    non_object = parse_assistant_output('{"name": "get_weather", "arguments": "Paris"}')
    match = compare_tool_calls(expected, non_object)
    assert (match.name, match.name_and_args) == (True, False)


@pytest.mark.parametrize(
    "text",
    [
        '{"' * 5000,
        "[{" * 5000,
        '{"a": ' * 5000,
        "[" * 3000 + "]" * 3000,
        "{" * 100_000,
        "x" * 200_000,
    ],
    ids=["open-strings", "open-lists", "open-objects", "deep-nesting", "braces", "long-prose"],
)
def test_adversarial_text_is_fast(text: str) -> None:
    started = time.perf_counter()
    message = parse_assistant_output(text)
    assert time.perf_counter() - started < 2.0
    assert message == {"role": "assistant", "content": text.strip()}


def test_deeply_nested_arguments_do_not_raise() -> None:
    deep = '{"name": "f", "arguments": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}"
    message = parse_assistant_output(deep)
    assert message["role"] == "assistant"


def test_call_after_long_prose_is_found() -> None:
    text = "word " * 20_000 + hermes("f", {"a": 1})
    message = parse_assistant_output(text)
    assert calls_of(message) == [("f", {"a": 1})]
    assert message["content"] == ("word " * 20_000).strip()


# --- properties

_FRAGMENTS = [
    "<tool_call>",
    "</tool_call>",
    "<|python_tag|>",
    "```json\n",
    "```",
    "{",
    "}",
    "[",
    "]",
    '"',
    "'",
    "\\",
    ",",
    ":",
    '"name"',
    '"arguments"',
    '"parameters"',
    '"tool_calls"',
    '"function"',
    '"f"',
    "1",
    "true",
    "None",
    "NaN",
    " ",
    "\n",
    "prose",
    "é🚀",
    '{"name": "f", "arguments": {}}',
    '"{\\"a\\": 1}"',
]


def _check_message(message: Any, text: str) -> None:
    """The invariants every parsed message satisfies."""
    assert isinstance(message, dict)
    assert message["role"] == "assistant"
    if "tool_calls" not in message:
        assert set(message) == {"role", "content"}
        assert message["content"] == text.strip()
        return
    assert set(message) == {"role", "content", "tool_calls"}
    assert message["tool_calls"]
    assert message["content"] is None or (
        isinstance(message["content"], str)
        and message["content"] == message["content"].strip()
        and message["content"]
    )
    for index, call in enumerate(message["tool_calls"]):
        assert call["id"] == f"call_{index}"
        assert call["type"] == "function"
        assert isinstance(call["function"]["name"], str) and call["function"]["name"]
        json.loads(call["function"]["arguments"])  # always valid JSON text


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    _check_message(parse_assistant_output(text), text)
    _check_message(parse_assistant_output(text, tool_names={"f"}), text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join))
def test_tool_call_like_text_never_raises(text: str) -> None:
    _check_message(parse_assistant_output(text), text)
    _check_message(parse_assistant_output(text, tool_names={"f"}), text)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_ARGUMENTS = st.dictionaries(st.text(), _JSON, max_size=5)
_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,30}", fullmatch=True)
_CALLS = st.lists(st.tuples(_NAMES, _ARGUMENTS), min_size=1, max_size=3)
_PROSE = st.text(st.characters(blacklist_characters="{}[]<>`'\"\\;,"), max_size=40)


def _render(style: str, calls: list[tuple[str, dict[str, Any]]], ascii_only: bool) -> str:
    """Calls written the way a model of the given family writes them."""

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=ascii_only)

    if style == "hermes":
        return "\n".join(
            f"<tool_call>\n{dumps({'name': n, 'arguments': a})}\n</tool_call>" for n, a in calls
        )
    if style == "list":
        return dumps([{"name": n, "arguments": a} for n, a in calls])
    if style == "fenced-list":
        return "```json\n" + dumps([{"name": n, "arguments": a} for n, a in calls]) + "\n```"
    if style == "llama":
        return "<|python_tag|>" + "; ".join(dumps({"name": n, "parameters": a}) for n, a in calls)
    if style == "openai":
        entries = [
            {"id": f"x{i}", "type": "function", "function": {"name": n, "arguments": dumps(a)}}
            for i, (n, a) in enumerate(calls)
        ]
        return dumps({"tool_calls": entries})
    raise AssertionError(style)


@settings(max_examples=300, deadline=None)
@given(
    style=st.sampled_from(["hermes", "list", "fenced-list", "llama", "openai"]),
    calls=_CALLS,
    ascii_only=st.booleans(),
    before=_PROSE,
    after=_PROSE,
)
def test_round_trip(
    style: str,
    calls: list[tuple[str, dict[str, Any]]],
    ascii_only: bool,
    before: str,
    after: str,
) -> None:
    text = f"{before}\n{_render(style, calls, ascii_only)}\n{after}"
    message = parse_assistant_output(text, tool_names=[name for name, _ in calls])
    assert calls_of(message) == calls
    leftover = [piece.strip() for piece in (before, after) if piece.strip()]
    assert message["content"] == ("\n".join(leftover) or None)
