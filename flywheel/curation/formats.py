"""Dataset line formats (blueprint-spec §3.3): eval records and chat training lines.

Both build new containers only where they change something and share the rest with the input,
so treat inputs and outputs as read-only (they are serialised to JSONL right after).
"""

from __future__ import annotations

from typing import Any

import orjson

from flywheel.curation.records import response_message
from flywheel.schemas import WorkloadType


def to_eval_record(record: dict[str, Any]) -> dict[str, Any]:
    """The log record with request-side tool-call arguments as JSON strings (OpenAI's shape).

    Every top-level key is kept; response tool calls keep their parsed object arguments, which
    is what the scorers compare against.
    """
    request = record.get("request")
    if not isinstance(request, dict):
        return dict(record)
    messages = request.get("messages")
    if not isinstance(messages, list):
        return dict(record)
    new_messages = [_stringify_call_arguments(message) for message in messages]
    return {**record, "request": {**request, "messages": new_messages}}


def to_training_line(record: dict[str, Any], workload_type: WorkloadType) -> dict[str, Any] | None:
    """A chat training line ``{"messages": [...], "tools"?: [...]}``, or None if unusable.

    The conversation is the request's messages (assistant ``content: None`` becomes ``""``)
    followed by the logged answer. Tool-call arguments are objects, as NeMo Customizer expects.
    In a tool-calling workload the line carries the request's tools, and an answer that calls
    tools has its content blanked; a plain answer keeps its text (it is the training target).
    """
    request = record.get("request")
    answer = response_message(record)
    if not isinstance(request, dict) or answer is None:
        return None
    messages = request.get("messages")
    if not isinstance(messages, list):
        return None

    conversation = [_training_message(message) for message in messages]
    calls = answer.get("tool_calls")
    target: dict[str, Any] = {"role": answer.get("role") or "assistant"}
    if workload_type == WorkloadType.TOOL_CALLING and calls:
        target["content"] = ""
    else:
        content = answer.get("content")
        target["content"] = "" if content is None else content
    if calls:
        target["tool_calls"] = [_object_arguments(call) for call in calls]
    conversation.append(target)

    line: dict[str, Any] = {"messages": conversation}
    if workload_type == WorkloadType.TOOL_CALLING:
        tools = request.get("tools")
        if tools is not None:
            line["tools"] = tools
    return line


def _stringify_call_arguments(message: Any) -> Any:
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    if not isinstance(calls, list) or not calls:
        return message
    return {**message, "tool_calls": [_string_arguments(call) for call in calls]}


def _string_arguments(call: Any) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), dict):
        return call
    arguments = orjson.dumps(function["arguments"]).decode("utf-8")
    return {**call, "function": {**function, "arguments": arguments}}


def _training_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    new = message
    if message.get("role") == "assistant" and message.get("content") is None:
        new = {**message, "content": ""}
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        new = {**new, "tool_calls": [_object_arguments(call) for call in calls]}
    return new


def _object_arguments(call: Any) -> Any:
    """The call with JSON-string arguments parsed; unparsable strings are left as they are."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    try:
        arguments = orjson.loads(function["arguments"])
    except orjson.JSONDecodeError:
        return call
    return {**call, "function": {**function, "arguments": arguments}}
