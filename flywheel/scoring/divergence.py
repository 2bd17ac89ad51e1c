"""Where a candidate differs most from production: a divergence score per eval record.

The examples a person should read before trusting a candidate are the ones where it answered
most differently from the production model:

* tool-calling: a different tool (or a tool where production answered in text, or the reverse)
  scores 1.0; the same tools with different arguments score 0.5 plus half the share of argument
  keys that differ; the same calls score 0.
* generic: ``1 - similarity``, where similarity is the judge's (0–1) when the record was rated,
  else the embedding cosine, else ROUGE-L, else token F1.

:func:`most_divergent` keeps the N highest (ties: lower record index first) and
:func:`example_line` makes one short JSON-able line of a record for review. Pure functions.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from flywheel.schemas import WorkloadType
from flywheel.scoring.judge import JUDGE_SCORE, JUDGE_SIMILARITY
from flywheel.scoring.metrics import (
    FUNCTION_NAME_AND_ARGS_ACCURACY,
    ROUGE_L,
    TOKEN_F1,
    message_text,
)
from flywheel.scoring.similarity import EMBEDDING_COSINE
from flywheel.scoring.tool_calls import ToolCall, extract_tool_calls

__all__ = [
    "TEXT_LIMIT",
    "Divergence",
    "example_line",
    "most_divergent",
    "record_divergence",
    "text_divergence",
    "tool_call_divergence",
]

TEXT_LIMIT = 1500
"""Characters of a prompt or answer kept in an example line."""


@dataclass(frozen=True)
class Divergence:
    """How far one candidate answer is from the production answer (0: the same), and why."""

    score: float
    reason: str


def tool_call_divergence(
    expected: Mapping[str, Any] | None, predicted: Mapping[str, Any] | None
) -> Divergence:
    """Divergence of two messages' tool calls (see the module docstring for the scale)."""
    want = extract_tool_calls(expected)
    got = extract_tool_calls(predicted)
    if not want and not got:
        return Divergence(0.0, "both answered without a tool")
    if not want:
        return Divergence(1.0, f"production answered in text; candidate called {_names(got)}")
    if not got:
        return Divergence(1.0, f"production called {_names(want)}; candidate answered in text")
    if Counter(c.name for c in want) != Counter(c.name for c in got) or not all(
        c.name for c in got
    ):
        return Divergence(
            1.0, f"wrong tool: production called {_names(want)}, candidate called {_names(got)}"
        )
    differing, total = _argument_differences(want, got)
    if not differing:
        return Divergence(0.0, "same calls")
    share = len(differing) / total if total else 1.0
    keys = ", ".join(sorted(differing)[:6]) + ("…" if len(differing) > 6 else "")
    return Divergence(0.5 + 0.5 * share, f"wrong arguments to {_names(want)}: {keys}")


def text_divergence(row: Mapping[str, float | None]) -> Divergence:
    """Divergence of a generic answer from its scores: ``1 - similarity``."""
    judged = row.get(JUDGE_SIMILARITY)
    if judged is not None:
        rating = row.get(JUDGE_SCORE)
        said = f"judge rated {rating:g}/10" if rating is not None else "judge similarity"
        return Divergence(_clamp(1.0 - judged), said)
    for name, label in (
        (EMBEDDING_COSINE, "embedding cosine"),
        (ROUGE_L, "ROUGE-L"),
        (TOKEN_F1, "token F1"),
    ):
        value = row.get(name)
        if value is not None:
            return Divergence(_clamp(1.0 - value), f"{label} {value:.2f}")
    return Divergence(0.0, "no similarity score")


def record_divergence(
    workload_type: WorkloadType | str,
    expected: Mapping[str, Any] | None,
    predicted: Mapping[str, Any] | None,
    row: Mapping[str, float | None],
) -> Divergence:
    """One record's divergence, by the workload's kind.

    A tool-calling record whose row already says the calls match is not compared again (most
    records of a good candidate: this keeps ranking cheap on large evaluations).
    """
    if WorkloadType(workload_type) is WorkloadType.TOOL_CALLING:
        if row.get(FUNCTION_NAME_AND_ARGS_ACCURACY) == 1.0:
            return Divergence(0.0, "same calls")
        return tool_call_divergence(expected, predicted)
    return text_divergence(row)


def most_divergent(items: Iterable[tuple[int, Divergence]], n: int) -> list[tuple[int, Divergence]]:
    """The ``n`` records that diverge most (score > 0 only), highest first, ties by index."""
    if n <= 0:
        return []
    positive = ((index, d) for index, d in items if d.score > 0)
    return heapq.nsmallest(n, positive, key=lambda item: (-item[1].score, item[0]))


def example_line(
    index: int,
    divergence: Divergence,
    record: Mapping[str, Any],
    expected: Mapping[str, Any] | None,
    predicted: Mapping[str, Any] | None,
    row: Mapping[str, float | None],
) -> dict[str, Any]:
    """One divergent example for human review: the prompt, both answers, scores, the reason."""
    return {
        "index": index,
        "divergence": round(divergence.score, 6),
        "reason": divergence.reason,
        "prompt": _trim(_last_user_text(record.get("request"))),
        "expected": _compact(expected),
        "candidate": _compact(predicted),
        "scores": {k: v for k, v in row.items() if v is not None},
    }


def _argument_differences(want: list[ToolCall], got: list[ToolCall]) -> tuple[set[str], int]:
    """Argument keys that differ between calls paired by name (in order), and the keys seen."""
    by_name: dict[str, list[ToolCall]] = {}
    for call in got:
        by_name.setdefault(call.name, []).append(call)
    differing: set[str] = set()
    seen: set[str] = set()
    for expected in want:
        candidates = by_name.get(expected.name) or []
        # Prefer an identical call, so reordered identical calls never count as different.
        match = next((c for c in candidates if c.arguments == expected.arguments), None)
        actual = match or (candidates[0] if candidates else None)
        if actual is not None:
            candidates.remove(actual)
        left, right = _arguments(expected), _arguments(actual)
        if left is None or right is None:
            differing.add("(unparsable arguments)")
            seen |= set(left or ()) | set(right or ()) | {"(unparsable arguments)"}
            continue
        keys = set(left) | set(right)
        seen |= keys
        differing |= {k for k in keys if left.get(k, _MISSING) != right.get(k, _MISSING)}
    return differing, len(seen) or 1


_MISSING = object()


def _arguments(call: ToolCall | None) -> dict[str, Any] | None:
    if call is None or not call.arguments_ok or call.arguments is None:
        return None
    try:
        value = orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else {"(value)": value}


def _names(calls: list[ToolCall]) -> str:
    return ", ".join(c.name or "<malformed>" for c in calls)


def _compact(message: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A message as a reviewer reads it: text and calls (arguments as parsed JSON)."""
    if not isinstance(message, Mapping):
        return None
    out: dict[str, Any] = {}
    text = message_text(message)
    if text:
        out["content"] = _trim(text)
    calls = extract_tool_calls(message)
    if calls:
        out["tool_calls"] = [
            {"name": c.name, "arguments": _arguments(c) if c.arguments_ok else c.arguments}
            for c in calls
        ]
    return out


def _last_user_text(request: Any) -> str:
    messages = request.get("messages") if isinstance(request, Mapping) else None
    for message in reversed(messages or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message_text(message)
    return ""


def _trim(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))
