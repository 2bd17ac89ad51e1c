"""Turn a local model's generated text into an OpenAI assistant message with ``tool_calls``.

Small models write their function calls as text: Hermes/Qwen ``<tool_call>{...}</tool_call>``,
SmolLM2's JSON list ``[{"name": ..., "arguments": {...}}]``, Llama 3.x ``{"name": ...,
"parameters": {...}}`` (maybe after ``<|python_tag|>``), or OpenAI-shaped ``{"tool_calls": [...]}``,
often inside a Markdown fence and with prose around. The evaluator scores OpenAI messages, so we
find every call-shaped JSON value in the text, turn each into a ``tool_calls`` entry, and keep the
rest as ``content``. Parsing never raises: text with no recognisable call is all content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["parse_assistant_output"]

_Call = tuple[str, str]
"""A recognised call: (function name, compact JSON text of its arguments)."""

_FAILED = object()
"""Sentinel for "this text is not JSON", distinct from a parsed ``null``."""

_START = re.compile(r"\{\s*[\"']|\[\s*\{")
"""Where a call can begin: an object with a quoted first key, or a list of objects."""

_SPECIAL = re.compile(r"[\"'{}\[\]\\]")
"""The characters that matter to the bracket scanner outside and inside strings."""

_SPACE = re.compile(r"\s*")
_FENCE_OPEN = re.compile(r"```[\w+.-]*\Z")
_FENCE_CLOSE = re.compile(r"```(?![\w+.-])")

_BEFORE_CALL = ("<tool_call>", "<|python_tag|>", "[TOOL_CALLS]")
"""Wrappers that introduce a call; dropped from the content along with the call."""

_AFTER_CALL = ("</tool_call>", "<|eom_id|>", "<|eot_id|>", "<|im_end|>")
"""Wrappers and end-of-turn tokens that close a call; dropped along with the call."""

_SEPARATORS = frozenset(" \t\r\n;,")
"""Leftover text made only of these (between calls) is not content."""

_FLAT_KEYS = frozenset({"name", "arguments", "parameters", "type", "id"})
_WRAPPED_KEYS = frozenset({"function", "function_call", "type", "id", "index"})
_INNER_KEYS = frozenset({"name", "arguments", "parameters"})
_PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}

_SCAN_BUDGET = 2_000_000
"""Characters that dead ends may cost before we stop looking for calls (bounds adversarial text)."""

_MAX_DECODE_DEPTH = 4
"""How many times a string of arguments is unwrapped (JSON inside a JSON string ...)."""


def parse_assistant_output(
    text: str, *, tool_names: Collection[str] | None = None
) -> dict[str, Any]:
    """The OpenAI assistant message for a model's raw output text.

    Returns ``{"role": "assistant", "content": ..., "tool_calls": [...]}``; ``tool_calls`` is
    left out when there are none, and then ``content`` is the whole text, stripped. With calls,
    ``content`` is the remaining text (wrappers such as fences and ``<tool_call>`` tags removed),
    or None when nothing else was said. Each call is ``{"id": "call_<i>", "type": "function",
    "function": {"name", "arguments"}}`` with ``arguments`` compact JSON text: of an object when
    the model gave one (``{}`` when it gave none), else of whatever value it gave, so that the
    scorer marks it wrong.

    A JSON object is a call when it has a string ``name`` and an ``arguments`` or ``parameters``
    key (or, if ``tool_names`` is given, names one of them) and no keys beyond ``type``/``id``;
    or when it wraps one in ``function``, or lists them in ``tool_calls``. A call naming a tool
    outside ``tool_names`` is still a call (it is scored as wrong); other JSON stays content.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    known = frozenset(tool_names) if tool_names is not None else None
    calls, pieces = _scan(text, known)
    if not calls:
        return {"role": "assistant", "content": text.strip()}
    content = "\n".join(pieces) or None
    return {
        "role": "assistant",
        "content": content,
        "tool_calls": [
            {
                "id": f"call_{index}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            for index, (name, arguments) in enumerate(calls)
        ],
    }


def _scan(text: str, known: frozenset[str] | None) -> tuple[list[_Call], list[str]]:
    """Find the calls in ``text``, in order, and the stripped non-empty text pieces around them."""
    calls: list[_Call] = []
    pieces: list[str] = []
    kept_until = 0  # text before this index is already a piece or part of a call
    pos = 0
    budget = _SCAN_BUDGET
    while budget > 0:
        match = _START.search(text, pos)
        if match is None:
            break
        start = match.start()
        end, stop = _match_end(text, start)
        value = _FAILED if end is None else _loads(text[start:end])
        if end is None or value is _FAILED:
            budget -= stop - start + 1
            pos = start + 1  # an inner value may still be a whole call
            continue
        found = _calls_in(value, known)
        if found:
            span_start = _extend_back(text, kept_until, start)
            span_end = _extend_forward(text, end)
            _keep(pieces, text[kept_until:span_start])
            calls.extend(found)
            kept_until = span_end
            pos = max(end, kept_until)
            continue
        pos = end  # data: do not look inside it
    _keep(pieces, text[kept_until:])
    return calls, pieces


def _keep(pieces: list[str], piece: str) -> None:
    """Add a piece of leftover text unless it is only whitespace and separators."""
    piece = piece.strip()
    if piece and not set(piece) <= _SEPARATORS:
        pieces.append(piece)


def _extend_back(text: str, floor: int, start: int) -> int:
    """Move a call's start back over the wrappers that introduce it (tags, a fence opener)."""
    while True:
        head = text[floor:start].rstrip()
        cut = len(head)
        for marker in _BEFORE_CALL:
            if head.endswith(marker):
                cut -= len(marker)
                break
        else:
            fence = _FENCE_OPEN.search(head[-64:])
            if fence is not None:
                cut -= len(fence.group())
        if cut == len(head):
            return start
        start = floor + cut


def _extend_forward(text: str, end: int) -> int:
    """Move a call's end forward over what closes it (tags, a fence closer, end-of-turn)."""
    while True:
        stripped = _SPACE.match(text, end).end()
        for marker in _AFTER_CALL:
            if text.startswith(marker, stripped):
                end = stripped + len(marker)
                break
        else:
            fence = _FENCE_CLOSE.match(text, stripped)
            if fence is None:
                return end
            end = fence.end()


def _match_end(text: str, start: int) -> tuple[int | None, int]:
    """Where the bracket at ``start`` closes: (index just past it or None, where the scan stopped).

    Brackets inside ``"..."`` or ``'...'`` strings (with backslash escapes) do not count; a
    mismatched closer or the end of the text means there is no balanced value here.
    """
    closers: list[str] = []
    quote = ""
    pos = start
    while (match := _SPECIAL.search(text, pos)) is not None:
        char = match.group()
        pos = match.end()
        if quote:
            if char == "\\":
                pos += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{":
            closers.append("}")
        elif char == "[":
            closers.append("]")
        elif char in "}]":
            if not closers or closers.pop() != char:
                return None, pos
            if not closers:
                return pos, pos
    return None, len(text)


def _loads(text: str) -> Any:
    """Parse JSON, then a repaired version of it (see :func:`_repair`); ``_FAILED`` if neither."""
    for candidate in (text, _repair(text)):
        try:
            return json.loads(candidate, strict=False, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            continue
    return _FAILED


def _reject_constant(token: str) -> Any:
    """Refuse ``NaN``/``Infinity``: they could not be written back as JSON arguments."""
    raise ValueError(f"{token} is not JSON")


def _repair(text: str) -> str:
    """Fix what small models get wrong in JSON: single quotes, trailing commas, Python literals."""
    out: list[str] = []
    pos = 0
    size = len(text)
    while pos < size:
        char = text[pos]
        if char == '"':
            end = _string_end(text, pos)
            out.append(text[pos:end])
            pos = end
        elif char == "'":
            end = _string_end(text, pos)
            body = text[pos + 1 : end - 1] if text[end - 1 : end] == "'" else text[pos + 1 : end]
            out.append(_requote(body))
            pos = end
        elif char == ",":
            after = pos + 1
            while after < size and text[after].isspace():
                after += 1
            if after >= size or text[after] not in "}]":
                out.append(char)
            pos += 1
        elif char.isalpha() or char == "_":
            end = pos
            while end < size and (text[end].isalnum() or text[end] == "_"):
                end += 1
            word = text[pos:end]
            out.append(_PYTHON_LITERALS.get(word, word))
            pos = end
        else:
            out.append(char)
            pos += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """The index just past the quote closing the string opened at ``start`` (or the text's end)."""
    quote = text[start]
    pos = start + 1
    while pos < len(text):
        if text[pos] == "\\":
            pos += 2
        elif text[pos] == quote:
            return pos + 1
        else:
            pos += 1
    return len(text)


def _requote(body: str) -> str:
    """A single-quoted string's body as a double-quoted JSON string."""
    out = ['"']
    pos = 0
    while pos < len(body):
        char = body[pos]
        if char == "\\" and pos + 1 < len(body):
            following = body[pos + 1]
            out.append("'" if following == "'" else char + following)
            pos += 2
            continue
        out.append('\\"' if char == '"' else char)
        pos += 1
    out.append('"')
    return "".join(out)


def _calls_in(value: Any, known: frozenset[str] | None) -> list[_Call]:
    """The calls a parsed JSON value stands for; ``[]`` when it is data, not calls.

    A list counts only when every item is a call (or a ``tool_calls`` holder).
    """
    try:
        if isinstance(value, list):
            items = [_calls_in(item, known) for item in value]
            if not value or not all(items):
                return []
            return [call for item in items for call in item]
        if isinstance(value, Mapping):
            entries = value.get("tool_calls")
            if isinstance(entries, list):
                calls = [_one_call(entry, known) for entry in entries]
                return [c for c in calls if c] if entries and all(calls) else []
            call = _one_call(value, known)
            return [call] if call else []
    except (RecursionError, ValueError, TypeError):
        pass
    return []


def _one_call(entry: Any, known: frozenset[str] | None) -> _Call | None:
    """One call object (flat, or wrapped in ``function``) as a call, or None if it is not one."""
    if not isinstance(entry, Mapping) or entry.get("type", "function") != "function":
        return None
    wrapped = entry.get("function", entry.get("function_call"))
    if isinstance(wrapped, Mapping) and set(entry) <= _WRAPPED_KEYS:
        if not set(wrapped) <= _INNER_KEYS:
            return None  # e.g. a tool *definition* echoed back, with its description
        entry, strict = wrapped, False  # the wrapper says it is a call, arguments or not
    elif set(entry) <= _FLAT_KEYS:
        strict = True
    else:
        return None
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip()
    has_arguments = "arguments" in entry or "parameters" in entry
    if strict and not has_arguments and not (known and name in known):
        return None
    raw = entry["arguments"] if "arguments" in entry else entry.get("parameters")
    return name, _arguments_json(raw)


def _arguments_json(raw: Any) -> str:
    """Compact JSON text of a call's arguments; strings holding JSON are decoded first."""
    value = raw
    for _ in range(_MAX_DECODE_DEPTH):
        if not isinstance(value, str):
            break
        if not value.strip():
            value = None
            break
        decoded = _loads(value)
        if decoded is _FAILED:
            break
        value = decoded
    if value is None:
        return "{}"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
