"""Per-record scores of one candidate reply and their aggregation into an evaluation's metrics.

Tool-calling workloads are scored on the calls (function names, then names and arguments);
generic workloads on answer text similarity (ROUGE-L, token F1). The expected reply is always the
production model's logged answer: the flywheel measures fidelity to it, not absolute correctness.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from flywheel.schemas import WorkloadType
from flywheel.scoring.text import rouge_l, token_f1
from flywheel.scoring.tool_calls import compare_tool_calls

__all__ = [
    "FUNCTION_NAME_ACCURACY",
    "FUNCTION_NAME_AND_ARGS_ACCURACY",
    "ROUGE_L",
    "TOKEN_F1",
    "aggregate_scores",
    "exceeds_failure_budget",
    "headline_metric",
    "message_text",
    "score_reply",
]

FUNCTION_NAME_ACCURACY = "function_name_accuracy"
FUNCTION_NAME_AND_ARGS_ACCURACY = "function_name_and_args_accuracy"
ROUGE_L = "rouge_l"
TOKEN_F1 = "token_f1"


def score_reply(
    workload_type: WorkloadType | str,
    expected: Mapping[str, Any] | None,
    predicted: Mapping[str, Any] | None,
) -> dict[str, float]:
    """Score one candidate message against the logged production message.

    tool_calling: ``function_name_accuracy`` and ``function_name_and_args_accuracy``, each 0.0 or
    1.0. generic: ``rouge_l`` and ``token_f1`` of the two messages' text content.
    """
    kind = WorkloadType(workload_type)
    if kind is WorkloadType.TOOL_CALLING:
        match = compare_tool_calls(expected, predicted)
        return {
            FUNCTION_NAME_ACCURACY: float(match.name),
            FUNCTION_NAME_AND_ARGS_ACCURACY: float(match.name_and_args),
        }
    reference, candidate = message_text(expected), message_text(predicted)
    return {ROUGE_L: rouge_l(reference, candidate), TOKEN_F1: token_f1(reference, candidate)}


def message_text(message: Mapping[str, Any] | None) -> str:
    """The text ``content`` of a chat message; ``""`` when absent.

    A multimodal content list contributes its text parts, joined by newlines.
    """
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        texts = (part.get("text") if isinstance(part, Mapping) else part for part in content)
        return "\n".join(text for text in texts if isinstance(text, str))
    return ""


def aggregate_scores(rows: Iterable[Mapping[str, float | None]]) -> dict[str, float]:
    """Mean of each metric over the rows that have it (a None value counts as absent).

    Metrics keep the order in which they first appear; no rows give ``{}``.
    """
    columns: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row.items():
            if value is not None:
                columns.setdefault(name, []).append(float(value))
    return {name: math.fsum(values) / len(values) for name, values in columns.items()}


def headline_metric(workload_type: WorkloadType | str) -> str:
    """The one metric that ranks candidates: names-and-arguments accuracy, or ROUGE-L."""
    kind = WorkloadType(workload_type)
    return FUNCTION_NAME_AND_ARGS_ACCURACY if kind is WorkloadType.TOOL_CALLING else ROUGE_L


def exceeds_failure_budget(records: int, failed: int, max_failure_rate: float) -> bool:
    """Whether an evaluation must count as failed, by the built-in evaluator's rule.

    It fails when it has no records, when every request failed, or when the share of failed
    requests is above ``max_failure_rate``; a share exactly at the limit passes.
    """
    if records <= 0:
        return True
    return failed > 0 and (failed / records > max_failure_rate or failed >= records)
