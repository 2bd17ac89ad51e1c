"""Decide whether one logged call can become a dataset record, and if not, say why.

A record is either kept (possibly normalised: string tool-call arguments parsed) or dropped with
one of the reason codes below, which the curation report counts. Inputs are never mutated:
normalising copies only the dicts on the path to the changed tool calls.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from flywheel.curation.records import has_tool_calls
from flywheel.schemas import WorkloadType

INVALID_FORMAT: Final = "invalid_format"
"""request/response not objects, messages not a non-empty list, or a message with an unknown
role or content that is neither text, typed parts nor (assistant only) null."""
ERROR_RESPONSE: Final = "error_response"
"""The logged response is an error, not an answer."""
BAD_TOOL_SCHEMA: Final = "bad_tool_schema"
"""A request tool is not ``{"type": "function", "function": {"name": ...}}``."""
TOO_MANY_TOOL_PROPERTIES: Final = "too_many_tool_properties"
"""A request tool has more parameter properties than allowed (a NIM limitation, §3.2)."""
NO_CHOICES: Final = "no_choices"
"""The response has no choices, so there is no answer to learn from."""
TRUNCATED_ANSWER: Final = "truncated_answer"
"""The answer stopped at the token limit (``finish_reason == "length"``)."""
BAD_TOOL_CALL: Final = "bad_tool_call"
"""An answer tool call is not of type function, has no name, or has odd arguments."""
UNPARSABLE_ARGUMENTS: Final = "unparsable_arguments"
"""String tool-call arguments that are not a JSON object (``""`` and whitespace included)."""
EMPTY_ANSWER: Final = "empty_answer"
"""The answer has neither content nor tool calls."""
NO_TOOL_CALL: Final = "no_tool_call"
"""A plain answer in a tool-calling workload, dropped only when such records are not kept."""

REASONS: Final = (
    INVALID_FORMAT,
    ERROR_RESPONSE,
    BAD_TOOL_SCHEMA,
    TOO_MANY_TOOL_PROPERTIES,
    NO_CHOICES,
    TRUNCATED_ANSWER,
    BAD_TOOL_CALL,
    UNPARSABLE_ARGUMENTS,
    EMPTY_ANSWER,
    NO_TOOL_CALL,
)
"""Every drop reason of this module, in the order the checks run."""

ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
"""Chat roles accepted in ``request.messages``."""

_CONTENT_OPTIONAL: Final = frozenset({"assistant", "function"})
"""Roles whose content may be null (an assistant turn that only calls tools)."""

Result = tuple[dict[str, Any] | None, str | None]


def validate_record(
    record: Any,
    *,
    workload_type: WorkloadType,
    parse_function_arguments: bool = True,
    max_tool_properties: int | None = 8,
    keep_non_tool_records: bool = True,
) -> Result:
    """Return ``(record, None)`` to keep a record or ``(None, reason)`` to drop it.

    The returned record has string answer tool-call arguments parsed into objects when
    ``parse_function_arguments`` is true. ``max_tool_properties=None`` disables that limit.
    Plain answers of a tool-calling workload are dropped (``no_tool_call``) only when
    ``keep_non_tool_records`` is false; that check runs last, after every other one.
    """
    checked, reason = check_record(
        record,
        parse_function_arguments=parse_function_arguments,
        max_tool_properties=max_tool_properties,
    )
    if checked is None:
        return None, reason
    if (
        not keep_non_tool_records
        and workload_type == WorkloadType.TOOL_CALLING
        and not has_tool_calls(checked)
    ):
        return None, NO_TOOL_CALL
    return checked, None


def check_record(
    record: Any,
    *,
    parse_function_arguments: bool = True,
    max_tool_properties: int | None = 8,
) -> Result:
    """Every check of :func:`validate_record` that does not depend on the workload type.

    The streaming pipeline uses it while the workload type is still unknown.
    """
    if not isinstance(record, dict):
        return None, INVALID_FORMAT
    request = record.get("request")
    response = record.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        return None, INVALID_FORMAT
    if response.get("error") is not None:
        return None, ERROR_RESPONSE
    reason = _check_messages(request.get("messages")) or _check_tools(
        request.get("tools"), max_tool_properties
    )
    if reason:
        return None, reason

    choices = response.get("choices")
    if choices is None or choices == []:
        return None, NO_CHOICES
    if not isinstance(choices, list):
        return None, INVALID_FORMAT
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            return None, INVALID_FORMAT
    choice = choices[0]
    if choice.get("finish_reason") == "length":
        return None, TRUNCATED_ANSWER
    message: dict[str, Any] = choice["message"]

    calls = message.get("tool_calls")
    if calls is None:
        calls = []
    elif not isinstance(calls, list):
        return None, BAD_TOOL_CALL
    parsed_calls, reason = _check_tool_calls(calls, parse=parse_function_arguments)
    if reason:
        return None, reason
    if not calls and _is_empty(message.get("content")):
        return None, EMPTY_ANSWER
    if parsed_calls is None:
        return record, None

    # Copy only the path down to the tool calls; everything else stays shared with the input.
    new_choice = {**choice, "message": {**message, "tool_calls": parsed_calls}}
    new_response = {**response, "choices": [new_choice, *choices[1:]]}
    return {**record, "response": new_response}, None


def _check_messages(messages: Any) -> str | None:
    """``invalid_format`` unless messages is a non-empty list of well-formed chat messages.

    Each needs a known role and content that is a string, a list of typed parts, or (only for
    assistant turns, which may carry just tool calls) null.
    """
    if not isinstance(messages, list) or not messages:
        return INVALID_FORMAT
    for message in messages:
        if not isinstance(message, dict):
            return INVALID_FORMAT
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            return INVALID_FORMAT
        content = message.get("content")
        if content is None:
            if role not in _CONTENT_OPTIONAL:
                return INVALID_FORMAT
        elif not isinstance(content, str) and not _is_part_list(content):
            return INVALID_FORMAT
    return None


def _is_part_list(content: Any) -> bool:
    return isinstance(content, list) and all(
        isinstance(part, dict) and isinstance(part.get("type"), str) for part in content
    )


def _check_tools(tools: Any, max_properties: int | None) -> str | None:
    """Check the request's tool definitions (absent or null tools are fine)."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        return BAD_TOOL_SCHEMA
    for tool in tools:
        if type(tool) is not dict or tool.get("type") != "function":
            return BAD_TOOL_SCHEMA
        function = tool.get("function")
        if type(function) is not dict:
            return BAD_TOOL_SCHEMA
        name = function.get("name")
        if type(name) is not str or not name or (name[0].isspace() and not name.strip()):
            return BAD_TOOL_SCHEMA
        if max_properties is not None:
            parameters = function.get("parameters")
            if type(parameters) is dict:
                properties = parameters.get("properties")
                if type(properties) is dict and len(properties) > max_properties:
                    return TOO_MANY_TOOL_PROPERTIES
    return None


def _check_tool_calls(
    calls: list[Any], *, parse: bool
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Check answer tool calls; return a new list with parsed arguments if ``parse`` changed any.

    String arguments are always checked for being a JSON object, so a record whose ground truth
    cannot be read is dropped whether or not it is parsed in the output.
    """
    parsed: list[dict[str, Any]] | None = None
    for index, call in enumerate(calls):
        if not isinstance(call, dict) or call.get("type") != "function":
            return None, BAD_TOOL_CALL
        function = call.get("function")
        if not isinstance(function, dict) or not _is_name(function.get("name")):
            return None, BAD_TOOL_CALL
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                value = orjson.loads(arguments)
            except orjson.JSONDecodeError:
                return None, UNPARSABLE_ARGUMENTS
            if not isinstance(value, dict):
                return None, UNPARSABLE_ARGUMENTS
            if parse:
                if parsed is None:
                    parsed = list(calls)
                parsed[index] = {**call, "function": {**function, "arguments": value}}
        elif arguments is not None and not isinstance(arguments, dict):
            return None, BAD_TOOL_CALL
    return parsed, None


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_empty(content: Any) -> bool:
    """No usable answer text: None, blank string, or an empty list of content parts."""
    if content is None:
        return True
    if isinstance(content, str):
        return not content.strip()
    if isinstance(content, list):
        return not content
    return False
