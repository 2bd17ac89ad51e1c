"""What a model costs per 1,000 requests of one workload, and what a candidate saves.

Two price bases (``pricing.models`` in the configuration):

* **tokens** (hosted APIs): ``$ per 1k requests = (tokens_in × input_per_1m + tokens_out ×
  output_per_1m) / 1000``, with the mean tokens per answered request. For a candidate these come
  from its replies' ``usage``; for the production model from the logged responses' ``usage``.
* **gpu_hour** (self-hosted NIM, local): ``$ per 1k requests = gpu_hour × gpus × 1000 /
  (throughput_rps × 3600)``. The throughput is the price entry's ``throughput_rps`` when given,
  else what the evaluation measured (requests answered per second at ``evaluation.concurrency``),
  else ``concurrency / mean latency`` (Little's law). A replay at modest concurrency serves fewer
  requests per second than a saturated deployment, so this errs on the expensive side.

A candidate is priced by its name first, then its model id (a customized model is priced like
its base, under the candidate's name). Savings are production minus candidate, per 1,000
requests and as a share of production. Pure functions: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flywheel.config import PriceEntry, PricingConfig
from flywheel.schemas import EvalCost, EvalResult, ProductionCost

__all__ = [
    "LoggedUsage",
    "eval_cost",
    "find_price",
    "gpu_cost_per_1k",
    "logged_usage",
    "production_cost",
    "token_cost_per_1k",
]


@dataclass(frozen=True)
class LoggedUsage:
    """Token usage of the production model's logged answers to the eval records."""

    requests: int
    """Records whose logged response has a usable ``usage``."""
    tokens_in: int
    tokens_out: int
    model: str | None
    """The model most of the logged responses name (``response.model``, else ``request.model``)."""

    @property
    def tokens_in_per_request(self) -> float | None:
        return self.tokens_in / self.requests if self.requests else None

    @property
    def tokens_out_per_request(self) -> float | None:
        return self.tokens_out / self.requests if self.requests else None


def logged_usage(records: Iterable[Mapping[str, Any]]) -> LoggedUsage:
    """Sum the logged ``response.usage`` of eval records (log-record shaped dicts)."""
    requests = tokens_in = tokens_out = 0
    models: Counter[str] = Counter()
    for record in records:
        response = record.get("response") if isinstance(record, Mapping) else None
        response = response if isinstance(response, Mapping) else {}
        request = record.get("request") if isinstance(record, Mapping) else None
        request = request if isinstance(request, Mapping) else {}
        model = response.get("model") or request.get("model")
        if isinstance(model, str) and model:
            models[model] += 1
        usage = response.get("usage")
        if not isinstance(usage, Mapping):
            continue
        prompt = _count(usage.get("prompt_tokens"))
        completion = _count(usage.get("completion_tokens"))
        if prompt is None and completion is None:
            continue
        requests += 1
        tokens_in += prompt or 0
        tokens_out += completion or 0
    model = models.most_common(1)[0][0] if models else None
    return LoggedUsage(requests, tokens_in, tokens_out, model)


def find_price(pricing: PricingConfig, *keys: str | None) -> tuple[str | None, PriceEntry | None]:
    """The first price entry among ``keys`` (None and unknown keys are skipped)."""
    for key in keys:
        if key and key in pricing.models:
            return key, pricing.models[key]
    return None, None


def token_cost_per_1k(
    entry: PriceEntry, tokens_in_per_request: float, tokens_out_per_request: float
) -> float:
    """$ per 1,000 requests at per-token prices (a missing side is priced at 0)."""
    per_request = (
        tokens_in_per_request * (entry.input_per_1m or 0.0)
        + tokens_out_per_request * (entry.output_per_1m or 0.0)
    ) / 1_000_000
    return per_request * 1000


def gpu_cost_per_1k(entry: PriceEntry, throughput_rps: float) -> float:
    """$ per 1,000 requests for a deployment of ``entry.gpus`` GPUs serving ``throughput_rps``."""
    if entry.gpu_hour is None:
        raise ValueError("the price entry has no gpu_hour")
    if throughput_rps <= 0:
        raise ValueError(f"throughput must be positive, got {throughput_rps}")
    return entry.gpu_hour * entry.gpus * 1000 / (throughput_rps * 3600)


def production_cost(pricing: PricingConfig, usage: LoggedUsage | None) -> ProductionCost:
    """The production model's $ per 1,000 requests from its logged usage and price entry."""
    if usage is None:
        return ProductionCost(note="the eval records were not read (no datasets)")
    model = usage.model
    key, entry = find_price(pricing, pricing.production_model, model)
    result = ProductionCost(
        model=pricing.production_model or model,
        price_key=key,
        requests=usage.requests,
        tokens_in_per_request=usage.tokens_in_per_request,
        tokens_out_per_request=usage.tokens_out_per_request,
    )
    if usage.requests == 0:
        result.note = "the logged responses carry no token usage"
        return result
    if entry is None:
        name = pricing.production_model or model or "the production model"
        result.note = f"no price for {name} (add it under pricing.models)"
        return result
    if entry.gpu_hour is not None:
        if entry.throughput_rps is None:
            result.note = f"{key} is priced per GPU-hour: set its throughput_rps"
            return result
        result.cost_per_1k = gpu_cost_per_1k(entry, entry.throughput_rps)
        return result
    assert usage.tokens_in_per_request is not None and usage.tokens_out_per_request is not None
    result.cost_per_1k = token_cost_per_1k(
        entry, usage.tokens_in_per_request, usage.tokens_out_per_request
    )
    return result


def eval_cost(
    pricing: PricingConfig,
    result: EvalResult,
    *,
    candidate: str,
    model: str | None,
    production: ProductionCost | None = None,
) -> EvalCost:
    """One evaluated candidate's $ per 1,000 requests and its saving against production."""
    key, entry = find_price(pricing, candidate, result.model, model)
    cost = EvalCost(price_key=key)
    if entry is None:
        cost.note = f"no price for {candidate} (add it under pricing.models)"
        return cost
    if entry.gpu_hour is not None:
        cost.basis = "gpu_hour"
        throughput, how = _throughput(entry, result)
        if throughput is None:
            cost.note = "no throughput measured (set throughput_rps in its price entry)"
            return cost
        cost.cost_per_1k = gpu_cost_per_1k(entry, throughput)
        cost.note = how
    else:
        cost.basis = "tokens"
        if not result.n_scored:
            cost.note = "no request was answered"
            return cost
        if result.tokens_in == 0 and result.tokens_out == 0:
            cost.note = "the endpoint reported no token usage"
            return cost
        cost.cost_per_1k = token_cost_per_1k(
            entry, result.tokens_in / result.n_scored, result.tokens_out / result.n_scored
        )
    if production is not None and production.cost_per_1k is not None:
        cost.savings_per_1k = production.cost_per_1k - cost.cost_per_1k
        if production.cost_per_1k > 0:
            cost.savings_fraction = cost.savings_per_1k / production.cost_per_1k
    return cost


def _throughput(entry: PriceEntry, result: EvalResult) -> tuple[float | None, str | None]:
    """Requests per second of one deployment, and how it was obtained (None: unknown)."""
    if entry.throughput_rps is not None:
        return entry.throughput_rps, "at the configured throughput"
    if result.throughput_rps:
        at = f" at concurrency {result.concurrency}" if result.concurrency else ""
        return result.throughput_rps, f"at the measured {result.throughput_rps:.3g} requests/s{at}"
    mean = result.latency.mean_s if result.latency is not None else None
    if result.concurrency and mean:
        rps = result.concurrency / mean
        return rps, f"at an estimated {rps:.3g} requests/s (concurrency / mean latency)"
    return None, None


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)
