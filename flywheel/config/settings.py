"""Settings: one YAML file, environment overrides (``FLYWHEEL_…``), per-run overrides.

Precedence, highest first: per-run overrides (``flywheel run --set`` / ``--config-file``,
applied by :meth:`Settings.run_config`), environment variables
(``FLYWHEEL_DATA_SPLIT_CONFIG__EVAL_SIZE=50``), the YAML file, then the defaults.
A blueprint ``config.yaml`` loads as is: its ``nims`` become candidates on the ``nemo`` platform.

This is the only module that reads the environment (see :func:`read_secret`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from flywheel.config.decision import (
    AcceptanceConfig,
    NotificationsConfig,
    PricingConfig,
)
from flywheel.config.sections import (
    RUN_OVERRIDABLE_KEYS,
    Candidate,
    CurationConfig,
    DataSplitConfig,
    EvaluationConfig,
    ICLConfig,
    LLMJudgeConfig,
    LoggingConfig,
    LoRAConfig,
    MLflowConfig,
    NIMConfig,
    NMPConfig,
    RunConfig,
    TemporalConfig,
    TimeoutsConfig,
    TrainingConfig,
    WorkerConfig,
    candidate_from_nim,
)
from flywheel.errors import ConfigError

CONFIG_FILE_ENV = "FLYWHEEL_CONFIG"
"""Environment variable naming the YAML file when ``--config`` is not given."""

DEFAULT_CONFIG_FILES = ("flywheel.yaml", "config/config.yaml")
"""Looked up in the working directory, in this order, when no file is named."""

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
    acceptance: AcceptanceConfig = AcceptanceConfig()
    pricing: PricingConfig = PricingConfig()
    notifications: NotificationsConfig = NotificationsConfig()
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
