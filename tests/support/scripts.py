"""Scripts for the OpenAI-compatible test server, built from logged records with known answers.

Each logged record gets one of four candidate behaviours (by its position), so a test knows
which answers must count as right and which as wrong without calling the scoring code:

- ``exact``: the production model's answer, verbatim;
- ``reordered``: the same tool call with its arguments' keys in reverse order and sent as a JSON
  string (for a plain answer: the same text) — must score as fully correct;
- ``wrong_args``: the right tool with a changed argument value (plain answer: other text) — right
  name, wrong arguments;
- ``wrong``: a different tool (plain answer: a tool call instead) — wrong on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

CATEGORIES = ("exact", "reordered", "wrong_args", "wrong")


def last_user_message(record: dict[str, Any]) -> str:
    users = [m for m in record["request"]["messages"] if m.get("role") == "user"]
    content = users[-1]["content"]
    return content if isinstance(content, str) else orjson.dumps(content).decode()


def _arguments(call: dict[str, Any]) -> dict[str, Any]:
    raw = call["function"]["arguments"]
    return orjson.loads(raw) if isinstance(raw, str) else dict(raw)


def scripted_reply(record: dict[str, Any], category: str) -> dict[str, Any]:
    message = record["response"]["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    if category == "exact":
        return {"content": message.get("content"), "tool_calls": calls}
    if not calls:
        text = message.get("content") or ""
        if category == "reordered":
            return {"content": text}
        if category == "wrong_args":
            return {"content": "Something else entirely."}
        return {"tool_calls": [{"name": "escalate_to_human", "arguments": {"reason": "x"}}]}
    call = calls[0]
    args = _arguments(call)
    name = call["function"]["name"]
    if category == "reordered":
        reordered = dict(reversed(list(args.items())))
        return {"tool_calls": [{"name": name, "arguments": orjson.dumps(reordered).decode()}]}
    if category == "wrong_args":
        key = next(iter(args))
        return {"tool_calls": [{"name": name, "arguments": {**args, key: "not-the-value"}}]}
    other = "search_help_center" if name != "search_help_center" else "lookup_order"
    return {"tool_calls": [{"name": other, "arguments": {"query": "x"}}]}


def build_script(
    records: Sequence[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(script for ScriptedOpenAIServer, category of each record's key)."""
    script: dict[str, dict[str, Any]] = {}
    categories: dict[str, str] = {}
    for index, record in enumerate(records):
        key = last_user_message(record)
        category = CATEGORIES[index % len(CATEGORIES)]
        script[key] = scripted_reply(record, category)
        categories[key] = category
    return script, categories


def expected_accuracy(
    eval_records: Sequence[dict[str, Any]], categories: dict[str, str], skip: set[str] = frozenset()
) -> tuple[float, float]:
    """(function-name accuracy, name-and-arguments accuracy) the script must produce."""
    name_ok = args_ok = total = 0
    for record in eval_records:
        key = last_user_message(record)
        if key in skip:
            continue
        category = categories[key]
        has_call = bool(record["response"]["choices"][0]["message"].get("tool_calls"))
        total += 1
        if category in ("exact", "reordered"):
            name_ok += 1
            args_ok += 1
        elif category == "wrong_args":
            # A plain answer with other text still "calls no tool", as the production model did.
            name_ok += 1
            args_ok += 0 if has_call else 1
    return name_ok / total, args_ok / total
