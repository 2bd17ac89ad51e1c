"""The sections that turn a run's scores into a decision: acceptance targets, the price table
and notifications (see docs/results.md)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from flywheel.config.base import Section as _Section

LOWER_IS_BETTER = frozenset(
    {
        "latency_p50_s",
        "latency_p95_s",
        "ttft_p50_s",
        "ttft_p95_s",
        "failure_rate",
        "cost_per_1k",
        "unexpected_tool_rate",
        "llm_judge_unparsed",
    }
)
"""Metrics where smaller is better: a bare number as their acceptance target means "at most"."""

_TARGET_RE = re.compile(r"^\s*(>=|<=|≥|≤)?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_METRIC_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")


class AcceptanceTarget(_Section):
    """One acceptance rule: ``metric op value``, e.g. function_name_and_args_accuracy >= 0.95."""

    metric: str
    op: Literal[">=", "<="]
    value: float

    def __str__(self) -> str:
        return f"{self.metric} {'≥' if self.op == '>=' else '≤'} {self.value:g}"


def parse_target(metric: str, spec: float | int | str) -> AcceptanceTarget:
    """``(metric, ">= 0.95" | "<= 2" | 0.95)`` → an :class:`AcceptanceTarget`.

    A bare number means "at least" except for the metrics in :data:`LOWER_IS_BETTER`, where it
    means "at most". ValueError names the metric when the spec cannot be read.
    """
    if not _METRIC_RE.match(metric):
        raise ValueError(f"acceptance target name {metric!r} is not a metric name")
    if isinstance(spec, bool):
        raise ValueError(f"target of {metric} must be a number or '>= N' / '<= N', not {spec!r}")
    if isinstance(spec, int | float):
        op = "<=" if metric in LOWER_IS_BETTER else ">="
        return AcceptanceTarget(metric=metric, op=op, value=float(spec))
    match = _TARGET_RE.match(str(spec))
    if not match:
        raise ValueError(f"target of {metric} must be a number or '>= N' / '<= N', not {spec!r}")
    symbol, number = match.groups()
    if symbol is None:
        op = "<=" if metric in LOWER_IS_BETTER else ">="
    else:
        op = ">=" if symbol in (">=", "≥") else "<="
    return AcceptanceTarget(metric=metric, op=op, value=float(number))


class AcceptanceConfig(_Section):
    """When a candidate's evaluation is good enough to replace the production model."""

    targets: dict[str, float | str] = Field(
        default_factory=dict,
        description="metric → target, e.g. {function_name_and_args_accuracy: '>= 0.95', "
        "latency_p95_s: '<= 2'}; empty: the workload's headline metric >= min_headline_score",
    )
    min_headline_score: float = Field(
        0.9,
        description="the target on the headline metric (names+args accuracy, or ROUGE-L) when "
        "`targets` is empty",
    )

    @field_validator("targets", mode="before")
    @classmethod
    def _readable_targets(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for metric, spec in value.items():
                parse_target(str(metric), spec)
        return value

    def target_list(self, headline_metric: str) -> list[AcceptanceTarget]:
        """The targets to check; the default target on ``headline_metric`` when none is set."""
        if not self.targets:
            default = AcceptanceTarget(
                metric=headline_metric, op=">=", value=self.min_headline_score
            )
            return [default]
        return [parse_target(metric, spec) for metric, spec in self.targets.items()]


class PriceEntry(_Section):
    """The price of one model: per token (hosted APIs) or per GPU-hour (self-hosted NIM, local)."""

    input_per_1m: float | None = Field(None, ge=0, description="$ per 1M input (prompt) tokens")
    output_per_1m: float | None = Field(None, ge=0, description="$ per 1M output tokens")
    gpu_hour: float | None = Field(None, ge=0, description="$ per GPU-hour (self-hosted)")
    gpus: int = Field(1, ge=1, description="GPUs one deployment of the model uses")
    throughput_rps: float | None = Field(
        None,
        gt=0,
        description="requests/s one deployment serves; null: measured by the evaluation",
    )

    @model_validator(mode="after")
    def _one_basis(self) -> PriceEntry:
        by_tokens = self.input_per_1m is not None or self.output_per_1m is not None
        if by_tokens and self.gpu_hour is not None:
            raise ValueError("give token prices or gpu_hour, not both")
        if not by_tokens and self.gpu_hour is None:
            raise ValueError("give input_per_1m/output_per_1m (hosted) or gpu_hour (self-hosted)")
        return self


class PricingConfig(_Section):
    """The price table that turns token usage and throughput into $ per 1,000 requests."""

    currency: str = Field("USD", min_length=1, max_length=8)
    production_model: str | None = Field(
        None,
        description="price key of the production model (null: the model named in the logged "
        "responses)",
    )
    models: dict[str, PriceEntry] = Field(
        default_factory=dict,
        description="price key → price; a candidate is looked up by its name, then its model id",
    )


NotificationEvent = Literal["completed", "failed", "cancelled", "recommendation_changed"]


class NotificationsConfig(_Section):
    """A webhook called when a run ends (Slack-compatible JSON: a ``text`` field)."""

    webhook_url_env: str | None = Field(
        None,
        description="environment variable on the worker holding the webhook URL (the URL is a "
        "secret: it never enters configuration snapshots or history)",
    )
    events: list[NotificationEvent] = Field(
        default_factory=lambda: ["completed", "failed", "recommendation_changed"],
        description="when to call it: completed, failed, cancelled, recommendation_changed",
    )
    timeout_s: float = Field(10.0, gt=0, description="timeout of one webhook call")
    max_attempts: int = Field(3, ge=1, le=10, description="tries per notification")
