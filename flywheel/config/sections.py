"""The configuration's sections: the blueprint's (``data_split_config``, ``nims``, …), ours
(candidates, curation, evaluation, Temporal, worker) and :class:`RunConfig`, the effective
configuration of one run. Pure models: nothing here reads files or the environment.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from flywheel.config.base import Section as _Section
from flywheel.config.decision import (
    AcceptanceConfig,
    NotificationsConfig,
    PricingConfig,
)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _drop_inline_api_key(data: Any) -> Any:
    # The blueprint ignores an `api_key` written in YAML; so do we: keys come from the environment.
    if isinstance(data, dict) and "api_key" in data:
        data = {k: v for k, v in data.items() if k != "api_key"}
    return data


# --- blueprint sections (blueprint-spec §2.2) -----------------------------------------------


class NMPConfig(_Section):
    """Where NeMo Microservices live and how the ``nemo`` platform talks to them."""

    nemo_base_url: str
    nim_base_url: str
    datastore_base_url: str
    nmp_namespace: str = "dfwbp"
    evaluator: Literal["builtin", "nemo"] = Field(
        "builtin",
        description="builtin: the flywheel's evaluator replays the eval set against the NIM; "
        "nemo: NeMo Evaluator jobs (tool-calling metrics, LLM-judge similarity)",
    )
    api_key_env: str | None = Field(
        None, description="env var with the NMP API key (bearer token to the platform and NIM)"
    )
    hf_token_env: str | None = Field(
        "HF_TOKEN", description="env var with the Data Store token (its Hugging Face API)"
    )
    request_timeout_s: float = Field(60.0, gt=0, description="timeout of one NMP call")
    max_retries: int = Field(
        4, ge=0, description="retries of one NMP call on timeouts, connection errors, 429 and 5xx"
    )
    retry_backoff_s: float = Field(1.0, ge=0, description="first retry delay (doubles each time)")
    scheduling_timeout_s: float = Field(
        3600.0,
        gt=0,
        description="how long a customization job may wait for GPUs (NotEnoughResources) "
        "before the step fails",
    )


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class MLflowConfig(_Section):
    enabled: bool = False
    tracking_uri: str = "http://0.0.0.0:5000"
    experiment_name_prefix: str = "data-flywheel"
    artifact_location: str = "./mlruns"


class CustomizerConfig(_Section):
    """NeMo Customizer training resources for one model (blueprint ``customizer_configs``)."""

    target: str
    gpus: int = Field(ge=1)
    num_nodes: int = Field(1, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    use_sequence_parallel: bool = False
    micro_batch_size: int = Field(1, ge=1)
    training_precision: str = "bf16-mixed"
    max_seq_length: int = Field(4096, ge=1)


class NIMConfig(_Section):
    """A blueprint ``nims[]`` entry: a NIM deployed through NeMo Deployment Management."""

    model_name: str = Field(min_length=1)
    model_type: Literal["llm", "embedding"] = "llm"
    tag: str | None = None
    context_length: int = Field(ge=1)
    gpus: int | None = Field(None, ge=0)
    pvc_size: str | None = None
    registry_base: str = "nvcr.io/nim"
    customization_enabled: bool = False
    customizer_configs: CustomizerConfig | None = None

    @model_validator(mode="after")
    def _customizer_needed(self) -> NIMConfig:
        if self.customization_enabled and self.customizer_configs is None:
            raise ValueError("customization_enabled is true, so customizer_configs is required")
        return self


class LLMJudgeConfig(_Section):
    """The LLM judge: a remote OpenAI-compatible endpoint or a NIM deployed for the run."""

    deployment_type: Literal["remote", "local"]
    model_name: str
    url: str | None = None
    api_key_env: str | None = None
    context_length: int | None = Field(None, ge=1)
    gpus: int | None = Field(None, ge=0)
    pvc_size: str | None = None
    tag: str | None = None
    registry_base: str = "nvcr.io/nim"
    lifetime: Literal["run", "kept"] = Field(
        "run",
        description="local (a judge NIM deployed through NeMo): run — deployed for the run and "
        "deleted when it ends; kept — deployed once and kept for later runs",
    )

    _strip_key = model_validator(mode="before")(_drop_inline_api_key)

    @model_validator(mode="after")
    def _remote_needs_url(self) -> LLMJudgeConfig:
        if self.deployment_type == "remote" and not self.url:
            raise ValueError("a remote judge needs `url` (the full chat-completions URL)")
        return self


class EmbeddingConfig(_Section):
    """The embedding model used by semantic-similarity ICL."""

    deployment_type: Literal["remote", "local", "in_process"] = Field(
        "remote",
        description="remote: an OpenAI-compatible /v1/embeddings URL; local: an embedding NIM "
        "deployed through NeMo; in_process: a sentence-transformers model run by the worker",
    )
    model_name: str
    url: str | None = None
    model_path: str | None = Field(
        None, description="in_process: model directory (default: the bundled all-MiniLM-L6-v2)"
    )
    api_key_env: str | None = None
    context_length: int | None = Field(None, ge=1)
    gpus: int | None = Field(None, ge=0)
    pvc_size: str | None = None
    tag: str | None = None
    registry_base: str = "nvcr.io/nim"
    model_type: Literal["embedding"] = "embedding"

    _strip_key = model_validator(mode="before")(_drop_inline_api_key)


class SimilarityConfig(_Section):
    relevance_ratio: float = Field(0.7, ge=0.0, le=1.0)
    embedding_nim_config: EmbeddingConfig | None = None
    pool_size: int | None = Field(
        5000, ge=1, description="most train records embedded (seeded sample; null: all)"
    )


class DataSplitConfig(_Section):
    """How a run's logs become eval, train and validation sets."""

    eval_size: int = Field(20, ge=1)
    val_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    min_total_records: int = Field(50, ge=1)
    random_seed: int | None = Field(
        None, description="null derives a stable seed from the run id (so retries agree)"
    )
    limit: int = Field(10000, ge=1)
    parse_function_arguments: bool = True

    @model_validator(mode="after")
    def _limit_covers_minimum(self) -> DataSplitConfig:
        if self.limit < self.min_total_records:
            raise ValueError(
                f"limit ({self.limit}) cannot be less than min_total_records "
                f"({self.min_total_records})"
            )
        return self


PIIDetectorName = Literal["email", "phone", "card", "ip"]


class PIIConfig(_Section):
    """Optional redaction of personal data before any dataset is written (off by default)."""

    enabled: bool = False
    detectors: list[PIIDetectorName] = Field(
        default_factory=lambda: ["email", "phone", "card", "ip"],
        description="built-in detectors to apply",
    )
    custom: dict[str, str] = Field(
        default_factory=dict, description="extra detectors: name → regular expression"
    )
    replacement: str = Field(
        "[{name}]", description="what replaces a match; {name} is the detector's name in capitals"
    )

    @model_validator(mode="after")
    def _valid_patterns(self) -> PIIConfig:
        import re

        for name, pattern in self.custom.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
                raise ValueError(f"custom detector name {name!r} must be letters, digits or _")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"custom detector {name!r}: invalid regex: {exc}") from None
            if compiled.fullmatch(""):
                raise ValueError(f"custom detector {name!r}: the regex matches the empty string")
        return self


class CurationConfig(_Section):
    """Filters beyond the blueprint's: what counts as usable, duplicate or leaked, and PII."""

    keep_non_tool_records: bool = Field(
        True, description="keep plain answers in a tool-calling workload (scored on not calling)"
    )
    max_tool_properties: int | None = Field(
        8, ge=1, description="drop records offering a tool with more parameters (null: no limit)"
    )
    near_duplicate_threshold: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="drop records whose input is this similar (MinHash Jaccard) to a newer one",
    )
    leakage_guard: bool = Field(
        True, description="drop train/val records whose input (near-)duplicates an eval record"
    )
    pii: PIIConfig = PIIConfig()


class ICLConfig(_Section):
    max_context_length: int = Field(8192, ge=1)
    reserved_tokens: int = Field(2048, ge=0)
    max_examples: int = Field(3, ge=0)
    min_examples: int = Field(1, ge=0)
    example_selection: Literal["uniform_distribution", "semantic_similarity"] = (
        "uniform_distribution"
    )
    similarity_config: SimilarityConfig | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ICLConfig:
        if self.reserved_tokens >= self.max_context_length:
            raise ValueError("reserved_tokens must be smaller than max_context_length")
        if self.max_examples and self.min_examples > self.max_examples:
            raise ValueError("min_examples cannot exceed max_examples (0 turns ICL off)")
        if self.example_selection == "semantic_similarity" and (
            self.similarity_config is None or self.similarity_config.embedding_nim_config is None
        ):
            raise ValueError("semantic_similarity needs similarity_config.embedding_nim_config")
        return self


class TrainingConfig(_Section):
    training_type: Literal["sft"] = "sft"
    finetuning_type: Literal["lora"] = "lora"
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(0.0001, gt=0)
    max_steps: int | None = Field(None, ge=1, description="cap for quick runs (local platform)")
    max_seconds: float | None = Field(
        None, gt=0, description="time cap for quick runs (local platform)"
    )
    checkpoint_every_steps: int = Field(
        20, ge=1, description="local platform: checkpoint the adapter every N steps (resume)"
    )


class LoRAConfig(_Section):
    adapter_dim: int = Field(32, ge=1)
    adapter_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    adapter_alpha: int | None = Field(None, ge=1, description="null means 2 × adapter_dim")
    target_modules: list[str] | None = None


# --- our sections ---------------------------------------------------------------------------


class Platform(StrEnum):
    """Where a candidate's model operations run."""

    ENDPOINTS = "endpoints"
    LOCAL = "local"
    NEMO = "nemo"


class NimDeploymentOptions(_Section):
    """How the ``nemo`` platform deploys a candidate through Deployment Management."""

    tag: str | None = None
    gpus: int | None = Field(None, ge=0)
    pvc_size: str | None = None
    registry_base: str = "nvcr.io/nim"


class Candidate(_Section):
    """One model to try in place of the production model."""

    name: str = Field(description="unique, used in workflow ids and artifact paths")
    model: str = Field(min_length=1, description="model id sent to the endpoint / platform")
    platform: Platform = Platform.ENDPOINTS
    base_url: str | None = Field(None, description="OpenAI-compatible base URL (…/v1)")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    context_length: int = Field(8192, ge=1)
    customization_enabled: bool = False
    customizer: CustomizerConfig | None = None
    nim: NimDeploymentOptions | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="platform-specific")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(
                "must start with a letter or digit and use only letters, digits, '.', '_', '-'"
            )
        return value

    @model_validator(mode="after")
    def _platform_needs(self) -> Candidate:
        if self.platform == Platform.ENDPOINTS and not self.base_url:
            raise ValueError("an `endpoints` candidate needs `base_url` (e.g. http://host:8000/v1)")
        return self


class EvaluationConfig(_Section):
    """The built-in evaluator: how eval records are replayed against a candidate."""

    concurrency: int = Field(8, ge=1, le=1024)
    request_timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)
    retry_backoff_s: float = Field(0.5, ge=0)
    checkpoint_every: int = Field(20, ge=1, description="replies per checkpoint chunk")
    temperature: float | None = Field(0.0, ge=0.0)
    max_tokens: int | None = Field(
        None, ge=1, description="null: the logged request's max_tokens, else 1024"
    )
    max_failure_rate: float = Field(
        0.5, ge=0.0, le=1.0, description="an eval with more failed requests than this fails"
    )
    similarity_embedding: EmbeddingConfig | None = Field(
        None,
        description="generic workloads: also score answers by embedding cosine with this model, "
        "e.g. {deployment_type: in_process, model_name: all-MiniLM-L6-v2}",
    )
    confidence_level: float = Field(
        0.95, gt=0.5, lt=1.0, description="coverage of each score's bootstrap confidence interval"
    )
    bootstrap_resamples: int = Field(
        2000, ge=100, le=100_000, description="bootstrap resamples per score interval"
    )
    bootstrap_seed: int = Field(0, description="seed of the bootstrap (same data, same interval)")
    divergent_examples: int = Field(
        10,
        ge=0,
        le=1000,
        description="records per evaluation where the candidate differs most from production, "
        "saved for review (0: none)",
    )


class TimeoutsConfig(_Section):
    """Poll intervals and timeouts of the long waits (small values make tests fast)."""

    poll_interval_s: float = Field(5.0, gt=0)
    heartbeat_timeout_s: float = Field(60.0, gt=0)
    datasets_timeout_s: float = Field(3600.0, gt=0)
    deploy_timeout_s: float = Field(3600.0, gt=0)
    evaluation_timeout_s: float = Field(4 * 3600.0, gt=0)
    customization_timeout_s: float = Field(12 * 3600.0, gt=0)
    teardown_timeout_s: float = Field(600.0, gt=0)
    activity_max_attempts: int = Field(5, ge=1)
    retry_initial_interval_s: float = Field(1.0, gt=0)
    retry_max_interval_s: float = Field(60.0, gt=0)


class TemporalConfig(_Section):
    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "flywheel"
    api_key_env: str | None = Field(None, description="env var with a Temporal Cloud API key")
    tls: bool = False
    tls_client_cert_path: Path | None = Field(
        None, description="mTLS client certificate (PEM file), e.g. for Temporal Cloud"
    )
    tls_client_key_path: Path | None = Field(
        None, description="the mTLS client certificate's private key (PEM file)"
    )
    tls_server_ca_path: Path | None = Field(
        None, description="CA certificate(s) for the server's certificate (default: system roots)"
    )
    tls_server_name: str | None = Field(
        None, description="server name to expect in its certificate (default: the address's host)"
    )
    ui_url: str | None = Field(None, description="Web UI base URL printed by the CLI")

    @model_validator(mode="after")
    def _client_cert_with_key(self) -> TemporalConfig:
        if (self.tls_client_cert_path is None) != (self.tls_client_key_path is None):
            raise ValueError("tls_client_cert_path and tls_client_key_path go together (mTLS)")
        return self

    @property
    def uses_tls(self) -> bool:
        """Whether the connection is TLS: asked for, or implied by a certificate setting."""
        return self.tls or any(
            value is not None
            for value in (
                self.tls_client_cert_path,
                self.tls_server_ca_path,
                self.tls_server_name,
            )
        )


class WorkerConfig(_Section):
    max_concurrent_activities: int = Field(50, ge=1)
    max_concurrent_workflow_tasks: int = Field(50, ge=1)
    graceful_shutdown_s: float = Field(30.0, ge=0)
    heartbeat_throttle_s: float = Field(
        5.0, gt=0, description="at most this long between heartbeats sent to Temporal (progress)"
    )
    curation_processes: int | None = Field(
        None,
        ge=1,
        description="processes for curating big workloads (null: one per CPU; 1: no pool)",
    )


# --- the effective configuration of one run --------------------------------------------------

RUN_OVERRIDABLE_KEYS = frozenset(
    {
        "data_split_config",
        "curation_config",
        "icl_config",
        "training_config",
        "lora_config",
        "llm_judge_config",
        "mlflow_config",
        "evaluation",
        "acceptance",
        "pricing",
        "notifications",
        "timeouts",
        "max_parallel_candidates",
        "candidates",
        "nims",
    }
)


class RunConfig(_Section):
    """Everything that shapes one run; snapshotted into the run's results. Holds no secrets."""

    data_split_config: DataSplitConfig = DataSplitConfig()
    curation_config: CurationConfig = CurationConfig()
    icl_config: ICLConfig = ICLConfig()
    training_config: TrainingConfig = TrainingConfig()
    lora_config: LoRAConfig = LoRAConfig()
    llm_judge_config: LLMJudgeConfig | None = None
    nmp_config: NMPConfig | None = None
    mlflow_config: MLflowConfig = MLflowConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    acceptance: AcceptanceConfig = AcceptanceConfig()
    pricing: PricingConfig = PricingConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    max_parallel_candidates: int = Field(1, ge=1, le=100)
    candidates: list[Candidate] = Field(default_factory=list)

    @model_validator(mode="after")
    def _checks(self) -> RunConfig:
        names = [c.name for c in self.candidates]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"candidate names must be unique; repeated: {', '.join(duplicates)}")
        if any(c.platform == Platform.NEMO for c in self.candidates) and self.nmp_config is None:
            raise ValueError("candidates on the `nemo` platform need `nmp_config`")
        return self

    def candidate(self, name: str) -> Candidate:
        for candidate in self.candidates:
            if candidate.name == name:
                return candidate
        raise KeyError(name)


def candidate_from_nim(nim: NIMConfig) -> Candidate:
    """Map a blueprint ``nims[]`` entry to a candidate on the ``nemo`` platform."""
    return Candidate(
        name=nim.model_name.replace("/", "-"),
        model=nim.model_name,
        platform=Platform.NEMO,
        context_length=nim.context_length,
        customization_enabled=nim.customization_enabled,
        customizer=nim.customizer_configs,
        nim=NimDeploymentOptions(
            tag=nim.tag, gpus=nim.gpus, pvc_size=nim.pvc_size, registry_base=nim.registry_base
        ),
    )
