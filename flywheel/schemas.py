"""The pydantic models that cross boundaries: workflow and activity inputs/outputs, stored results.

One model per workflow/activity parameter, so fields can be added compatibly. None of them holds
a log record or a dataset line: datasets travel as :class:`DatasetRef` (by reference).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flywheel.config import AcceptanceTarget, Candidate, Platform, RunConfig

__all__ = [
    "AcceptanceTarget",
    "ArtifactRef",
    "AssessRunOutput",
    "Candidate",
    "CandidateInput",
    "CandidateProgress",
    "CandidateResult",
    "CurationReport",
    "CustomizationResult",
    "CustomizeInput",
    "DatasetBundle",
    "DatasetFormat",
    "DatasetRef",
    "DeployInput",
    "Deployment",
    "EvalAssessment",
    "EvalCost",
    "EvalKind",
    "EvalProgress",
    "EvalResult",
    "EvaluateInput",
    "FlywheelRunInput",
    "FlywheelRunResult",
    "LatencySummary",
    "LogRecord",
    "Platform",
    "PrepareDatasetsInput",
    "ProductionCost",
    "PublishRunInput",
    "PublishRunOutput",
    "Recommendation",
    "ResolveConfigInput",
    "RunAssessment",
    "RunConfig",
    "RunProgress",
    "RunStatus",
    "ScoreInterval",
    "StepStatus",
    "TargetVerdict",
    "TeardownInput",
    "Verdict",
    "WorkloadType",
]


class WorkloadType(StrEnum):
    TOOL_CALLING = "tool_calling"
    GENERIC = "generic"


class EvalKind(StrEnum):
    """How a candidate was evaluated: as is, with few-shot examples, or after fine-tuning."""

    BASE = "base"
    ICL = "icl"
    CUSTOMIZED = "customized"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Verdict(StrEnum):
    """How one evaluation compares with one acceptance target, given its confidence interval."""

    MEETS = "meets"
    """The whole interval is on the good side of the target."""
    BELOW = "below"
    """The whole interval is on the bad side of the target (worse than it)."""
    INCONCLUSIVE = "inconclusive"
    """The interval straddles the target, or the metric was not measured."""


def utcnow() -> datetime:
    """Timezone-aware now in UTC (never use in workflow code: use ``workflow.now()``)."""
    return datetime.now(UTC)


# --- logs -----------------------------------------------------------------------------------


class LogRecord(BaseModel):
    """One logged LLM call (blueprint-spec §1): an OpenAI chat request and its response.

    Extra top-level keys are kept (producers add versioned fields); ``timestamp`` accepts epoch
    seconds (int/float) or an ISO 8601 string and is normalised to an aware UTC datetime.
    """

    model_config = ConfigDict(extra="allow")

    workload_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    timestamp: datetime
    request: dict[str, Any]
    response: dict[str, Any]

    @field_validator("timestamp", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be epoch seconds or an ISO 8601 string, not a boolean")
        if isinstance(value, int | float):
            # Epoch *seconds* (the blueprint's documented unit); values this large are millis.
            seconds = value / 1000 if abs(value) > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        return value

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @field_validator("request")
    @classmethod
    def _request_has_messages(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "messages" not in value:
            raise ValueError("request.messages is missing")
        if not isinstance(value["messages"], list):
            raise ValueError("request.messages must be a list")
        return value

    @field_validator("response")
    @classmethod
    def _response_has_choices(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "choices" not in value:
            raise ValueError("response.choices is missing")
        if not isinstance(value["choices"], list):
            raise ValueError("response.choices must be a list")
        return value


# --- datasets -------------------------------------------------------------------------------


class DatasetFormat(StrEnum):
    EVAL = "eval"
    """Log records, eval-formatted (blueprint §3.3): request tool-call arguments as JSON strings."""
    TRAINING = "training"
    """Chat lines ``{"messages": [...], "tools": [...]}`` that NeMo Customizer and peft read."""


class DatasetRef(BaseModel):
    """A JSONL dataset in the artifact store, addressed by content."""

    uri: str
    sha256: str
    n_records: int = Field(ge=0)
    format: DatasetFormat


class CurationReport(BaseModel):
    """What curation did to a workload's logs: counts a person can read."""

    workload_type: WorkloadType
    seed: int
    total_records: int = 0
    dropped: dict[str, int] = Field(
        default_factory=dict, description="reason → number of records removed for it"
    )
    selected: int = 0
    eval_records: int = 0
    train_records: int = 0
    val_records: int = 0
    tool_counts: dict[str, int] = Field(
        default_factory=dict, description="tool name (or no_tool) → selected records"
    )
    tool_splits: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="tool name → records in each of eval, train and val"
    )
    pii_redactions: dict[str, int] = Field(
        default_factory=dict, description="PII detector → matches replaced (when enabled)"
    )
    icl: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="ICL dataset per context length → selection, examples and token stats",
    )
    warnings: list[str] = Field(default_factory=list)


class DatasetBundle(BaseModel):
    """The datasets of one run. ``icl`` maps a candidate name to its few-shot eval set."""

    eval: DatasetRef
    train: DatasetRef
    val: DatasetRef
    icl: dict[str, DatasetRef] = Field(default_factory=dict)
    workload_type: WorkloadType
    report: CurationReport


# --- workflow inputs ------------------------------------------------------------------------


class FlywheelRunInput(BaseModel):
    """Start a flywheel run for one workload."""

    workload_id: str = Field(min_length=1)
    client_id: str | None = Field(None, description="None: logs of every client")
    config_overrides: dict[str, Any] = Field(
        default_factory=dict, description="merged onto the worker's configuration"
    )
    candidates: list[str] | None = Field(
        None, description="names of configured candidates to run (None: all)"
    )
    since: str | None = Field(
        None, description="curate logs from this instant (ISO) or this long before the run (7d)"
    )
    until: str | None = Field(
        None, description="curate logs before this instant (ISO) or this long before the run"
    )


class ResolveConfigInput(BaseModel):
    config_overrides: dict[str, Any] = Field(default_factory=dict)
    candidates: list[str] | None = None


class PrepareDatasetsInput(BaseModel):
    run_id: str
    workload_id: str
    client_id: str | None = None
    config: RunConfig
    since: datetime | None = Field(None, description="only logs at or after this instant")
    until: datetime | None = Field(None, description="only logs before this instant")


class Deployment(BaseModel):
    """Where a deployed candidate answers, and what its platform can do with it."""

    candidate: str
    platform: Platform
    model: str = Field(description="the model id to send in requests")
    base_url: str | None = Field(None, description="OpenAI-compatible base URL, if any")
    supports_customization: bool = False
    unsupported_reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class CandidateInput(BaseModel):
    """Input of CandidateWorkflow: one candidate's whole lifecycle within a run."""

    run_id: str
    candidate: Candidate
    config: RunConfig
    datasets: DatasetBundle


class ReleaseRunInput(BaseModel):
    """Release what a run holds beyond its candidates (a judge NIM deployed for the run)."""

    run_id: str
    config: RunConfig


class DeployInput(BaseModel):
    run_id: str
    candidate: Candidate
    config: RunConfig


class EvaluateInput(BaseModel):
    run_id: str
    candidate: Candidate
    config: RunConfig
    deployment: Deployment
    kind: EvalKind
    dataset: DatasetRef
    workload_type: WorkloadType
    model: str | None = Field(None, description="model id to evaluate (the customized model)")


class CustomizeInput(BaseModel):
    run_id: str
    candidate: Candidate
    config: RunConfig
    deployment: Deployment
    train: DatasetRef
    val: DatasetRef


class TeardownInput(BaseModel):
    run_id: str
    candidate: Candidate
    config: RunConfig
    deployment: Deployment | None = None
    customized_model: str | None = None


# --- results --------------------------------------------------------------------------------


class ScoreInterval(BaseModel):
    """A score's confidence interval and the sample it was computed from."""

    low: float
    high: float
    n: int = Field(ge=0, description="records the score averages over")
    level: float = 0.95
    method: str = Field("bootstrap", description="bootstrap (percentile) or wilson")


class LatencySummary(BaseModel):
    """The distribution of one evaluation's request latencies, in a few numbers.

    Quantiles and a histogram of at most a few dozen bins: enough for a distribution chart,
    never one number per request (workflow history stays small).
    """

    n: int = 0
    mean_s: float | None = None
    min_s: float | None = None
    p25_s: float | None = None
    p50_s: float | None = None
    p75_s: float | None = None
    p90_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    max_s: float | None = None
    histogram_edges_s: list[float] = Field(
        default_factory=list, description="bin edges (one more than the counts)"
    )
    histogram_counts: list[int] = Field(default_factory=list)


class ArtifactRef(BaseModel):
    """A small JSONL file in the artifact store that belongs to one run (e.g. examples)."""

    uri: str
    sha256: str
    n_records: int = Field(ge=0)


class EvalResult(BaseModel):
    """One evaluation of one candidate: scores against the production model's logged answers."""

    kind: EvalKind
    status: StepStatus
    model: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    per_tool: dict[str, dict[str, float | int | None]] = Field(
        default_factory=dict,
        description="tool-calling: label (tool name or no_tool) → support, predicted, "
        "precision, recall, f1 of the first call",
    )
    n_total: int = Field(0, description="eval records replayed")
    n_scored: int = Field(0, description="records answered and scored")
    n_failed: int = Field(0, description="requests that failed (not wrong answers)")
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None
    skipped_reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    intervals: dict[str, ScoreInterval] = Field(
        default_factory=dict,
        description="metric → confidence interval from the per-record scores (empty when the "
        "evaluator keeps no per-record scores, e.g. NeMo Evaluator)",
    )
    latency: LatencySummary | None = Field(None, description="answered requests' latencies")
    ttft_p50_s: float | None = Field(None, description="time to first token (streamed replies)")
    ttft_p95_s: float | None = None
    tokens_per_s: float | None = Field(
        None, description="output tokens per second of request time (answered requests)"
    )
    throughput_rps: float | None = Field(
        None, description="requests answered per second over the replay, at `concurrency`"
    )
    concurrency: int | None = Field(None, description="requests in flight while measured")
    examples: ArtifactRef | None = Field(
        None, description="the records where the candidate differs most from production"
    )

    @property
    def failure_rate(self) -> float | None:
        """Failed requests / records replayed (None when nothing was replayed)."""
        return self.n_failed / self.n_total if self.n_total else None

    @property
    def tokens_out_per_request(self) -> float | None:
        """Output tokens per answered request (None when none was answered)."""
        return self.tokens_out / self.n_scored if self.n_scored else None


class CustomizationResult(BaseModel):
    status: StepStatus
    model: str | None = Field(None, description="id of the customized model")
    adapter_uri: str | None = None
    job_id: str | None = None
    epochs_completed: int = 0
    steps_completed: int = 0
    train_loss: float | None = None
    val_loss: float | None = None
    resumed_from_step: int | None = Field(
        None, description="the checkpoint step a retried customization resumed from"
    )
    error: str | None = None
    skipped_reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class CandidateResult(BaseModel):
    name: str
    model: str
    platform: Platform
    status: StepStatus
    evals: list[EvalResult] = Field(default_factory=list)
    customization: CustomizationResult | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def eval(self, kind: EvalKind) -> EvalResult | None:
        return next((e for e in self.evals if e.kind == kind), None)


class TargetVerdict(BaseModel):
    """One evaluation against one acceptance target."""

    metric: str
    op: str = Field(description=">= or <=")
    target: float
    value: float | None = None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    verdict: Verdict
    note: str | None = None

    def describe(self) -> str:
        """``recall 0.930 [0.850, 0.980] vs ≥ 0.95``-like text for reasons and messages."""
        symbol = "≥" if self.op == ">=" else "≤"
        if self.value is None:
            return f"{self.metric} not measured (target {symbol} {self.target:g})"
        interval = (
            f" [{self.low:.3f}, {self.high:.3f}]"
            if self.low is not None and self.high is not None
            else ""
        )
        return f"{self.metric} {self.value:.3f}{interval} vs {symbol} {self.target:g}"


class EvalCost(BaseModel):
    """What one evaluated candidate would cost per 1,000 requests, and the saving."""

    cost_per_1k: float | None = None
    basis: str | None = Field(None, description="tokens or gpu_hour")
    price_key: str | None = None
    savings_per_1k: float | None = Field(None, description="production cost minus this cost")
    savings_fraction: float | None = Field(None, description="savings / production cost")
    note: str | None = Field(None, description="why a cost is unknown, or how it was estimated")


class ProductionCost(BaseModel):
    """The production model's cost per 1,000 requests, from the logged token usage."""

    model: str | None = None
    price_key: str | None = None
    requests: int = Field(0, description="eval records whose logged response has usage")
    tokens_in_per_request: float | None = None
    tokens_out_per_request: float | None = None
    cost_per_1k: float | None = None
    note: str | None = None


class EvalAssessment(BaseModel):
    """One candidate evaluation's headline numbers: score, confidence, verdicts, cost."""

    candidate: str
    kind: EvalKind
    model: str | None = None
    status: StepStatus
    metric: str = Field(description="the headline metric")
    score: float | None = None
    interval: ScoreInterval | None = None
    n: int = 0
    failure_rate: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    ttft_p50_s: float | None = None
    tokens_out_per_request: float | None = None
    tokens_per_s: float | None = None
    cost: EvalCost = Field(default_factory=EvalCost)
    verdicts: list[TargetVerdict] = Field(default_factory=list)
    meets_all: bool = False

    @property
    def label(self) -> str:
        return f"{self.candidate}/{self.kind.value}"


class Recommendation(BaseModel):
    """The cheapest candidate evaluation that meets every acceptance target, or none and why.

    Advice for a person: nothing is deployed automatically.
    """

    candidate: str | None = None
    kind: EvalKind | None = None
    model: str | None = None
    metric: str | None = None
    score: float | None = None
    interval: ScoreInterval | None = None
    cost_per_1k: float | None = None
    savings_per_1k: float | None = None
    savings_fraction: float | None = None
    currency: str = "USD"
    reason: str
    previous_run_id: str | None = Field(None, description="the workload's previous finished run")
    previous_candidate: str | None = None
    previous_kind: EvalKind | None = None
    changed: bool = Field(False, description="differs from the previous run's recommendation")

    @property
    def label(self) -> str | None:
        """``candidate/kind``, or None when nothing is recommended."""
        if self.candidate is None or self.kind is None:
            return None
        return f"{self.candidate}/{self.kind.value}"


class RunAssessment(BaseModel):
    """Costs, confidence and verdicts of every evaluation of a run."""

    currency: str = "USD"
    targets: list[AcceptanceTarget] = Field(default_factory=list)
    production: ProductionCost | None = None
    evals: list[EvalAssessment] = Field(default_factory=list)

    def find(self, candidate: str, kind: EvalKind | str) -> EvalAssessment | None:
        return next(
            (e for e in self.evals if e.candidate == candidate and e.kind == EvalKind(kind)), None
        )


class FlywheelRunResult(BaseModel):
    """Everything recorded about one run; stored in the result store and returned by the workflow.

    ``revision`` grows with every save so a store never replaces a newer snapshot by an older one.
    """

    run_id: str
    workload_id: str
    client_id: str | None = None
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    input: FlywheelRunInput | None = None
    config: RunConfig | None = None
    datasets: DatasetBundle | None = None
    candidates: list[CandidateResult] = Field(default_factory=list)
    error: str | None = None
    revision: int = 0
    recommendation: Recommendation | None = Field(
        None, description="set when the run ends: what could replace the production model"
    )
    assessment: RunAssessment | None = Field(
        None, description="set when the run ends: costs, intervals and verdicts per evaluation"
    )

    @model_validator(mode="after")
    def _aware_times(self) -> FlywheelRunResult:
        for name in ("started_at", "finished_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=UTC))
        return self


class AssessRunOutput(BaseModel):
    """What the assess_run activity hands the workflow when a run ends."""

    assessment: RunAssessment
    recommendation: Recommendation
    search_attributes: list[str] = Field(
        default_factory=list,
        description="result search attributes registered on the namespace (safe to upsert)",
    )


class PublishRunInput(BaseModel):
    """Notify and track a finished run; the run is read back from the result store."""

    run_id: str


class PublishRunOutput(BaseModel):
    webhook: str | None = Field(None, description="sent, skipped, or why it failed")
    mlflow: str | None = Field(None, description="the experiment URI, or why nothing was logged")


# --- progress -------------------------------------------------------------------------------


class EvalProgress(BaseModel):
    status: StepStatus = StepStatus.PENDING
    done: int = 0
    total: int = 0


class CandidateProgress(BaseModel):
    name: str
    status: StepStatus = StepStatus.PENDING
    stage: str = "waiting"
    evals: dict[EvalKind, EvalProgress] = Field(default_factory=dict)
    customization: StepStatus | None = None
    detail: dict[str, Any] = Field(
        default_factory=dict, description="latest heartbeat of the running activity, if known"
    )
    error: str | None = None


class RunProgress(BaseModel):
    run_id: str
    workload_id: str
    status: RunStatus
    stage: str
    started_at: datetime
    datasets: CurationReport | None = None
    candidates: list[CandidateProgress] = Field(default_factory=list)
    error: str | None = None
