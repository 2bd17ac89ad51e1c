"""Read-only accessors for logged LLM calls (blueprint-spec §1 shape), tolerant of bad records.

Only ``response.choices[0]`` counts as the production model's answer, so every accessor looks
there. Nothing here raises on malformed input: a missing or mistyped part reads as "absent".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flywheel.schemas import WorkloadType

NO_TOOL = "no_tool"
"""Label of a record whose answer calls no tool (blueprint §3.1)."""


def response_message(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answer message ``response.choices[0].message``, or None when the record has none."""
    response = record.get("response")
    if not isinstance(response, dict):
        return None
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        return None
    choice = choices[0]
    if not isinstance(choice, dict):
        return None
    message = choice.get("message")
    return message if isinstance(message, dict) else None


def tool_calls_of(message: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The tool calls of a chat message (empty when it has none or they are not a list)."""
    if message is None:
        return []
    calls = message.get("tool_calls")
    return calls if isinstance(calls, list) else []


def has_tool_calls(record: Mapping[str, Any]) -> bool:
    """Whether the record's answer (choices[0]) calls at least one tool."""
    return bool(tool_calls_of(response_message(record)))


def tool_name(record: Mapping[str, Any]) -> str:
    """Class label of a record: the name of its answer's first tool call, else ``"no_tool"``."""
    try:  # the direct path is the common case and several times faster than checking each step
        name = record["response"]["choices"][0]["message"]["tool_calls"][0]["function"]["name"]
    except (KeyError, IndexError, TypeError):
        return NO_TOOL
    return name if isinstance(name, str) and name else NO_TOOL


def classify_workload(records: Iterable[Mapping[str, Any]]) -> WorkloadType:
    """``tool_calling`` if any record's answer calls a tool, else ``generic`` (§3.1).

    Malformed records count as "no tool call" rather than raising.
    """
    for record in records:
        if isinstance(record, Mapping) and has_tool_calls(record):
            return WorkloadType.TOOL_CALLING
    return WorkloadType.GENERIC
