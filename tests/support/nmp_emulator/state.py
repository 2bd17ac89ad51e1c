"""The emulator's in-memory state, clock, ids, request log and shared helpers.

Every time-driven status (deployment readiness, job progress) is *computed* from monotonic
timestamps when it is read, so no background thread is needed and a ``ManualClock`` makes runs
fully deterministic. Side effects of a transition (registering a customized model, failing an
evaluation whose model is missing) are applied by the services' ``tick`` at the start of every
request, under the state lock.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.nmp_emulator.config import EmulatorConfig
from tests.support.nmp_emulator.faults import Durations, FaultInjector, matches
from tests.support.nmp_emulator.http import HTTPError, Request

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class ManualClock:
    """A clock that only moves when told to (``clock.advance(seconds)``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class Clock:
    """Monotonic time plus a stable mapping to wall-clock timestamps."""

    def __init__(self, source: Callable[[], float]) -> None:
        self.source = source
        self._mono0 = source()
        self._wall0 = datetime.now(UTC)

    def now(self) -> float:
        return self.source()

    def wall(self, mono: float) -> datetime:
        return self._wall0 + timedelta(seconds=mono - self._mono0)

    def iso(self, mono: float) -> str:
        return self.wall(mono).isoformat()

    def iso_z(self, mono: float) -> str:
        """The Hugging Face Hub's timestamp format (``...T12:00:00.000000Z``)."""
        return self.wall(mono).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Ids:
    """Seeded, NMP-looking ids (``cust-`` + 22 base58 characters) and git-like hashes."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}-" + "".join(self._rng.choice(_B58) for _ in range(22))

    def sha(self) -> str:
        with self._lock:
            return f"{self._rng.getrandbits(160):040x}"


@dataclass(frozen=True)
class LoggedRequest:
    """One request the emulator answered."""

    time: float
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    headers: dict[str, str]
    """Lower-case names; ``authorization`` is kept so tests can check where a key went."""
    body: bytes


@dataclass
class Repo:
    """A Data Store (HF-compatible) repository: current files only, plus commit hashes."""

    repo_type: str  # "dataset" | "model" | "space"
    repo_id: str
    created: float
    sha: str
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    updated: float = 0.0


@dataclass
class Deployment:
    namespace: str
    name: str
    body: dict[str, Any]
    models: list[str]
    created: float
    deploy_s: float
    fail_reason: str | None
    updated: float = 0.0
    pending_status: str = "pending"


@dataclass
class CustomizationJob:
    id: str
    body: dict[str, Any]
    config: dict[str, Any]
    output_model: str
    base_model: str | None
    created: float
    queue_s: float
    train_s: float
    epochs: int
    steps_per_epoch: int
    fail_detail: str | None = None
    fail_at: float = 0.5
    not_enough_resources: bool = False
    nre_status: str = "pending"
    sync_s: float = 0.0
    cancelled_at: float | None = None
    completed_at: float | None = None
    """Set by ``tick`` when the job is first seen completed (the model is registered then)."""


@dataclass
class EvaluationJob:
    id: str
    body: dict[str, Any]
    config: dict[str, Any]
    target: dict[str, Any]
    target_model: str | None
    created: float
    queue_s: float
    run_s: float
    n_items: int = 0
    fail_message: str | None = None
    fail_at: float = 0.5
    cancelled_at: float | None = None
    checked: bool = False
    results: dict[str, Any] | None = None


Key = tuple[str, str]

EPS = 1e-6
"""Timing slack: ``ManualClock().advance(d)`` must complete a state that lasts ``d``."""


def progress(elapsed: float, duration: float) -> float:
    """Fraction of ``duration`` covered by ``elapsed``, in [0, 1], robust to float error."""
    if duration <= 0 or elapsed >= duration - EPS:
        return 1.0
    return max(0.0, elapsed / duration)


class State:
    """All resources, guarded by one re-entrant lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.datastore_namespaces: dict[str, dict[str, Any]] = {}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.datasets: dict[Key, dict[str, Any]] = {}
        self.models: dict[Key, dict[str, Any]] = {}
        self.deployment_configs: dict[Key, dict[str, Any]] = {}
        self.deployments: dict[Key, Deployment] = {}
        self.customization_configs: dict[Key, dict[str, Any]] = {}
        self.customization_targets: dict[Key, dict[str, Any]] = {}
        self.customization_jobs: dict[str, CustomizationJob] = {}
        self.evaluation_configs: dict[Key, dict[str, Any]] = {}
        self.evaluation_targets: dict[Key, dict[str, Any]] = {}
        self.evaluation_jobs: dict[str, EvaluationJob] = {}
        self.deleted_evaluation_jobs: set[str] = set()
        # counters
        self.customizations_created: Counter[str] = Counter()
        self.evaluations_created: Counter[str] = Counter()
        self.deployments_created: Counter[str] = Counter()
        self.deployments_deleted: Counter[str] = Counter()
        self.cancelled: list[str] = []
        self.uploads: list[tuple[str, str, int]] = []
        self.log: list[LoggedRequest] = []


class Context:
    """What every service needs: state, clock, ids, settings and the fault injector."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.state = State()
        self.clock = Clock(config.clock)
        self.ids = Ids(config.seed)
        self.faults = FaultInjector(config.faults)
        self._durations = config.durations
        self._durations_lock = threading.Lock()
        self.base_url = ""  # set when the server starts

    @property
    def durations(self) -> Durations:
        with self._durations_lock:
            return self._durations

    @durations.setter
    def durations(self, value: Durations) -> None:
        with self._durations_lock:
            self._durations = value

    @property
    def nim_url(self) -> str:
        return f"{self.base_url}/nim"

    def now(self) -> float:
        return self.clock.now()

    def iso(self, mono: float | None = None) -> str:
        return self.clock.iso(self.now() if mono is None else mono)

    def guard_create(self, identifiers: Iterable[str | None]) -> tuple[bool, bool]:
        """(answer 409 after storing, answer 503 after storing) for a create with these ids."""
        ids = list(identifiers)
        conflict = matches(self.faults.faults.conflict_on_create, ids) is not None
        lost = not conflict and self.faults.take_lost_response(ids)
        return conflict, lost


# --- helpers shared by the services ---------------------------------------------------------


def not_found(what: str) -> HTTPError:
    return HTTPError(404, f"{what} not found")


def conflict(what: str) -> HTTPError:
    return HTTPError(409, f"{what} already exists")


def lost_response() -> HTTPError:
    return HTTPError(503, "upstream connection reset (injected lost response)")


def validation_error(field_path: list[str], message: str) -> HTTPError:
    """A FastAPI-style 422."""
    return HTTPError(
        422,
        [{"loc": ["body", *field_path], "msg": message, "type": "value_error"}],
    )


def require_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise validation_error([name], "Field required")
    return value


def split_ref(ref: str, default_namespace: str = "default") -> Key:
    """``"ns/name"`` → ``("ns", "name")``; a bare name goes to ``default_namespace``."""
    if "/" in ref:
        namespace, _, name = ref.partition("/")
        return namespace, name
    return default_namespace, ref


def strip_version(ref: str) -> str:
    """``"meta/llama-3.2-1b-instruct@2.0"`` → ``"meta/llama-3.2-1b-instruct"``."""
    return ref.split("@", 1)[0]


def entity_times(ctx: Context, created: float, updated: float | None = None) -> dict[str, str]:
    return {"created_at": ctx.iso(created), "updated_at": ctx.iso(updated or created)}


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _nested_query(query: Iterable[tuple[str, str]], root: str) -> dict[str, Any]:
    """``filter[a][b]=v`` pairs → ``{"a": {"b": "v"}}`` for ``root="filter"``."""
    out: dict[str, Any] = {}
    for key, value in query:
        if not key.startswith(root + "["):
            continue
        parts = [p.rstrip("]") for p in key[len(root) + 1 :].split("[")]
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return out


def _matches_filter(item: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        if not isinstance(item, dict):
            return False
        return all(_matches_filter(item.get(k), v) for k, v in wanted.items())
    if isinstance(item, bool):
        return str(item).lower() == str(wanted).lower()
    if isinstance(item, dict):  # a reference given as "ns/name"
        ref = f"{item.get('namespace')}/{item.get('name')}"
        return str(wanted) in (ref, str(item.get("name")))
    return item is not None and str(item) in str(wanted).split(",")


def _matches_search(item: Mapping[str, Any], search: Mapping[str, Any]) -> bool:
    for key, value in search.items():
        if isinstance(value, dict):
            continue  # date ranges: not emulated
        haystack = str(item.get(key) or "")
        if not any(v in haystack for v in str(value).split(",")):
            return False
    return True


def list_response(
    ctx: Context,
    request: Request,
    items: list[dict[str, Any]],
    *,
    filter_view: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    default_page_size: int | None = None,
) -> dict[str, Any]:
    """NMP list shape: ``{"object": "list", "data", "pagination", "sort", "filter"}``.

    Supports ``page``/``page_size`` (1-based), ``sort`` (``field`` or ``-field``), nested
    ``filter[...]`` equality (comma = any of) and ``search[...]`` substring matching.
    """
    wanted = _nested_query(request.query, "filter")
    if wanted:
        items = [i for i in items if _matches_filter(filter_view(i) if filter_view else i, wanted)]
    search = _nested_query(request.query, "search")
    if search:
        items = [i for i in items if _matches_search(i, search)]
    sort = request.param("sort") or "created_at"
    reverse = sort.startswith("-")
    key = sort.lstrip("-")
    items = sorted(items, key=lambda i: str(i.get(key) or ""), reverse=reverse)
    try:
        page = max(1, int(request.param("page") or 1))
        default = default_page_size or ctx.config.page_size
        page_size = max(1, int(request.param("page_size") or default))
    except ValueError as exc:
        raise validation_error(["page"], "must be an integer") from exc
    total = len(items)
    chunk = items[(page - 1) * page_size : page * page_size]
    return {
        "object": "list",
        "data": chunk,
        "pagination": {
            "page": page,
            "page_size": page_size,
            "current_page_size": len(chunk),
            "total_pages": max(1, -(-total // page_size)),
            "total_results": total,
        },
        "sort": sort,
        "filter": wanted or None,
    }
