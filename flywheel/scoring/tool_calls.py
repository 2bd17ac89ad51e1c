"""Tool-call metrics: did the candidate call the same functions, with the same arguments?

Both sides are OpenAI chat ``message`` dicts. Arguments may be JSON text or already-parsed
objects, on either side; they are compared as JSON *values* in a canonical form, so key order and
``1`` versus ``1.0`` do not matter while ``"1"`` versus ``1`` and ``true`` versus ``1`` do.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "NO_ARGUMENTS",
    "ToolCall",
    "ToolCallMatch",
    "compare_tool_calls",
    "extract_tool_calls",
    "normalize_arguments",
]

NO_ARGUMENTS = "{}"
"""The normalised form of absent arguments (None, ``""``, whitespace, JSON ``null``)."""


class _NotJson(ValueError):
    """A value cannot be written as JSON (NaN, a set, a non-string key, ...)."""


@dataclass(frozen=True)
class ToolCall:
    """One function call of a message.

    ``arguments`` is the canonical JSON text of the arguments (see :func:`normalize_arguments`),
    or None when they could not be parsed (then ``arguments_ok`` is False). ``name`` is ``""``
    when the call has no function name (a malformed call: it still counts, but never matches).
    """

    name: str
    arguments: Any
    arguments_ok: bool


@dataclass(frozen=True)
class ToolCallMatch:
    """How the predicted message's tool calls compare with the expected message's."""

    name: bool
    name_and_args: bool


def normalize_arguments(raw: Any) -> tuple[bool, Any]:
    """Parse and canonicalise function-call arguments; return ``(ok, canonical JSON text)``.

    * A ``str``/``bytes`` is parsed as JSON; unparsable text gives ``(False, None)``.
    * ``None``, an empty or whitespace-only string and JSON ``null`` mean "no arguments" and give
      ``(True, "{}")``, the same as an empty object: OpenAI-compatible servers send any of them
      for a function without parameters.
    * Any other value (dict, list, number, ...) is taken as already-parsed JSON. One that is not
      JSON data (NaN, a set, a non-string key) gives ``(False, None)``.

    The canonical text sorts object keys, has no whitespace, and writes every finite integral
    number as an integer, so two results are equal exactly when the values are equal as JSON:
    key order and ``1`` vs ``1.0`` do not matter; ``"1"`` vs ``1`` and ``true`` vs ``1`` do.
    A JSON string that itself holds JSON (double encoding) is *not* unwrapped.
    """
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return False, None
    if isinstance(raw, str):
        if not raw.strip():
            return True, NO_ARGUMENTS
        try:
            raw = _loads(raw)
        except ValueError:
            return False, None
    if raw is None:
        return True, NO_ARGUMENTS
    try:
        return True, _canonical(raw)
    except (_NotJson, RecursionError, ValueError):
        return False, None


def extract_tool_calls(message: Mapping[str, Any] | None) -> list[ToolCall]:
    """The function calls of an OpenAI chat message, in order; ``[]`` when it has none.

    Reads ``tool_calls[*].function.{name, arguments}``, and the legacy single ``function_call``
    when ``tool_calls`` is absent or empty. An entry without a function or a name (or a
    ``tool_calls`` that is not a list) is kept as a nameless call, so that a malformed prediction
    is never mistaken for "no tool call".
    """
    return [_tool_call(entry) for entry in _call_entries(message)]


def extract_call_names(message: Mapping[str, Any] | None) -> list[str]:
    """The function names of :func:`extract_tool_calls`, ``""`` for a nameless call, without
    parsing arguments (what label-based metrics need, several times cheaper)."""
    names = []
    for entry in _call_entries(message):
        function = entry.get("function") if isinstance(entry, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        names.append(name if isinstance(name, str) else "")
    return names


def _call_entries(message: Mapping[str, Any] | None) -> list[Any]:
    """The raw call entries of a message (see :func:`extract_tool_calls` for the rules)."""
    if not isinstance(message, Mapping):
        return []
    entries = message.get("tool_calls")
    if not entries:
        legacy = message.get("function_call")
        return [{"type": "function", "function": legacy}] if legacy else []
    if not isinstance(entries, list | tuple):
        return [None]  # tool_calls present but not a list: one malformed call
    return list(entries)


def compare_tool_calls(
    expected: Mapping[str, Any] | None, predicted: Mapping[str, Any] | None
) -> ToolCallMatch:
    """Compare two messages' tool calls as multisets (call order does not matter).

    ``name``: the multisets of function names are equal. ``name_and_args``: the multisets of
    (name, canonical arguments) are equal and every predicted call's arguments parsed. When
    neither message calls a tool both are True (the candidate rightly answered without one);
    when only one does both are False. A nameless call never matches, and expected arguments that
    do not parse cannot be matched.
    """
    want = extract_tool_calls(expected)
    got = extract_tool_calls(predicted)
    if not want and not got:
        return ToolCallMatch(name=True, name_and_args=True)
    if not want or not got:
        return ToolCallMatch(name=False, name_and_args=False)
    names_ok = all(call.name for call in got) and Counter(c.name for c in want) == Counter(
        c.name for c in got
    )
    args_ok = (
        names_ok
        and all(call.arguments_ok for call in got)
        and Counter((c.name, c.arguments) for c in want)
        == Counter((c.name, c.arguments) for c in got)
    )
    return ToolCallMatch(name=names_ok, name_and_args=args_ok)


def _tool_call(entry: Any) -> ToolCall:
    """One ``tool_calls`` entry as a :class:`ToolCall` (malformed entries become nameless)."""
    function = entry.get("function") if isinstance(entry, Mapping) else None
    if not isinstance(function, Mapping):
        return ToolCall(name="", arguments=None, arguments_ok=False)
    name = function.get("name")
    ok, arguments = normalize_arguments(function.get("arguments"))
    name = name if isinstance(name, str) else ""
    return ToolCall(name=name, arguments=arguments, arguments_ok=ok)


def _reject_constant(token: str) -> Any:
    """Refuse ``NaN``/``Infinity``, which the stdlib parser would otherwise accept."""
    raise ValueError(f"{token} is not JSON")


def _loads(text: str) -> Any:
    """Parse strict JSON with exact big integers.

    orjson first (fast; it also refuses NaN); its result is kept unless it holds a float, as
    orjson turns integers over 64 bits into floats: then the stdlib parses it exactly.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        if not _has_float(value):
            return value
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_float(item) for item in value)
    return False


def _canonical(value: Any) -> str:
    """Canonical JSON text of a JSON value: sorted keys, no spaces, integral numbers as ints."""
    if type(value) is dict and all(type(v) in _PLAIN for v in value.values()):
        # The common flat object of strings, ints, bools and nulls: one orjson call.
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
        except TypeError:  # a non-string key, an int over 64 bits, a lone surrogate
            pass
    return _canonical_slow(value)


_PLAIN = frozenset({str, int, bool, type(None)})


def _canonical_slow(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson(f"{value} is not a JSON number")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise _NotJson("object keys must be strings")
        items = sorted(value.items(), key=lambda item: item[0])
        return "{" + ",".join(f"{_canonical_slow(k)}:{_canonical(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    raise _NotJson(f"{type(value).__name__} is not JSON data")
