"""Timestamps, completions, conversation context and the customer-service log generator."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from flywheel.sample_data.entities import _FIRST_NAMES, _PRODUCTS, _order_id, _random_id
from flywheel.sample_data.intents import _FOLLOWUPS_BY_STATUS, _INTENTS, _plain_turn, _Turn
from flywheel.sample_data.styling import _pick_tone, _render
from flywheel.sample_data.tools import (
    _COMPACT_SYSTEM_PROMPT,
    _CS_SYSTEM_PROMPT,
    _TOOL_WEIGHTS,
    COMPACT_TOOL_NAMES,
    COMPACT_TOOLS,
    CUSTOMER_SERVICE_TOOLS,
)

DEFAULT_START = datetime(2025, 5, 5, 7, 30, tzinfo=UTC)
"""Start of the sample traffic when no ``start`` is given: fixed, so output is reproducible."""

_SPAN = timedelta(days=5)
"""About how long the generated traffic lasts, whatever ``n`` is ("several days" of logs)."""


def _timestamps(rng: random.Random, n: int, start: datetime) -> list[datetime]:
    """``n`` strictly increasing times after ``start`` (aware) over about :data:`_SPAN`.

    Gaps are random and longer at night, as in real traffic.
    """
    t = start
    mean_gap = _SPAN.total_seconds() / max(n, 1)
    out: list[datetime] = []
    for _ in range(n):
        night = t.hour < 7 or t.hour >= 22
        gap = rng.expovariate(1.0 / (mean_gap * (2.5 if night else 0.8)))
        t = t + timedelta(seconds=max(1, round(gap)))
        out.append(t)
    return out


def _log_record(
    workload_id: str,
    client_id: str,
    when: datetime,
    request: dict[str, Any],
    response: dict[str, Any],
) -> dict[str, Any]:
    """One log record in the blueprint's schema."""
    return {
        "workload_id": workload_id,
        "client_id": client_id,
        "timestamp": _iso(when),
        "request": request,
        "response": response,
    }


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _tokens(text: str) -> int:
    """A rough token count (about four characters a token), enough for plausible usage."""
    return max(1, round(len(text) / 4))


def _tool_call(rng: random.Random, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _random_id(rng, "call_", 24),
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }


def _completion(
    rng: random.Random,
    when: datetime,
    model: str,
    request: dict[str, Any],
    message: dict[str, Any],
    finish_reason: str,
) -> dict[str, Any]:
    """An OpenAI ``ChatCompletion`` for ``message``, with plausible usage and creation time."""
    prompt_text = orjson.dumps(request["messages"]).decode()
    prompt_tokens = _tokens(prompt_text) + 4 * len(request["messages"])
    if request.get("tools"):
        prompt_tokens += _tokens(orjson.dumps(request["tools"]).decode())
    completion_tokens = _tokens(orjson.dumps(message).decode()) - 2
    return {
        "id": _random_id(rng, "chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(when.timestamp()) + rng.randint(0, 3),
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": max(1, completion_tokens),
            "total_tokens": prompt_tokens + max(1, completion_tokens),
        },
    }


def _order_context(
    rng: random.Random, statuses: list[str] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """An earlier exchange: the user asks about an order, the assistant looks it up, answers.

    The order's status is drawn from ``statuses`` (default: any). Returns the order id and the
    four messages (user, assistant tool call, tool result, assistant summary) that precede the
    logged user message.
    """
    oid = _order_id(rng)
    status = rng.choice(statuses or list(_FOLLOWUPS_BY_STATUS))
    product = rng.choice(_PRODUCTS)
    qty = rng.choice([1, 1, 1, 2])
    total = round(qty * rng.uniform(19, 249), 2)
    ask = rng.choice(
        [
            f"Hi, can you check order {oid}?",
            f"What's going on with my order {oid}?",
            f"status of order {oid}?",
            f"I have a question about order #{oid}.",
        ]
    )
    call = _tool_call(rng, "lookup_order", {"order_id": oid})
    result = {
        "order_id": oid,
        "status": status,
        "items": [{"name": product.name, "quantity": qty}],
        "total_usd": total,
    }
    summaries = {
        "processing": f"Order {oid} ({qty}x {product.name}, ${total:.2f}) is still being "
        "processed and hasn't shipped yet.",
        "shipped": f"Order {oid} ({qty}x {product.name}) has shipped and is on its way.",
        "delivered": f"Order {oid} ({qty}x {product.name}) was delivered. Is everything okay "
        "with it?",
    }
    messages = [
        {"role": "user", "content": ask},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": orjson.dumps(result).decode()},
        {"role": "assistant", "content": summaries[status]},
    ]
    return oid, messages


def _greeting_context(rng: random.Random) -> list[dict[str, Any]]:
    """An earlier greeting exchange before the actual request."""
    name = rng.choice(_FIRST_NAMES)
    user = rng.choice(["hi", "hello", f"Hi, this is {name}", "hey there", "good afternoon"])
    reply = rng.choice(
        [
            "Hi! How can I help you today?",
            f"Hello{', ' + name if name in user else ''}! What can I do for you?",
            "Hi there! What do you need help with?",
        ]
    )
    return [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]


def _allocate(rng: random.Random, n: int, weights: dict[str, int], minimum: int) -> list[str]:
    """Draw ``n`` labels by weight, then top up rare labels to ``minimum`` from the most common.

    The top-up keeps every tool represented (curation and the split need several examples per
    class) without making the mix flat.
    """
    labels = rng.choices(list(weights), weights=list(weights.values()), k=n)
    counts = {label: labels.count(label) for label in weights}
    for label in weights:
        while counts[label] < minimum:
            donor = max(counts, key=lambda k: counts[k])
            if counts[donor] <= minimum:
                break
            labels[labels.index(donor)] = label
            counts[donor] -= 1
            counts[label] += 1
    rng.shuffle(labels)
    return labels


def _fresh_tools(compact: bool = False) -> list[dict[str, Any]]:
    """A private copy of the tool list, so editing one record never changes another."""
    return orjson.loads(orjson.dumps(COMPACT_TOOLS if compact else CUSTOMER_SERVICE_TOOLS))


def _to_start(start: datetime | None) -> datetime:
    """Where the traffic begins: ``start`` as aware UTC (naive means UTC), or the default."""
    if start is None:
        return DEFAULT_START
    return start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC)


def generate_customer_service_logs(
    n: int = 400,
    *,
    seed: int = 0,
    workload_id: str = "customer-service",
    client_id: str = "sample-app",
    start: datetime | None = None,
    production_model: str = "meta/llama-3.3-70b-instruct",
    compact: bool = False,
) -> list[dict[str, Any]]:
    """Logs of a tool-calling customer-service agent, ``n`` records, oldest first.

    About 12% of the calls are plain answers (greetings, thanks, out-of-scope questions); the
    rest call one of :data:`CUSTOMER_SERVICE_TOOLS` with an uneven mix, every tool at least five
    times once ``n`` is about 300 or more. Some requests carry earlier turns: a greeting
    exchange, or an order lookup (assistant tool call + tool result) that the logged request
    follows up on. Tool-call argument values are taken from the user's words (order ids,
    product names, addresses, promo codes, help topics) or follow from them (enum reasons), so
    the mapping is learnable. ``start`` (naive means UTC) is just before the first timestamp.
    ``compact``: only the five commonest tools, without parameter descriptions, and a short
    system prompt — prompts a small model on a CPU can handle (a few hundred tokens).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    weights = (
        {name: w for name, w in _TOOL_WEIGHTS.items() if name in COMPACT_TOOL_NAMES}
        if compact
        else _TOOL_WEIGHTS
    )
    system_prompt = _COMPACT_SYSTEM_PROMPT if compact else _CS_SYSTEM_PROMPT
    rng = random.Random(f"customer-service:{seed}")
    times = _timestamps(rng, n, _to_start(start))
    n_plain = round(n * rng.uniform(0.11, 0.14))
    n_tool = n - n_plain
    minimum = min(5, n_tool // (2 * len(weights)))
    labels: list[str | None] = [*_allocate(rng, n_tool, weights, minimum)]
    labels += [None] * n_plain
    rng.shuffle(labels)

    seen: set[str] = set()
    records: list[dict[str, Any]] = []
    for when, label in zip(times, labels, strict=True):
        messages: list[dict[str, Any]] = []
        turn = _Turn("")
        user_text = ""
        for _attempt in range(25):
            messages = [{"role": "system", "content": system_prompt}]
            roll = rng.random()
            known: str | None = None
            if label is None:
                if roll < 0.25:
                    messages += _order_context(rng)[1]
                turn = _plain_turn(rng, after_help=len(messages) > 1)
            else:
                followups = [s for s, tools in _FOLLOWUPS_BY_STATUS.items() if label in tools]
                if followups and roll < 0.18:
                    oid, context = _order_context(rng, followups)
                    messages += context
                    known = oid
                elif roll < 0.35:
                    messages += _greeting_context(rng)
                turn = _INTENTS[label](rng, known)
            tone = _pick_tone(rng, turn.tones)
            greet = len(messages) == 1  # no second "hi" once the conversation is under way
            user_text = _render(rng, turn.template, turn.entities, tone, turn.wrap, greet)
            if user_text not in seen:
                break
        seen.add(user_text)
        messages.append({"role": "user", "content": user_text})
        request = {
            "model": production_model,
            "messages": messages,
            "tools": _fresh_tools(compact),
            "temperature": 0.2,
            "max_tokens": 512,
        }
        if turn.tool is not None:
            assert turn.arguments is not None
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [_tool_call(rng, turn.tool, turn.arguments)],
            }
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": turn.reply}
            finish = "stop"
        response = _completion(rng, when, production_model, request, message, finish)
        records.append(_log_record(workload_id, client_id, when, request, response))
    return records
