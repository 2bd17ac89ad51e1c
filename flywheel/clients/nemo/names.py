"""Deterministic, sanitised names for what the flywheel creates on NeMo Microservices.

Every remote object gets its name from the run and the candidate (or from the model and the
options), so a retried or resumed step finds what an earlier attempt created instead of making a
second one, and two runs never share a dataset, job or customized model. Names keep to lowercase
letters, digits, ``.`` and ``-`` (the strictest of the Data Store's repo-name rules, DMS and
Kubernetes names), never start or end with a separator, and stay short.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from flywheel.config import LLMJudgeConfig

__all__ = [
    "RUN_FIELD",
    "RunNames",
    "customizer_config_name",
    "deployment_name",
    "run_key",
    "slug",
    "workload_slug",
]

RUN_FIELD = "flywheel_run"
"""``custom_fields`` key that tags a remote object with its run's key (for lookups and delete)."""

_UNSAFE = re.compile(r"[^a-z0-9.-]+")
_REPEATS = re.compile(r"[.-]{2,}")
_RUN_TIMESTAMP = re.compile(
    r"-(\d{8}T\d{6}Z|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)$"
)
WORKLOAD_CHARS = 32
MODEL_CHARS = 48
CANDIDATE_CHARS = 40


def _digest(text: str, chars: int = 10) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:chars]


def slug(value: str, max_chars: int, *, dots: bool = True) -> str:
    """``value`` lowercased, unsafe runs replaced by ``-``, at most ``max_chars`` characters.

    A value that had to be shortened ends in a hash of the whole value, so two long values that
    share a start still give different slugs. Never empty (``"x"`` stands in for nothing).
    """
    text = _UNSAFE.sub("-", value.lower())
    if not dots:
        text = text.replace(".", "-")
    text = _REPEATS.sub(lambda m: m.group(0)[0], text).strip(".-")
    if len(text) > max_chars:
        tail = _digest(value, 6)
        text = text[: max(1, max_chars - len(tail) - 1)].rstrip(".-") + "-" + tail
    return text or "x"


def run_key(run_id: str) -> str:
    """A short stable hash of the run id: what makes a run's names its own."""
    return _digest(run_id)


def workload_slug(run_id: str) -> str:
    """The workload part of a run id (``flywheel-{workload}-{time}``), for readable names.

    Only for readability: uniqueness comes from :func:`run_key`, so an id of another shape just
    gives a less tidy slug.
    """
    core = run_id.removeprefix("flywheel-")
    core = _RUN_TIMESTAMP.sub("", core) or core
    return slug(core, WORKLOAD_CHARS, dots=False)


def deployment_name(run_id: str, candidate: str) -> str:
    """The DMS deployment of one run's candidate (``fw-{workload}-{run key}-{candidate}``).

    One per run and candidate, not per model as in the blueprint: two runs (or two candidates)
    evaluating the same model at the same time each have their own NIM, so one's teardown
    never removes the NIM another is still evaluating. Every attempt re-attaches to it.
    """
    return slug(RunNames(run_id).candidate(candidate), 63, dots=False)


def judge_deployment_name(judge: LLMJudgeConfig, run_id: str) -> str:
    """The judge NIM's DMS deployment: the run's (``lifetime: run``) or, kept between runs, the
    model's (``fw-judge-{model}``), which every later run re-attaches to."""
    if judge.lifetime == "run":
        return deployment_name(run_id, "judge")
    return slug(f"fw-judge-{judge.model_name.replace('/', '-')}", 63, dots=False)


def customizer_config_name(model: str, fingerprint: dict[str, Any]) -> str:
    """A versioned Customizer config name whose build tag hashes every training option.

    NMP 25.9+ wants ``name@vX.Y.Z+tag``; changing any option in ``fingerprint`` (model,
    training, LoRA, resources) gives a new name, so a stale config is never reused.
    """
    canonical = orjson.dumps(fingerprint, option=orjson.OPT_SORT_KEYS).decode()
    return f"fw-{slug(model.replace('/', '-'), MODEL_CHARS)}@v1.0.0+{_digest(canonical)}"


@dataclass(frozen=True)
class RunNames:
    """The names of one run's remote objects: ``fw-{workload}-{run key}-…``."""

    run_id: str

    @property
    def key(self) -> str:
        return run_key(self.run_id)

    @property
    def prefix(self) -> str:
        return f"fw-{workload_slug(self.run_id)}-{self.key}"

    def dataset(self, part: str) -> str:
        """A dataset (Data Store repo and Entity Store entry): ``part`` is ``eval``,
        ``icl-{context length}`` or ``train``."""
        return f"{self.prefix}-{slug(part, 24, dots=False)}"

    def candidate(self, candidate: str) -> str:
        """Name of a candidate's customization job and of its customized model."""
        return f"{self.prefix}-{slug(candidate, CANDIDATE_CHARS, dots=False)}"

    @staticmethod
    def is_attempt(name: str | None, base: str) -> bool:
        """Whether job ``name`` is ``base`` or one of its restarts (``base.r1``, ``base.r2``…)."""
        return bool(name) and (
            name == base or re.fullmatch(re.escape(base) + r"\.r\d+", name or "")
        )

    @staticmethod
    def next_attempt(base: str, previous: str | None) -> str:
        """The name of the job that replaces ``previous`` (None: the first, ``base`` itself).

        Slugs never hold dots, so ``.rN`` cannot be mistaken for a candidate's own name.
        """
        if previous is None:
            return base
        _, _, number = previous.rpartition(".r")
        return f"{base}.r{int(number) + 1 if previous != base and number.isdigit() else 1}"

    def owns(self, name: str | None) -> bool:
        """Whether ``name`` is one of this run's names."""
        return bool(name) and str(name).startswith(self.prefix + "-")
