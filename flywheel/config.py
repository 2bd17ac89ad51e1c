"""Settings: one YAML file, environment overrides (``FLYWHEEL_…``), per-run overrides.

Precedence, highest first: per-run overrides (``flywheel run --set`` / ``--config-file``,
applied by :meth:`Settings.run_config`), environment variables
(``FLYWHEEL_DATA_SPLIT_CONFIG__EVAL_SIZE=50``), the YAML file, then the defaults below.
A blueprint ``config.yaml`` loads as is: its ``nims``
become candidates on the ``nemo`` platform.

This is the only module that reads the environment (see :func:`read_secret`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from flywheel.errors import ConfigError

CONFIG_FILE_ENV = "FLYWHEEL_CONFIG"
"""Environment variable naming the YAML file when ``--config`` is not given."""

DEFAULT_CONFIG_FILES = ("flywheel.yaml", "config/config.yaml")
"""Looked up in the working directory, in this order, when no file is named."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class _Section(BaseModel):
    """A config section: unknown keys are errors, so typos are caught and named."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _drop_inline_api_key(data: Any) -> Any:
    # The blueprint ignores an `api_key` written in YAML; so do we: keys come from the environment.
    if isinstance(data, dict) and "api_key" in data:
        data = {k: v for k, v in data.items() if k != "api_key"}
    return data


# --- blueprint sections (blueprint-spec §2.2) -----------------------------------------------


class NMPConfig(_Section):
    """Where NeMo Microservices live (used by the ``nemo`` platform)."""

    nemo_base_url: str
    nim_base_url: str
    datastore_base_url: str
    nmp_namespace: str = "dfwbp"


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
    ui_url: str | None = Field(None, description="Web UI base URL printed by the CLI")


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


# --- settings --------------------------------------------------------------------------------

_YAML_DATA: ContextVar[dict[str, Any] | None] = ContextVar("flywheel_yaml_data", default=None)
"""The parsed YAML file while :func:`load_settings` builds a Settings (a source below env)."""


class _YamlFileSource(PydanticBaseSettingsSource):
    """The config file's values, as a settings source ranked below the environment."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_YAML_DATA.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_YAML_DATA.get() or {})


class Settings(BaseSettings):
    """All settings of a worker or CLI process."""

    model_config = SettingsConfigDict(
        env_prefix="FLYWHEEL_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Field(Path("~/.flywheel"), description="embedded stores live here")
    log_store_url: str | None = Field(None, description="default: sqlite:///<data_dir>/flywheel.db")
    log_store_api_key_env: str | None = Field(
        None, description="env var with the Elasticsearch API key (http(s) log stores)"
    )
    result_store_url: str | None = Field(None, description="default: the log store's SQLite file")
    artifact_store_uri: str | None = Field(None, description="default: file://<data_dir>/artifacts")
    mongodb_db: str = "flywheel"

    temporal: TemporalConfig = TemporalConfig()
    worker: WorkerConfig = WorkerConfig()
    logging_config: LoggingConfig = LoggingConfig()

    # Run configuration (see RunConfig); `nims` is the blueprint's list of candidates.
    nmp_config: NMPConfig | None = None
    nims: list[NIMConfig] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    llm_judge_config: LLMJudgeConfig | None = None
    data_split_config: DataSplitConfig = DataSplitConfig()
    curation_config: CurationConfig = CurationConfig()
    icl_config: ICLConfig = ICLConfig()
    training_config: TrainingConfig = TrainingConfig()
    lora_config: LoRAConfig = LoRAConfig()
    mlflow_config: MLflowConfig = MLflowConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    max_parallel_candidates: int = Field(1, ge=1, le=100)

    @classmethod
    def settings_customise_sources(  # type: ignore[override]
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        # Settings given in code (CLI options) > environment > the YAML file > defaults.
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    @model_validator(mode="after")
    def _fill_store_defaults(self) -> Settings:
        data_dir = self.data_dir.expanduser().resolve()
        object.__setattr__(self, "data_dir", data_dir)
        if self.log_store_url is None:
            object.__setattr__(self, "log_store_url", f"sqlite:///{data_dir / 'flywheel.db'}")
        if self.result_store_url is None:
            object.__setattr__(self, "result_store_url", f"sqlite:///{data_dir / 'flywheel.db'}")
        if self.artifact_store_uri is None:
            object.__setattr__(self, "artifact_store_uri", (data_dir / "artifacts").as_uri())
        return self

    def run_config(self, overrides: Mapping[str, Any] | None = None) -> RunConfig:
        """The effective configuration of a run: these settings with ``overrides`` merged on top.

        Raises ConfigError naming the key and the rule when the result is invalid.
        """
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - RUN_OVERRIDABLE_KEYS)
        if unknown:
            raise ConfigError(
                f"invalid run override: {', '.join(unknown)} cannot be set per run "
                f"(allowed: {', '.join(sorted(RUN_OVERRIDABLE_KEYS))})"
            )
        base = self.model_dump(mode="json", include=set(RUN_OVERRIDABLE_KEYS) | {"nmp_config"})
        if "candidates" in overrides and "nims" not in overrides:
            base["nims"] = []  # a run's own candidate list replaces every configured one
        merged = deep_merge(base, overrides)
        try:
            nims = [NIMConfig.model_validate(n) for n in merged.pop("nims", None) or []]
            candidates = list(merged.pop("candidates", None) or [])
            seen_models: set[str] = set()
            for nim in nims:
                # First entry per model wins, as in the blueprint; skip embedding NIMs.
                if nim.model_type != "llm" or nim.model_name in seen_models:
                    continue
                seen_models.add(nim.model_name)
                candidates.append(candidate_from_nim(nim).model_dump(mode="json"))
            return RunConfig.model_validate({**merged, "candidates": candidates})
        except ValidationError as exc:
            raise ConfigError(
                format_validation_error(exc, prefix="invalid run configuration")
            ) from None


def read_secret(env_name: str | None) -> str | None:
    """The value of the environment variable ``env_name`` (API keys never live in config files)."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    return value or None


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` onto ``base``: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def format_validation_error(exc: ValidationError, *, prefix: str = "invalid configuration") -> str:
    """One message naming every offending key and its rule, e.g. ``data_split_config.eval_size``."""
    lines = []
    for error in exc.errors(include_url=False):
        key = _format_loc(error.get("loc", ()))
        message = error.get("msg", "invalid value")
        message = message.removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown key"
        elif (
            error.get("type") != "missing"
            and "input" in error
            and not isinstance(error["input"], dict | list)
        ):
            message = f"{message} (got {error['input']!r})"
        lines.append(f"{key}: {message}" if key else message)
    if len(lines) == 1:
        return f"{prefix}: {lines[0]}"
    return f"{prefix}:\n" + "\n".join(f"  - {line}" for line in lines)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith("function-"):
            continue  # validator frames, not keys
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_set_option(option: str) -> dict[str, Any]:
    """``a.b.c=VALUE`` → ``{"a": {"b": {"c": VALUE}}}``; VALUE is parsed as YAML."""
    key, sep, raw = option.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"invalid --set {option!r}: expected KEY=VALUE, e.g. data_split_config.eval_size=50"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid --set {option!r}: value is not valid YAML ({exc})") from None
    result: dict[str, Any] = {}
    node = result
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return result


def read_yaml_file(path: Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path`` with errors that name the file."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of keys, not {type(data).__name__}"
        )
    return data


def find_config_file(explicit: Path | None = None) -> Path | None:
    """The config file to use: ``explicit``, else ``$FLYWHEEL_CONFIG``, else a default file here."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_FILE_ENV)
    if from_env:
        return Path(from_env)
    for candidate in DEFAULT_CONFIG_FILES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from the YAML file (see :func:`find_config_file`) and the environment.

    ``overrides`` are settings given in code (tests, the CLI's ``--data-dir``); they win over
    both the environment and the file.
    """
    path = find_config_file(config_file)
    token = _YAML_DATA.set(read_yaml_file(path) if path is not None else {})
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        where = f"invalid configuration in {path}" if path else "invalid configuration"
        raise ConfigError(format_validation_error(exc, prefix=where)) from None
    finally:
        _YAML_DATA.reset(token)
