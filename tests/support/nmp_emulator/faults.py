"""Fault injection for the NMP emulator: what can go wrong, and when.

``Faults`` is a plain dataclass (values only); the emulator keeps one behind a lock and swaps it
with :meth:`NMPEmulator.configure_faults`. ``FaultInjector`` owns the seeded random generator and
the one-shot "fail the next N requests" queue.

Name matching: a fault keyed by a *name* matches a resource when the key equals one of the
resource's identifiers (its ``name``, ``namespace/name``, ``output_model``, the target model of an
evaluation, a deployment's model, ...) or when the key is ``"*"``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

ANY = "*"


@dataclass(frozen=True)
class Durations:
    """How long each state lasts, in seconds (floats; tests use tenths of a second)."""

    deploy: float = 0.3
    """A deployment stays ``pending`` this long, then turns ``ready`` (or ``failed``)."""
    customization_queue: float = 0.05
    """A customization job stays ``created`` this long before it starts ``running``."""
    customization: float = 0.6
    """Training time, from ``running`` to ``completed`` (percentage_done grows linearly)."""
    evaluation_queue: float = 0.05
    """An evaluation job stays ``created`` this long before it starts ``running``."""
    evaluation: float = 0.3
    """Evaluation time, from ``running`` to ``completed`` (progress grows linearly)."""
    model_sync: float = 0.0
    """After a customization completes, how long until the NIM lists the customized model."""


@dataclass(frozen=True)
class Faults:
    """Everything the emulator can do wrong. All name sets accept ``"*"`` for "every one"."""

    error_rate: float = 0.0
    """Fraction of requests answered with ``error_status`` (seeded random, see ``seed``)."""
    error_status: int = 503
    error_paths: tuple[str, ...] = ()
    """Path prefixes subject to ``error_rate`` (``()`` = every path)."""
    seed: int = 0
    latency_s: float = 0.0
    """Added to every request whose path starts with one of ``latency_paths`` (``()`` = all)."""
    latency_paths: tuple[str, ...] = ()
    conflict_on_create: frozenset[str] = frozenset()
    """Creating a resource with one of these names answers 409 *and* the resource exists
    afterwards, as if an earlier attempt (whose answer was lost) had created it. Counted once."""
    lose_response_on_create: frozenset[str] = frozenset()
    """Creating a resource with one of these names creates it, then answers 503 (a lost reply);
    each name fires once, so a retry sees the resource (409 for named resources)."""
    customization_failures: Mapping[str, str] = field(default_factory=dict)
    """Job name / output model → failure detail: the job fails at ``customization_fail_at``
    of its training, with ``status_logs`` ending in that detail."""
    customization_fail_at: float = 0.5
    not_enough_resources: frozenset[str] = frozenset()
    """Customization jobs (by name / output model) that never get scheduled: their status
    stays ``not_enough_resources_status`` and the last status log says ``NotEnoughResources``."""
    not_enough_resources_status: str = "pending"
    evaluation_failures: Mapping[str, str] = field(default_factory=dict)
    """Target model (or ``"*"``) → message: the evaluation job fails half way with it."""
    deployment_failures: Mapping[str, str] = field(default_factory=dict)
    """Deployment name / ``namespace/name`` / model → reason: after the deploy delay the
    deployment turns ``failed`` with that reason instead of ``ready``."""
    deployment_pending_status: Mapping[str, str] = field(default_factory=dict)
    """Deployment name / ``namespace/name`` / model → the status string it reports while it
    is starting, instead of ``pending`` (DMS versions report strings a client may not know)."""

    def with_changes(self, **changes: Any) -> Faults:
        for key in ("conflict_on_create", "lose_response_on_create", "not_enough_resources"):
            if key in changes and not isinstance(changes[key], frozenset):
                changes[key] = frozenset(_as_names(changes[key]))
        return replace(self, **changes)


def _as_names(value: str | Iterable[str]) -> Iterable[str]:
    return [value] if isinstance(value, str) else list(value)


def matches(keys: Iterable[str], identifiers: Iterable[str | None]) -> str | None:
    """The first key of ``keys`` that names one of ``identifiers`` (or is ``"*"``)."""
    ids = {i for i in identifiers if i}
    for key in keys:
        if key == ANY or key in ids:
            return key
    return None


def lookup(table: Mapping[str, str], identifiers: Iterable[str | None]) -> str | None:
    """The value of ``table`` for the first matching identifier (exact names before ``"*"``)."""
    ids = [i for i in identifiers if i]
    for ident in ids:
        if ident in table:
            return table[ident]
    return table.get(ANY)


@dataclass
class _OneShot:
    remaining: int
    status: int
    path_prefix: str
    method: str | None
    message: str


class FaultInjector:
    """Thread-safe holder of the current ``Faults`` plus seeded randomness and one-shot faults."""

    def __init__(self, faults: Faults) -> None:
        self._lock = threading.Lock()
        self._faults = faults
        self._rng = random.Random(faults.seed)
        self._one_shots: list[_OneShot] = []
        self._lost_fired: set[str] = set()

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def configure(self, **changes: Any) -> Faults:
        with self._lock:
            new = self._faults.with_changes(**changes)
            if "seed" in changes:
                self._rng = random.Random(new.seed)
            if "lose_response_on_create" in changes:
                self._lost_fired.clear()
            self._faults = new
            return new

    def replace(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
            self._lost_fired.clear()

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        path_prefix: str = "",
        method: str | None = None,
        message: str = "injected failure",
    ) -> None:
        with self._lock:
            self._one_shots.append(_OneShot(n, status, path_prefix, method, message))

    def latency(self, path: str) -> float:
        faults = self.faults
        if faults.latency_s > 0 and _in_scope(path, faults.latency_paths):
            return faults.latency_s
        return 0.0

    def error_for(self, method: str, path: str) -> tuple[int, str] | None:
        """An injected error for this request, if one is due (consumes one-shot faults)."""
        with self._lock:
            for shot in self._one_shots:
                if (
                    shot.remaining > 0
                    and path.startswith(shot.path_prefix)
                    and (shot.method is None or shot.method == method)
                ):
                    shot.remaining -= 1
                    return shot.status, shot.message
            faults = self._faults
            if (
                faults.error_rate > 0
                and _in_scope(path, faults.error_paths)
                and self._rng.random() < faults.error_rate
            ):
                return faults.error_status, "injected random failure"
        return None

    def take_lost_response(self, identifiers: Iterable[str | None]) -> bool:
        """True once per matching name of ``lose_response_on_create``."""
        with self._lock:
            key = matches(self._faults.lose_response_on_create, identifiers)
            if key is None:
                return False
            fired_key = key if key != ANY else "|".join(sorted(i for i in identifiers if i))
            if fired_key in self._lost_fired:
                return False
            self._lost_fired.add(fired_key)
            return True


def _in_scope(path: str, prefixes: tuple[str, ...]) -> bool:
    return not prefixes or any(path.startswith(p) for p in prefixes)
