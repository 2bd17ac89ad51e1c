"""Few-shot (ICL) eval records: pick train examples, fit them in a token budget, inject them.

Selection is ``uniform_distribution`` (blueprint-spec §4.2) with one fix: within each tool the
examples are a seeded random sample rather than always the shortest records, which biased the
blueprint's prompts towards trivial calls; ``semantic_similarity`` chooses per eval record (see
:mod:`flywheel.curation.similarity`) and hands its choices to :func:`inject_all`. Budgets are the
candidate's own context length, counted with an offline tokenizer (:mod:`flywheel.curation.tokens`).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from flywheel.curation.records import response_message, tool_calls_of, tool_name
from flywheel.curation.tokens import TokenCounter, count_tokens
from flywheel.schemas import WorkloadType

GENERIC_GROUP = "generic"
"""The single example group of a generic workload."""

EXAMPLE_HEADER = "Example conversation:"
"""First line of every example (one per injected example)."""

PREAMBLE = (
    "Here are examples of earlier requests and the answers expected for them.\n"
    "Answer the conversation that follows in the same way."
)
"""Opens the block of examples placed at the top of the system message."""

_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Example:
    """One few-shot example: its group (tool name), rendered text and estimated token count."""

    group: str
    text: str
    tokens: int


def example_text(record: Mapping[str, Any]) -> str:
    """Render a logged call as an example: its conversation turns, then the expected answer."""
    request = record.get("request")
    messages = request.get("messages") if isinstance(request, dict) else None
    lines = [EXAMPLE_HEADER]
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            lines.append(_turn_text(message))
    lines.append("Expected answer:")
    answer = response_message(record)
    lines.append(_turn_text(answer) if answer is not None else "assistant:")
    return "\n".join(lines)


def choose_uniform(
    labels: Sequence[str], *, max_examples: int, tool_calling: bool, seed: int
) -> dict[str, list[int]]:
    """Positions (into ``labels``) of up to ``max_examples`` examples, spread evenly over tools.

    tool_calling: positions are grouped by label, groups ordered by size (largest first, then
    name) and slots dealt round-robin, so a tool with few records passes its unused slots on.
    generic: one group. Within a group the positions are a seeded random sample.
    """
    if max_examples <= 0 or not labels:
        return {}
    groups: dict[str, list[int]] = {}
    if tool_calling:
        for position, label in enumerate(labels):
            groups.setdefault(label, []).append(position)
    else:
        groups[GENERIC_GROUP] = list(range(len(labels)))
    order = sorted(groups, key=lambda name: (-len(groups[name]), name))
    shares = _round_robin_shares([len(groups[name]) for name in order], max_examples)
    rng = random.Random(seed)
    return {
        name: rng.sample(groups[name], share)
        for name, share in zip(order, shares, strict=True)
        if share
    }


def select_uniform(
    train_records: Sequence[dict[str, Any]],
    *,
    max_examples: int,
    workload_type: WorkloadType,
    seed: int,
    count: TokenCounter = count_tokens,
) -> dict[str, list[Example]]:
    """:func:`choose_uniform` over ``train_records``, rendered as examples."""
    chosen = choose_uniform(
        [tool_name(record) for record in train_records],
        max_examples=max_examples,
        tool_calling=workload_type == WorkloadType.TOOL_CALLING,
        seed=seed,
    )
    return {
        name: [make_example(name, train_records[p], count) for p in positions]
        for name, positions in chosen.items()
    }


def fit_examples(groups: Mapping[str, Sequence[Example]], budget_tokens: int) -> list[Example]:
    """Take examples round-robin over the groups while they fit in ``budget_tokens``.

    An example that does not fit is skipped and later (smaller) ones are still tried.
    """
    chosen: list[Example] = []
    used = 0
    rounds = max((len(examples) for examples in groups.values()), default=0)
    for index in range(rounds):
        for examples in groups.values():
            if index < len(examples) and used + examples[index].tokens <= budget_tokens:
                chosen.append(examples[index])
                used += examples[index].tokens
    return chosen


def inject_examples(record: dict[str, Any], examples: Sequence[Example]) -> dict[str, Any]:
    """A copy of ``record`` whose system message starts with the examples.

    An existing first system message keeps its content after the examples; otherwise a system
    message is inserted at index 0. Without examples (or messages) the copy is unchanged.
    """
    request = record.get("request")
    messages = request.get("messages") if isinstance(request, dict) else None
    if not examples or not isinstance(request, dict) or not isinstance(messages, list):
        return dict(record)
    block = _SEPARATOR.join([PREAMBLE, *(example.text for example in examples)])
    position = next(
        (
            i
            for i, message in enumerate(messages)
            if isinstance(message, dict) and message.get("role") == "system"
        ),
        None,
    )
    if position is None:
        new_messages = [{"role": "system", "content": block}, *messages]
    else:
        system = messages[position]
        new_messages = list(messages)
        new_messages[position] = {**system, "content": _prepend(block, system.get("content"))}
    return {**record, "request": {**request, "messages": new_messages}}


def inject_all(
    eval_records: Sequence[dict[str, Any]],
    examples_for: Callable[[int], Mapping[str, Sequence[Example]]],
    *,
    context_length: int,
    reserved_tokens: int,
    count: TokenCounter = count_tokens,
    request_tokens: Sequence[int] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Few-shot copies of ``eval_records``; ``examples_for(i)`` gives record i's candidates.

    Each record's budget is ``context_length - reserved_tokens - tokens(its request)``; the
    preamble and the examples must fit in it. Records where nothing fits are left unchanged.
    ``request_tokens`` may give the requests' counts (see :func:`request_token_counts`).
    Stats: records, mean_examples, mean_tokens_used, unchanged.
    """
    preamble_tokens = count(PREAMBLE)
    if request_tokens is None:
        request_tokens = request_token_counts(eval_records, count)
    results: list[dict[str, Any]] = []
    injected = unchanged = tokens_used = 0
    for index, record in enumerate(eval_records):
        groups = examples_for(index)
        budget = context_length - reserved_tokens - request_tokens[index]
        budget -= preamble_tokens
        chosen = fit_examples(groups, budget) if groups and budget > 0 else []
        if chosen:
            injected += len(chosen)
            tokens_used += preamble_tokens + sum(example.tokens for example in chosen)
        else:
            unchanged += 1
        results.append(inject_examples(record, chosen))
    total = len(results)
    stats: dict[str, float] = {
        "records": total,
        "mean_examples": injected / total if total else 0.0,
        "mean_tokens_used": tokens_used / total if total else 0.0,
        "unchanged": unchanged,
    }
    return results, stats


def request_token_counts(
    records: Sequence[dict[str, Any]], count: TokenCounter = count_tokens
) -> list[int]:
    """Tokens of each record's request (its messages, tools and settings as JSON)."""
    return [_request_tokens(record, count) for record in records]


def build_icl_records(
    eval_records: Sequence[dict[str, Any]],
    train_records: Sequence[dict[str, Any]],
    *,
    context_length: int,
    reserved_tokens: int,
    max_examples: int,
    workload_type: WorkloadType,
    seed: int,
    count: TokenCounter = count_tokens,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Uniform few-shot copies of ``eval_records`` drawn from ``train_records``, plus stats.

    The same uniform selection is offered to every record and fitted to its own budget (see
    :func:`inject_all`); stats add ``pool``, the number of examples selected.
    """
    groups = select_uniform(
        train_records,
        max_examples=max_examples,
        workload_type=workload_type,
        seed=seed,
        count=count,
    )
    records, stats = inject_all(
        eval_records,
        lambda _: groups,
        context_length=context_length,
        reserved_tokens=reserved_tokens,
        count=count,
    )
    return records, {**stats, "pool": sum(len(examples) for examples in groups.values())}


def _round_robin_shares(sizes: Sequence[int], total: int) -> list[int]:
    """Deal ``total`` slots one per group per round, skipping groups that have run out."""
    shares = [0] * len(sizes)
    left = min(total, sum(sizes))
    while left:
        for index, size in enumerate(sizes):
            if left and shares[index] < size:
                shares[index] += 1
                left -= 1
    return shares


def make_example(
    group: str, record: Mapping[str, Any], count: TokenCounter = count_tokens
) -> Example:
    """``record`` rendered as an example of ``group``, with its token count."""
    text = example_text(record)
    return Example(group=group, text=text, tokens=count(text))


def _turn_text(message: Mapping[str, Any]) -> str:
    content = _content_text(message.get("content"))
    text = f"{message.get('role') or 'assistant'}:" + (f" {content}" if content else "")
    calls = tool_calls_of(message)
    if calls:
        text += (
            "\ntool calls: "
            + orjson.dumps([_call_summary(c) for c in calls], default=repr).decode()
        )
    return text


def _content_text(content: Any) -> str:
    """Plain text of message content: strings as is, text parts joined, other parts named."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, dict):
                parts.append(f"[{part.get('type', 'part')}]")
            else:
                parts.append(str(part))
        return " ".join(parts)
    return orjson.dumps(content, default=repr).decode()


def _call_summary(call: Any) -> Any:
    """A tool call as ``{"name", "arguments"}`` (ids dropped, string arguments parsed)."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        return call
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        with contextlib.suppress(orjson.JSONDecodeError):
            arguments = orjson.loads(arguments)
    return {"name": function.get("name"), "arguments": arguments}


def _prepend(block: str, content: Any) -> Any:
    """System content with ``block`` in front, for string, content-part list or empty content."""
    if isinstance(content, str) and content:
        return block + _SEPARATOR + content
    if isinstance(content, list) and content:
        return [{"type": "text", "text": block + _SEPARATOR}, *content]
    return block


def _request_tokens(record: Mapping[str, Any], count: TokenCounter) -> int:
    request = record.get("request")
    return count(orjson.dumps(request, default=repr).decode())
