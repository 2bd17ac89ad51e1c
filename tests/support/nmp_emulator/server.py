"""``NMPEmulator``: one loopback HTTP server that answers like NeMo Microservices.

Surfaces (all on the same port):

* ``base_url`` (``http://127.0.0.1:PORT``): every platform path the SDK calls (Entity Store,
  Data Store, DMS, Customizer, Evaluator) *and* the NIM paths (``/v1/chat/completions``,
  ``/v1/embeddings``; ``GET /v1/models`` answers both shapes), so an SDK client whose
  ``inference_base_url`` is left to default to ``base_url`` works;
* ``inference_base_url`` = ``nim_url`` (``base_url + "/nim"``): the NIM surface alone
  (OpenAI-shaped ``/v1/models`` listing only what is served), as a separate NIM host would be;
  deployments report it as their ``url``;
* ``hf_endpoint`` (``base_url + "/v1/hf"``): the Data Store's Hugging Face API.

Per request: latency fault → injected error fault → ``tick`` (apply due transitions) → route.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.nmp_emulator.config import EmulatorConfig, Responder, ScoreContext
from tests.support.nmp_emulator.customizer import CustomizerService, job_phase
from tests.support.nmp_emulator.datastore_hf import HF_PREFIX, DataStoreService
from tests.support.nmp_emulator.deployments import DeploymentService, deployment_status
from tests.support.nmp_emulator.entity_store import EntityStore
from tests.support.nmp_emulator.evaluator import EvaluatorService, eval_phase
from tests.support.nmp_emulator.faults import Durations, Faults
from tests.support.nmp_emulator.http import (
    HTTPError,
    LoopbackApp,
    Request,
    Response,
    Router,
    read_request,
    write_response,
)
from tests.support.nmp_emulator.inference import InferenceService, served_models
from tests.support.nmp_emulator.state import Context, LoggedRequest, ManualClock

NIM_PREFIX = "/nim"
_ACTIVE = ("created", "pending", "running")


class NMPEmulator(LoopbackApp):
    """NeMo Microservices on loopback, for tests. Use as a context manager or start()/stop()."""

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        config = config or EmulatorConfig()
        if overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self.ctx = Context(config)
        self.entity_store = EntityStore(self.ctx)
        self.datastore = DataStoreService(self.ctx)
        self.deployments = DeploymentService(self.ctx)
        self.customizer = CustomizerService(self.ctx, self.entity_store.register_model)
        self.inference = InferenceService(self.ctx, config.responder)
        self.evaluator = EvaluatorService(self.ctx, self.inference.respond)
        self._platform = Router()
        for service in (
            self.entity_store,
            self.datastore,
            self.deployments,
            self.customizer,
            self.evaluator,
        ):
            service.register(self._platform)
        self.inference.register(self._platform, with_models=False)  # /v1/models: Entity Store
        self._nim = Router()
        self.inference.register(self._nim, with_models=True)

    # --- lifecycle and URLs ---

    def start(self) -> NMPEmulator:
        super().start()
        self.ctx.base_url = self.url
        return self

    @property
    def base_url(self) -> str:
        """The SDK's ``base_url`` (also the Data Store's base URL)."""
        return self.url

    @property
    def inference_base_url(self) -> str:
        """The SDK's ``inference_base_url``: the NIM surface on the same server (``/nim``).

        ``base_url`` works too (it also answers the NIM paths), but its ``GET /v1/models`` is
        the Entity Store's list, which names a customized model as soon as it is registered,
        before the NIM serves it."""
        return self.nim_url

    @property
    def nim_url(self) -> str:
        """The NIM surface alone (``/nim/v1/models``, ``/nim/v1/chat/completions``, ...)."""
        return f"{self.url}{NIM_PREFIX}"

    @property
    def hf_endpoint(self) -> str:
        """``HfApi(endpoint=...)`` for the Data Store."""
        return f"{self.url}{HF_PREFIX}"

    # --- request handling ---

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        request = read_request(handler)
        try:
            response = self._dispatch(request)
        except HTTPError as error:
            response = error.response()
        except Exception as error:  # a bug in the emulator: make it visible to the client
            response = Response.json(
                {"detail": f"emulator error: {type(error).__name__}: {error}"}, 500
            )
        entry = LoggedRequest(
            time.time(),
            request.method,
            request.path,
            tuple(request.query),
            response.status,
            request.headers,
            request.body,
        )
        with self.ctx.state.lock:
            self.ctx.state.log.append(entry)
        write_response(handler, response)

    def _dispatch(self, request: Request) -> Response:
        delay = self.ctx.faults.latency(request.path)
        if delay > 0:
            time.sleep(delay)
        injected = self.ctx.faults.error_for(request.method, request.path)
        if injected is not None:
            status, message = injected
            raise HTTPError(status, message)
        self._tick()
        router, path = self._platform, request.path.rstrip("/") or "/"
        if path == NIM_PREFIX or path.startswith(NIM_PREFIX + "/"):
            router, path = self._nim, path[len(NIM_PREFIX) :] or "/"
        found = router.match(request.method, path)
        if found is None:
            raise HTTPError(404, f"Not Found: {request.method} {request.path}")
        handler, params = found
        return handler(request, **params)

    def _tick(self) -> float:
        now = self.ctx.now()
        with self.ctx.state.lock:
            self.customizer.tick(now)
            self.evaluator.tick(now)
        return now

    # --- runtime configuration ---

    @property
    def faults(self) -> Faults:
        return self.ctx.faults.faults

    def configure_faults(self, **changes: Any) -> Faults:
        """Change faults at runtime (thread-safe); e.g. ``configure_faults(error_rate=0.2)``."""
        return self.ctx.faults.configure(**changes)

    def set_faults(self, faults: Faults) -> None:
        self.ctx.faults.replace(faults)

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        path_prefix: str = "",
        method: str | None = None,
        message: str = "injected failure",
    ) -> None:
        """The next ``n`` requests under ``path_prefix`` (and ``method``) answer ``status``."""
        self.ctx.faults.fail_next(
            n, status, path_prefix=path_prefix, method=method, message=message
        )

    @property
    def durations(self) -> Durations:
        return self.ctx.durations

    def set_durations(self, **changes: float) -> Durations:
        """Change durations for resources created from now on."""
        self.ctx.durations = dataclasses.replace(self.ctx.durations, **changes)
        return self.ctx.durations

    @property
    def responder(self) -> Responder:
        return self.inference.responder

    @responder.setter
    def responder(self, value: Responder | None) -> None:
        self.inference.responder = value

    @property
    def scorer(self) -> Callable[[ScoreContext], float | None] | None:
        return self.evaluator.scorer

    @scorer.setter
    def scorer(self, value: Callable[[ScoreContext], float | None] | None) -> None:
        self.evaluator.scorer = value

    def advance(self, seconds: float) -> None:
        """Move a ``ManualClock`` forward (only when the emulator was built with one)."""
        clock = self.ctx.clock.source
        if not isinstance(clock, ManualClock):
            raise TypeError("advance() needs EmulatorConfig(clock=ManualClock())")
        clock.advance(seconds)

    # --- counters and inspection (all apply due transitions first) ---

    def customization_jobs_created(self, name: str | None = None) -> int:
        """Jobs created, for one job name (or output model when unnamed), or in total."""
        self._tick()
        with self.ctx.state.lock:
            counts = self.ctx.state.customizations_created
            return counts[name] if name is not None else sum(counts.values())

    def customization_jobs(self, name: str | None = None) -> list[dict[str, Any]]:
        now = self._tick()
        with self.ctx.state.lock:
            return [
                self.customizer.view(job, now)
                for job in self.ctx.state.customization_jobs.values()
                if name is None or job.body.get("name") == name
            ]

    def evaluation_jobs_created(self, target_model: str | None = None) -> int:
        """Evaluation jobs created, for one target model, or in total."""
        self._tick()
        with self.ctx.state.lock:
            counts = self.ctx.state.evaluations_created
            return counts[target_model] if target_model is not None else sum(counts.values())

    def evaluation_jobs(self, target_model: str | None = None) -> list[dict[str, Any]]:
        now = self._tick()
        with self.ctx.state.lock:
            return [
                self.evaluator.view(job, now)
                for job in self.ctx.state.evaluation_jobs.values()
                if target_model is None or job.target_model == target_model
            ]

    def evaluation_results(self, job_id: str) -> dict[str, Any]:
        self._tick()
        return self.evaluator.results(job_id)

    def deployments_created(self, name: str | None = None) -> int:
        """Deployments created, for one ``namespace/name``, or in total."""
        with self.ctx.state.lock:
            counts = self.ctx.state.deployments_created
            return counts[name] if name is not None else sum(counts.values())

    def live_deployments(self) -> list[str]:
        """``namespace/name`` of every deployment not deleted yet (whatever its status)."""
        with self.ctx.state.lock:
            return [f"{ns}/{name}" for ns, name in self.ctx.state.deployments]

    def deployment_status(self, namespace: str, name: str) -> str | None:
        now = self._tick()
        with self.ctx.state.lock:
            dep = self.ctx.state.deployments.get((namespace, name))
            return None if dep is None else deployment_status(dep, now)[0]

    def active_jobs(self) -> list[str]:
        """Ids of customization and evaluation jobs still created/pending/running."""
        now = self._tick()
        with self.ctx.state.lock:
            state = self.ctx.state
            return [
                j.id for j in state.customization_jobs.values() if job_phase(j, now)[0] in _ACTIVE
            ] + [j.id for j in state.evaluation_jobs.values() if eval_phase(j, now)[0] in _ACTIVE]

    def cancelled_jobs(self) -> list[str]:
        with self.ctx.state.lock:
            return list(self.ctx.state.cancelled)

    def deleted_evaluation_jobs(self) -> set[str]:
        with self.ctx.state.lock:
            return set(self.ctx.state.deleted_evaluation_jobs)

    def served_models(self) -> list[str]:
        now = self._tick()
        with self.ctx.state.lock:
            return served_models(self.ctx, now)

    def namespaces(self) -> list[str]:
        with self.ctx.state.lock:
            return list(self.ctx.state.namespaces)

    def datastore_namespaces(self) -> list[str]:
        with self.ctx.state.lock:
            return list(self.ctx.state.datastore_namespaces)

    def datasets(self) -> list[str]:
        with self.ctx.state.lock:
            return [f"{ns}/{name}" for ns, name in self.ctx.state.datasets]

    def dataset(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.ctx.state.lock:
            entity = self.ctx.state.datasets.get((namespace, name))
            return dict(entity) if entity is not None else None

    def models(self) -> list[str]:
        """``namespace/name`` of every Entity Store model."""
        self._tick()
        with self.ctx.state.lock:
            return [f"{ns}/{name}" for ns, name in self.ctx.state.models]

    def repos(self, repo_type: str = "dataset") -> list[str]:
        with self.ctx.state.lock:
            return [rid for rt, rid in self.ctx.state.repos if rt == repo_type]

    def files(self, repo_id: str, repo_type: str = "dataset") -> dict[str, bytes]:
        """The current files of a Data Store repo (path → bytes); ``{}`` if it does not exist."""
        with self.ctx.state.lock:
            repo = self.ctx.state.repos.get((repo_type, repo_id))
            return dict(repo.files) if repo is not None else {}

    def read_file(self, repo_id: str, path: str, repo_type: str = "dataset") -> bytes:
        files = self.files(repo_id, repo_type)
        if path not in files:
            raise KeyError(f"{repo_type}s/{repo_id}/{path}")
        return files[path]

    def uploaded_files(self, repo_id: str | None = None) -> list[tuple[str, str, int]]:
        """Every file upload committed, in order: ``(repo_id, path, size)``."""
        with self.ctx.state.lock:
            return [u for u in self.ctx.state.uploads if repo_id is None or u[0] == repo_id]

    def requests(self, path_prefix: str = "", method: str | None = None) -> list[LoggedRequest]:
        """The request log (arrival of the answer order), optionally filtered."""
        with self.ctx.state.lock:
            return [
                r
                for r in self.ctx.state.log
                if r.path.startswith(path_prefix) and (method is None or r.method == method)
            ]

    def authorizations(self, path_prefix: str = "") -> list[tuple[str, str]]:
        """``(path, Authorization header value)`` of every request under ``path_prefix`` that
        carried one: assert where a key went, and where it never went."""
        return [
            (r.path, r.headers["authorization"])
            for r in self.requests(path_prefix)
            if "authorization" in r.headers
        ]

    def clear_requests(self) -> None:
        with self.ctx.state.lock:
            self.ctx.state.log.clear()
