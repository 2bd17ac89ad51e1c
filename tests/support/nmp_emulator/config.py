"""Configuration of the NMP emulator: durations, faults, hooks and switches."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.nmp_emulator.faults import Durations, Faults

Message = dict[str, Any]
Responder = Callable[[dict[str, Any]], Mapping[str, Any] | None]
"""Chat request body → assistant message (``content`` and/or ``tool_calls``; tool-call
arguments may be a dict or a JSON string, ``{"name", "arguments"}`` shorthand accepted).
``None`` means "the default reply"."""


@dataclass(frozen=True)
class ScoreContext:
    """What a scorer sees for one score of one metric of one task of one evaluation job."""

    job_id: str
    target_model: str
    task_name: str
    task: Mapping[str, Any]
    metric_name: str
    metric: Mapping[str, Any]
    score_name: str
    items: list[dict[str, Any]] | None
    """The evaluation dataset's records (``limit`` applied), when it is in the Data Store."""
    respond: Callable[[dict[str, Any]], Message]
    """The NIM responder: chat request body → assistant message (normalised)."""


Scorer = Callable[[ScoreContext], float | None]
"""Returns a score value, or ``None`` to fall back to the configured fixed values."""

DEFAULT_SCORES: Mapping[str, float] = {
    "function_name_accuracy": 1.0,
    "function_name_and_args_accuracy": 0.9,
    "similarity": 8.0,
    "rating": 1.0,
}
DEFAULT_SCORE = 0.75
"""The value of a score that neither the scorer nor ``scores``/``scores_by_model`` name."""


@dataclass
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour (read once at construction; durations
    and faults can be changed at runtime with ``set_durations`` / ``configure_faults``)."""

    durations: Durations = field(default_factory=Durations)
    faults: Faults = field(default_factory=Faults)
    responder: Responder | None = None
    """NIM chat replies; default: a call to the first tool when ``tools`` are given, else
    ``"echo: <last user message>"``."""
    scorer: Scorer | None = None
    scores: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SCORES))
    """Score name → value, for every target model."""
    scores_by_model: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Target model → {score name → value}; wins over ``scores``."""
    static_models: tuple[str, ...] = ()
    """Models the NIM serves without any deployment (a remote judge, an embedding model)."""
    datastore_token: str | None = None
    """When set, ``/v1/hf`` and ``/v1/datastore`` require ``Authorization: Bearer <token>``."""
    inference_api_key: str | None = None
    """When set, the NIM paths require ``Authorization: Bearer <key>``."""
    deployment_conflict_status: int = 409
    """Status for creating a deployment that exists (the blueprint saw DMS answer 500 with
    ``model deployment already exists``; set 500 to reproduce that)."""
    strict: bool = True
    """Check references like the real services: a customization job needs its config and
    dataset; an evaluation fails when its dataset file or target model is missing."""
    require_config_version: bool = True
    """Customization config names need a version suffix (``name@v1.0.0+A100``), as in
    NMP 25.9+; a name without ``@`` is answered with 422."""
    lora_requires_base_deployment: bool = True
    """A customized model is served (listed, answers chat) only while a ready deployment
    serves its base model."""
    steps_per_epoch: int = 10
    embedding_dim: int = 16
    page_size: int = 10
    """Default page size of list endpoints (the SDK's auto-pagination follows pages)."""
    seed: int = 0
    """Seeds generated ids and commit hashes (reproducible runs)."""
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds; pass a ``ManualClock`` to step time by hand."""
