"""Builders of logged LLM calls (blueprint-spec §1 shape) for the curation tests."""

from __future__ import annotations

import json
from typing import Any


def tool_def(name: str, n_properties: int = 2) -> dict[str, Any]:
    """An OpenAI function tool with ``n_properties`` string parameters."""
    properties = {f"p{i}": {"type": "string"} for i in range(n_properties)}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"the {name} tool",
            "parameters": {"type": "object", "properties": properties},
        },
    }


def tool_call(name: str, arguments: Any = None, call_id: str = "call_1") -> dict[str, Any]:
    """A tool call; dict arguments are JSON-encoded (raw OpenAI shape) unless given as a string."""
    if arguments is None:
        arguments = {"q": name}
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def make_record(
    user: str = "hello",
    *,
    tool: str | None = None,
    arguments: Any = None,
    content: Any = "an answer",
    system: str | None = "You are a helpful assistant.",
    tools: list[str] | None = None,
    messages: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
    call_id: str = "call_1",
) -> dict[str, Any]:
    """A logged call. ``tool`` makes the answer call that tool (content None), else it is text."""
    if messages is None:
        messages = [{"role": "user", "content": user}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
    request: dict[str, Any] = {"model": "prod-model", "messages": messages}
    tool_names = tools if tools is not None else ([tool] if tool else None)
    if tool_names:
        request["tools"] = [tool_def(name) for name in tool_names]
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool is not None:
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [tool_call(tool, arguments, call_id)],
        }
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "workload_id": "wl",
        "client_id": "client",
        "timestamp": "2025-01-01T00:00:00Z",
        "request": request,
        "response": {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        },
    }


def labelled(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Distinct records: ``count`` per tool name (``"no_tool"`` gives plain answers)."""
    records = []
    for name, count in counts.items():
        for i in range(count):
            tool = None if name == "no_tool" else name
            records.append(make_record(f"{name} question {i}", tool=tool))
    return records
