"""Remove logged calls that repeat an earlier call's input, keeping the first (newest) one.

The key is the whole conversation input: every request message (role, content, and for
assistant turns the tool calls made, without their random ids) plus the sorted names of the
offered tools. Keying on user text alone (as the blueprint does) would merge different steps of
one agent loop, which share their user turns but differ in the tool results that follow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable
from typing import Any

import orjson

_DUMP_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def dedup_key(record: dict[str, Any]) -> Hashable:
    """A hashable key equal for two records exactly when their conversation inputs are equal.

    Records too malformed to key get a unique key, so they are never merged.
    """
    request = record.get("request")
    messages = request.get("messages") if isinstance(request, dict) else None
    if not isinstance(messages, list):
        return object()
    turns: list[Hashable] = []
    for message in messages:
        if type(message) is not dict:
            turns.append(_hashable(message))
            continue
        content = message.get("content")
        if content is not None and type(content) is not str:
            content = _hashable(content)
        calls = message.get("tool_calls")
        turns.append((message.get("role"), content, _calls_key(calls) if calls else None))
    tools = request.get("tools")
    return tuple(turns), _tool_names(tools) if tools else ()


def dedup(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Keep the first record of every key (the newest, for newest-first input); count the rest.

    The same rule as curation's pass one, which compares :func:`dedup_digest` values.
    """
    seen: set[bytes] = set()
    kept: list[dict[str, Any]] = []
    removed = 0
    for record in records:
        digest = dedup_digest(record)
        if digest is not None and digest in seen:
            removed += 1
            continue
        if digest is not None:
            seen.add(digest)
        kept.append(record)
    return kept, removed


def dedup_digest(record: dict[str, Any]) -> bytes | None:
    """A 16-byte digest of :func:`~flywheel.curation.dedup.dedup_key`, equal in every process.

    The key (nested tuples of strings, bytes and None) is serialised by value: as JSON, or by
    ``repr`` for the rare key JSON cannot hold (lone surrogates).
    """
    key = dedup_key(record)
    if not isinstance(key, tuple):
        return None
    try:
        data = orjson.dumps(key, default=_bytes_as_text)
    except TypeError:
        data = b"r" + repr(key).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).digest()


def _bytes_as_text(value: Any) -> str:
    """Canonical JSON of structured content, marked so it never equals a plain string."""
    if isinstance(value, bytes):
        return "\x00" + value.decode("utf-8", "surrogatepass")
    raise TypeError


def _calls_key(calls: Any) -> Hashable:
    """Tool calls by name and arguments; call ids are random per call, so they are left out."""
    if not isinstance(calls, list):
        return _hashable(calls)
    key: list[Hashable] = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            key.append((_hashable(function.get("name")), _hashable(function.get("arguments"))))
        else:
            key.append(_hashable(call))
    return tuple(key)


def _tool_names(tools: Any) -> tuple[str, ...]:
    if not isinstance(tools, list):
        return ()
    try:  # the common, well-formed case in one pass
        return tuple(sorted(tool["function"]["name"] for tool in tools))
    except (KeyError, TypeError):
        pass
    names: list[str] = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        names.append(name if isinstance(name, str) else "")
    return tuple(sorted(names))


def _hashable(value: Any) -> Hashable:
    """Strings and None as they are; anything else (content parts, objects) as canonical JSON."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, option=_DUMP_OPTIONS, default=repr)
