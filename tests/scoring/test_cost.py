"""Cost per 1,000 requests from the price table, token usage and throughput."""

from __future__ import annotations

from typing import Any

import pytest

from flywheel.config import PriceEntry, PricingConfig
from flywheel.schemas import EvalKind, EvalResult, LatencySummary, ProductionCost, StepStatus
from flywheel.scoring.cost import (
    LoggedUsage,
    eval_cost,
    find_price,
    gpu_cost_per_1k,
    logged_usage,
    production_cost,
    token_cost_per_1k,
)

PRICING = PricingConfig.model_validate(
    {
        "production_model": None,
        "models": {
            "gpt-big": {"input_per_1m": 3.0, "output_per_1m": 15.0},
            "small": {"input_per_1m": 0.1, "output_per_1m": 0.4},
            "org/model-id": {"input_per_1m": 1.0, "output_per_1m": 1.0},
            "nim": {"gpu_hour": 2.0, "gpus": 2},
            "nim-fixed": {"gpu_hour": 2.0, "throughput_rps": 10.0},
        },
    }
)


def record(model: str | None = "gpt-big", usage: Any = None) -> dict[str, Any]:
    response: dict[str, Any] = {"choices": [{"message": {"content": "x"}}]}
    if model is not None:
        response["model"] = model
    if usage is not None:
        response["usage"] = usage
    return {"request": {"messages": [], "model": "requested"}, "response": response}


def evaluation(**fields: Any) -> EvalResult:
    base: dict[str, Any] = {
        "kind": EvalKind.BASE,
        "status": StepStatus.COMPLETED,
        "n_total": 10,
        "n_scored": 10,
        "tokens_in": 3000,
        "tokens_out": 250,
    }
    return EvalResult(**{**base, **fields})


# --- logged usage -------------------------------------------------------------------------------


def test_logged_usage_sums_what_the_responses_report() -> None:
    records = [
        record(usage={"prompt_tokens": 300, "completion_tokens": 30}),
        record(usage={"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}),
        record(usage={"prompt_tokens": 200}),  # no completion count: counts as 0 out
        record(usage=None),  # no usage: not counted
        record(usage={"prompt_tokens": True, "completion_tokens": -5}),  # nonsense: not counted
        record(model="other", usage="broken"),
    ]
    usage = logged_usage(records)
    assert usage == LoggedUsage(requests=3, tokens_in=600, tokens_out=40, model="gpt-big")
    assert usage.tokens_in_per_request == 200 and usage.tokens_out_per_request == pytest.approx(
        40 / 3
    )


def test_logged_usage_falls_back_to_the_requested_model() -> None:
    usage = logged_usage([record(model=None, usage={"prompt_tokens": 1})])
    assert usage.model == "requested"
    empty = logged_usage([])
    assert empty == LoggedUsage(0, 0, 0, None)
    assert empty.tokens_in_per_request is None and empty.tokens_out_per_request is None


# --- formulas -----------------------------------------------------------------------------------


def test_token_cost_formula() -> None:
    entry = PRICING.models["gpt-big"]
    # 300 × $3/M + 30 × $15/M = $0.00135 per request = $1.35 per 1,000
    assert token_cost_per_1k(entry, 300, 30) == pytest.approx(1.35)
    only_output = PriceEntry(output_per_1m=2.0)
    assert token_cost_per_1k(only_output, 1000, 500) == pytest.approx(1.0)


def test_gpu_cost_formula() -> None:
    entry = PRICING.models["nim"]
    # $2/GPU-hour × 2 GPUs = $4/h; 12 requests/s = 43,200/h → $0.0926 per 1,000
    assert gpu_cost_per_1k(entry, 12.0) == pytest.approx(4 * 1000 / 43_200)
    with pytest.raises(ValueError):
        gpu_cost_per_1k(entry, 0)
    with pytest.raises(ValueError):
        gpu_cost_per_1k(PRICING.models["small"], 1.0)


def test_find_price_takes_the_first_known_key() -> None:
    assert find_price(PRICING, None, "nope", "small", "gpt-big")[0] == "small"
    assert find_price(PRICING, "nope") == (None, None)


# --- production ---------------------------------------------------------------------------------


def test_production_cost_from_logged_usage() -> None:
    usage = LoggedUsage(requests=40, tokens_in=12_000, tokens_out=1200, model="gpt-big")
    cost = production_cost(PRICING, usage)
    assert cost.cost_per_1k == pytest.approx(1.35)
    assert cost == ProductionCost(
        model="gpt-big",
        price_key="gpt-big",
        requests=40,
        tokens_in_per_request=300,
        tokens_out_per_request=30,
        cost_per_1k=cost.cost_per_1k,
    )


def test_production_model_can_be_named_in_config() -> None:
    pricing = PRICING.model_copy(update={"production_model": "small"})
    cost = production_cost(pricing, LoggedUsage(10, 1000, 100, "gpt-big"))
    assert cost.price_key == "small" and cost.model == "small"
    assert cost.cost_per_1k == pytest.approx((100 * 0.1 + 10 * 0.4) / 1000)


@pytest.mark.parametrize(
    ("usage", "pricing", "note"),
    [
        (None, PRICING, "not read"),
        (LoggedUsage(0, 0, 0, "gpt-big"), PRICING, "carry no token usage"),
        (LoggedUsage(5, 50, 5, "unknown-model"), PRICING, "no price for unknown-model"),
        (
            LoggedUsage(5, 50, 5, "nim"),
            PRICING,
            "priced per GPU-hour: set its throughput_rps",
        ),
    ],
)
def test_production_cost_unknown_says_why(
    usage: LoggedUsage | None, pricing: PricingConfig, note: str
) -> None:
    cost = production_cost(pricing, usage)
    assert cost.cost_per_1k is None
    assert note in (cost.note or "")


def test_self_hosted_production_with_a_configured_throughput() -> None:
    cost = production_cost(PRICING, LoggedUsage(5, 50, 5, "nim-fixed"))
    assert cost.cost_per_1k == pytest.approx(2.0 * 1000 / (10 * 3600))


# --- candidates ---------------------------------------------------------------------------------


def test_candidate_priced_per_token_with_savings() -> None:
    production = ProductionCost(cost_per_1k=1.35)
    cost = eval_cost(PRICING, evaluation(), candidate="small", model="org/x", production=production)
    expected = (300 * 0.1 + 25 * 0.4) / 1000  # per request × 1,000
    assert cost.basis == "tokens" and cost.price_key == "small"
    assert cost.cost_per_1k == pytest.approx(expected)
    assert cost.savings_per_1k == pytest.approx(1.35 - expected)
    assert cost.savings_fraction == pytest.approx((1.35 - expected) / 1.35)


def test_candidate_lookup_order_name_then_eval_model_then_candidate_model() -> None:
    by_eval_model = eval_cost(
        PRICING, evaluation(model="org/model-id"), candidate="unpriced", model="small"
    )
    assert by_eval_model.price_key == "org/model-id"
    by_model = eval_cost(PRICING, evaluation(), candidate="unpriced", model="org/model-id")
    assert by_model.price_key == "org/model-id"
    unknown = eval_cost(PRICING, evaluation(), candidate="unpriced", model="unpriced")
    assert unknown.cost_per_1k is None and "no price for unpriced" in (unknown.note or "")


def test_token_pricing_needs_usage_and_answers() -> None:
    no_usage = eval_cost(
        PRICING, evaluation(tokens_in=0, tokens_out=0), candidate="small", model=None
    )
    assert no_usage.cost_per_1k is None and "no token usage" in (no_usage.note or "")
    no_answer = eval_cost(PRICING, evaluation(n_scored=0), candidate="small", model=None)
    assert no_answer.cost_per_1k is None and "no request was answered" in (no_answer.note or "")


def test_gpu_pricing_uses_the_measured_throughput() -> None:
    cost = eval_cost(
        PRICING, evaluation(throughput_rps=12.0, concurrency=8), candidate="nim", model=None
    )
    assert cost.basis == "gpu_hour"
    assert cost.cost_per_1k == pytest.approx(gpu_cost_per_1k(PRICING.models["nim"], 12.0))
    assert "measured 12 requests/s at concurrency 8" in (cost.note or "")


def test_gpu_pricing_prefers_a_configured_throughput() -> None:
    cost = eval_cost(PRICING, evaluation(throughput_rps=99.0), candidate="nim-fixed", model=None)
    assert cost.cost_per_1k == pytest.approx(2.0 * 1000 / (10 * 3600))


def test_gpu_pricing_estimates_throughput_from_latency() -> None:
    latency = LatencySummary(n=10, mean_s=0.5)
    cost = eval_cost(
        PRICING, evaluation(concurrency=4, latency=latency), candidate="nim", model=None
    )
    # Little's law: 4 in flight / 0.5 s each = 8 requests/s
    assert cost.cost_per_1k == pytest.approx(gpu_cost_per_1k(PRICING.models["nim"], 8.0))
    assert "concurrency / mean latency" in (cost.note or "")
    unknown = eval_cost(PRICING, evaluation(), candidate="nim", model=None)
    assert unknown.cost_per_1k is None and "throughput_rps" in (unknown.note or "")


def test_savings_need_a_production_cost() -> None:
    cost = eval_cost(
        PRICING,
        evaluation(),
        candidate="small",
        model=None,
        production=ProductionCost(cost_per_1k=None),
    )
    assert cost.savings_per_1k is None and cost.savings_fraction is None
    free = eval_cost(
        PRICING,
        evaluation(),
        candidate="small",
        model=None,
        production=ProductionCost(cost_per_1k=0.0),
    )
    assert free.savings_per_1k is not None and free.savings_per_1k < 0
    assert free.savings_fraction is None
