"""NeMo Evaluator: ``/v1/evaluation/configs``, ``/targets`` and ``/jobs`` (+ ``/status``,
``/results``, ``/cancel``, ``/download-results``, ``/logs``).

A job is ``created`` for ``Durations.evaluation_queue`` seconds, then ``running`` for
``Durations.evaluation`` seconds (``status_details.progress`` 0 → 100, ``samples_processed``),
then ``completed``. With ``strict`` on, a job whose dataset file is missing from the Data Store,
or whose target model the NIM does not serve when the job starts, fails with a message.
``Faults.evaluation_failures`` fails jobs half way.

Results (``GET .../results``) follow the Evaluator's nesting,
``tasks[task].metrics[metric].scores[score].value``, with score names per metric type:
``tool-calling`` → ``function_name_accuracy`` and ``function_name_and_args_accuracy``;
``llm-judge`` → the keys of ``params.scores`` (e.g. ``similarity``, ``rating``); ``bleu`` →
``sentence``, ``corpus``; ``rouge`` → ``rouge_1_score`` ...; anything else → the metric name.
Values come from the pluggable scorer, else ``scores_by_model``/``scores``, else 0.75.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tests.support.nmp_emulator.config import DEFAULT_SCORE, Message, ScoreContext
from tests.support.nmp_emulator.faults import lookup
from tests.support.nmp_emulator.http import HTTPError, Request, Response, Router
from tests.support.nmp_emulator.inference import served_models
from tests.support.nmp_emulator.state import (
    Context,
    EvaluationJob,
    conflict,
    entity_times,
    list_response,
    lost_response,
    not_found,
    progress,
    split_ref,
    validation_error,
)

TERMINAL = ("completed", "failed", "cancelled")
_CONFIG_FIELDS = (
    "description",
    "custom_fields",
    "project",
    "ownership",
    "type",
    "tasks",
    "groups",
    "params",
)
_TARGET_FIELDS = (
    "description",
    "custom_fields",
    "project",
    "ownership",
    "type",
    "model",
    "dataset",
    "cached_outputs",
    "rag",
    "retriever",
    "rows",
)
_JOB_FIELDS = ("description", "custom_fields", "project", "ownership", "output_files_url")
_ROUGE = ("rouge_1_score", "rouge_2_score", "rouge_3_score", "rouge_L_score")


def eval_phase(job: EvaluationJob, now: float) -> tuple[str, float]:
    end = job.cancelled_at if job.cancelled_at is not None else now
    elapsed = end - job.created
    if progress(elapsed, job.queue_s) < 1.0:
        status, fraction = "created", 0.0
    else:
        fraction = progress(elapsed - job.queue_s, job.run_s)
        if job.fail_message is not None and fraction >= job.fail_at:
            status, fraction = "failed", job.fail_at
        elif fraction >= 1.0:
            status = "completed"
        else:
            status = "running"
    if job.cancelled_at is not None and status not in ("completed", "failed"):
        status = "cancelled"
    return status, fraction


def score_names(metric: Mapping[str, Any], metric_name: str) -> list[str]:
    kind = str(metric.get("type") or metric_name)
    params = metric.get("params") or {}
    if kind == "tool-calling":
        return ["function_name_accuracy", "function_name_and_args_accuracy"]
    if kind == "llm-judge":
        scores = params.get("scores") if isinstance(params, Mapping) else None
        return list(scores) if isinstance(scores, Mapping) and scores else ["score"]
    if kind == "bleu":
        return ["sentence", "corpus"]
    if kind == "rouge":
        return list(_ROUGE)
    if kind in ("f1", "em"):
        return [f"{kind}_score"]
    return [metric_name]


def target_model_of(target: Mapping[str, Any]) -> str | None:
    model = target.get("model")
    if isinstance(model, str):
        return model
    if isinstance(model, Mapping):
        endpoint = model.get("api_endpoint") or {}
        if isinstance(endpoint, Mapping) and endpoint.get("model_id"):
            return str(endpoint["model_id"])
        if model.get("name"):
            ns = model.get("namespace")
            return f"{ns}/{model['name']}" if ns else str(model["name"])
    return None


def _dataset_ref(task: Mapping[str, Any]) -> tuple[str | None, int | None]:
    dataset = task.get("dataset")
    if isinstance(dataset, str):
        return dataset, None
    if isinstance(dataset, Mapping):
        limit = dataset.get("limit")
        return dataset.get("files_url"), int(limit) if isinstance(limit, int) else None
    return None, None


def _ground_truth_calls(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    try:
        message = item["response"]["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        return []
    return list(message.get("tool_calls") or [])


def _call_key(call: Mapping[str, Any]) -> tuple[str, Any]:
    function = call.get("function", call)
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        with contextlib.suppress(orjson.JSONDecodeError):
            arguments = orjson.loads(arguments)
    return str(function.get("name")), orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS)


def replay_tool_calling_scorer(ctx: ScoreContext) -> float | None:
    """Tool-calling metrics computed for real: every dataset item's ``request`` is replayed
    through the NIM responder (as the target model) and its tool calls compared with the logged
    ``response.choices[0].message.tool_calls``. Other metrics fall back (``None``)."""
    if ctx.metric.get("type") != "tool-calling" or not ctx.items:
        return None
    names = both = 0
    for item in ctx.items:
        request = item.get("request") or {}
        body = {
            "model": ctx.target_model,
            "messages": request.get("messages") or [],
            "tools": request.get("tools"),
            "tool_choice": "required",
        }
        predicted = [_call_key(c) for c in ctx.respond(body).get("tool_calls") or []]
        truth = [_call_key(c) for c in _ground_truth_calls(item)]
        names += [n for n, _ in predicted] == [n for n, _ in truth]
        both += predicted == truth
    hits = names if ctx.score_name == "function_name_accuracy" else both
    return hits / len(ctx.items)


class EvaluatorService:
    def __init__(self, ctx: Context, respond: Callable[[dict[str, Any]], Message]) -> None:
        self.ctx = ctx
        self.respond = respond
        self._scorer = ctx.config.scorer

    @property
    def scorer(self) -> Callable[[ScoreContext], float | None] | None:
        with self.ctx.state.lock:
            return self._scorer

    @scorer.setter
    def scorer(self, value: Callable[[ScoreContext], float | None] | None) -> None:
        with self.ctx.state.lock:
            self._scorer = value

    def register(self, router: Router) -> None:
        r = router
        configs = "/v1/evaluation/configs"
        r.add("POST", configs, self.create_config)
        r.add("GET", configs, self.list_configs)
        r.add("GET", configs + "/{ns}/{name}", self.get_config)
        r.add("PATCH", configs + "/{ns}/{name}", self.update_config)
        r.add("DELETE", configs + "/{ns}/{name}", self.delete_config)
        targets = "/v1/evaluation/targets"
        r.add("POST", targets, self.create_target)
        r.add("GET", targets, self.list_targets)
        r.add("GET", targets + "/{ns}/{name}", self.get_target)
        r.add("PATCH", targets + "/{ns}/{name}", self.update_target)
        r.add("DELETE", targets + "/{ns}/{name}", self.delete_target)
        jobs = "/v1/evaluation/jobs"
        r.add("POST", jobs, self.create_job)
        r.add("GET", jobs, self.list_jobs)
        r.add("GET", jobs + "/{job_id}", self.get_job)
        r.add("DELETE", jobs + "/{job_id}", self.delete_job)
        r.add("GET", jobs + "/{job_id}/status", self.get_status)
        r.add("GET", jobs + "/{job_id}/results", self.get_results)
        r.add("POST", jobs + "/{job_id}/cancel", self.cancel_job)
        r.add("GET", jobs + "/{job_id}/download-results", self.download_results)
        r.add("GET", jobs + "/{job_id}/logs", self.logs)

    # --- time ---

    def tick(self, now: float) -> None:
        """Start-of-run checks (dataset present, model served) for newly running jobs."""
        served: list[str] | None = None
        for job in self.ctx.state.evaluation_jobs.values():
            if job.checked or eval_phase(job, now)[0] == "created":
                continue
            job.checked = True
            if not self.ctx.config.strict or job.cancelled_at is not None:
                continue
            problem = self._missing_dataset(job)
            if problem is None and job.target.get("type") == "model":
                if served is None:
                    served = served_models(self.ctx, now)
                if job.target_model not in served:
                    problem = (
                        f"Model '{job.target_model}' is not available at the inference endpoint"
                    )
            if problem is not None:
                job.fail_message, job.fail_at = problem, 0.0

    def _missing_dataset(self, job: EvaluationJob) -> str | None:
        for task in (job.config.get("tasks") or {}).values():
            files_url, _ = _dataset_ref(task)
            if files_url and files_url.startswith("hf://") and self._load(files_url) is None:
                return f"Dataset '{files_url}' not found in the Data Store"
        return None

    def _load(self, files_url: str, limit: int | None = None) -> list[dict[str, Any]] | None:
        """The JSONL records a ``hf://{type}s/{ns}/{name}[/path]`` URL points at, or ``None``."""
        parts = files_url.removeprefix("hf://").split("/")
        if len(parts) < 3 or not parts[0].endswith("s"):
            return None
        rt, repo_id, path = parts[0][:-1], "/".join(parts[1:3]), "/".join(parts[3:])
        with self.ctx.state.lock:
            repo = self.ctx.state.repos.get((rt, repo_id))
            if repo is None:
                return None
            if path and path in repo.files:
                blobs = [repo.files[path]]
            else:
                prefix = f"{path.strip('/')}/" if path else ""
                blobs = [
                    d
                    for p, d in sorted(repo.files.items())
                    if p.startswith(prefix) and p.endswith((".jsonl", ".json"))
                ]
                if path and not blobs:
                    return None
        items: list[dict[str, Any]] = []
        for blob in blobs:
            for line in blob.splitlines():
                if line.strip():
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(record, dict):
                        items.append(record)
        return items[:limit] if limit is not None else items

    # --- configs & targets ---

    def _create_named(
        self,
        req: Request,
        store: dict[tuple[str, str], dict[str, Any]],
        kind: str,
        prefix: str,
        fields: tuple[str, ...],
    ) -> Response:
        body = req.json_object()
        if not isinstance(body.get("type"), str):
            raise validation_error(["type"], "Field required")
        if kind == "Evaluation config":
            _validate_tasks(body.get("tasks"))
        with self.ctx.state.lock:
            entity_id = self.ctx.ids.new(prefix)
            ns = body.get("namespace") or "default"
            name = body.get("name") or entity_id
            if (ns, name) in store:
                raise conflict(f"{kind} '{ns}/{name}'")
            guard_conflict, lost = self.ctx.guard_create([name, f"{ns}/{name}"])
            entity = {
                "id": entity_id,
                "name": name,
                "namespace": ns,
                **entity_times(self.ctx, self.ctx.now()),
            }
            entity.update({k: body[k] for k in fields if k in body})
            store[(ns, name)] = entity
        if guard_conflict:
            raise conflict(f"{kind} '{ns}/{name}'")
        if lost:
            raise lost_response()
        return Response.json(entity)

    @staticmethod
    def _get_named(
        store: dict[tuple[str, str], dict[str, Any]], kind: str, ns: str, name: str
    ) -> dict[str, Any]:
        entity = store.get((ns, name))
        if entity is None:
            raise not_found(f"{kind} '{ns}/{name}'")
        return entity

    def create_config(self, req: Request) -> Response:
        return self._create_named(
            req,
            self.ctx.state.evaluation_configs,
            "Evaluation config",
            "eval-config",
            _CONFIG_FIELDS,
        )

    def list_configs(self, req: Request) -> Response:
        with self.ctx.state.lock:
            items = list(self.ctx.state.evaluation_configs.values())
        return Response.json(list_response(self.ctx, req, items))

    def get_config(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            store = self.ctx.state.evaluation_configs
            return Response.json(self._get_named(store, "Evaluation config", ns, name))

    def update_config(self, req: Request, ns: str, name: str) -> Response:
        body = req.json_object()
        with self.ctx.state.lock:
            store = self.ctx.state.evaluation_configs
            entity = self._get_named(store, "Evaluation config", ns, name)
            entity.update({k: body[k] for k in _CONFIG_FIELDS if body.get(k) is not None})
            entity["updated_at"] = self.ctx.iso()
            return Response.json(entity)

    def delete_config(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            store = self.ctx.state.evaluation_configs
            entity = self._get_named(store, "Evaluation config", ns, name)
            del store[(ns, name)]
        return Response.json(
            {"id": entity["id"], "deleted_at": self.ctx.iso(), "message": "Resource deleted"}
        )

    def create_target(self, req: Request) -> Response:
        return self._create_named(
            req,
            self.ctx.state.evaluation_targets,
            "Evaluation target",
            "eval-target",
            _TARGET_FIELDS,
        )

    def list_targets(self, req: Request) -> Response:
        with self.ctx.state.lock:
            items = list(self.ctx.state.evaluation_targets.values())
        return Response.json(list_response(self.ctx, req, items))

    def get_target(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            store = self.ctx.state.evaluation_targets
            return Response.json(self._get_named(store, "Evaluation target", ns, name))

    def update_target(self, req: Request, ns: str, name: str) -> Response:
        body = req.json_object()
        with self.ctx.state.lock:
            store = self.ctx.state.evaluation_targets
            entity = self._get_named(store, "Evaluation target", ns, name)
            entity.update({k: body[k] for k in _TARGET_FIELDS if body.get(k) is not None})
            entity["updated_at"] = self.ctx.iso()
            return Response.json(entity)

    def delete_target(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            store = self.ctx.state.evaluation_targets
            entity = self._get_named(store, "Evaluation target", ns, name)
            del store[(ns, name)]
        return Response.json(
            {"id": entity["id"], "deleted_at": self.ctx.iso(), "message": "Resource deleted"}
        )

    # --- jobs ---

    def _resolve(
        self, value: Any, store: dict[tuple[str, str], dict[str, Any]], kind: str, field: str
    ) -> dict[str, Any]:
        if isinstance(value, str):
            entity = store.get(split_ref(value))
            if entity is None:
                raise not_found(f"{kind} '{value}'")
            return entity
        if isinstance(value, dict):
            if not isinstance(value.get("type"), str):
                raise validation_error([field, "type"], "Field required")
            return value
        raise validation_error([field], "must be a reference or an object")

    def create_job(self, req: Request) -> Response:
        body = req.json_object()
        for required in ("config", "target"):
            if required not in body:
                raise validation_error([required], "Field required")
        state = self.ctx.state
        now = self.ctx.now()
        with state.lock:
            config = self._resolve(
                body["config"], state.evaluation_configs, "Evaluation config", "config"
            )
            if isinstance(body["config"], dict):
                _validate_tasks(config.get("tasks"))
            target = self._resolve(
                body["target"], state.evaluation_targets, "Evaluation target", "target"
            )
            target_model = target_model_of(target)
            custom = body.get("custom_fields") or {}
            ids = [
                body.get("name"),
                body.get("description"),
                target_model,
                *(str(v) for v in custom.values() if isinstance(v, str | int)),
            ]
            guard_conflict, lost = self.ctx.guard_create(ids)
            durations = self.ctx.durations
            job = EvaluationJob(
                id=self.ctx.ids.new("eval"),
                body=dict(body),
                config=config,
                target=target,
                target_model=target_model,
                created=now,
                queue_s=durations.evaluation_queue,
                run_s=durations.evaluation,
                fail_message=lookup(self.ctx.faults.faults.evaluation_failures, ids),
            )
            job.n_items = self._count_items(config)
            state.evaluation_jobs[job.id] = job
            state.evaluations_created[target_model or "?"] += 1
            view = self.view(job, now)
        if guard_conflict:
            raise conflict("Evaluation job")
        if lost:
            raise lost_response()
        return Response.json(view)

    def _count_items(self, config: Mapping[str, Any]) -> int:
        total = 0
        for task in (config.get("tasks") or {}).values():
            files_url, limit = _dataset_ref(task)
            items = self._load(files_url, limit) if files_url else None
            total += len(items) if items is not None else 0
        return total

    def _job(self, job_id: str) -> EvaluationJob:
        job = self.ctx.state.evaluation_jobs.get(job_id)
        if job is None:
            raise not_found(f"Evaluation job '{job_id}'")
        return job

    def list_jobs(self, req: Request) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            items = [self.view(j, now) for j in self.ctx.state.evaluation_jobs.values()]
        return Response.json(list_response(self.ctx, req, items, filter_view=_job_filter_view))

    def get_job(self, req: Request, job_id: str) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            return Response.json(self.view(self._job(job_id), now))

    def get_status(self, req: Request, job_id: str) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            return Response.json(self.status_details(self._job(job_id), now))

    def delete_job(self, req: Request, job_id: str) -> Response:
        with self.ctx.state.lock:
            self._job(job_id)
            del self.ctx.state.evaluation_jobs[job_id]
            self.ctx.state.deleted_evaluation_jobs.add(job_id)
        return Response.empty(204)

    def cancel_job(self, req: Request, job_id: str) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            job = self._job(job_id)
            status, _ = eval_phase(job, now)
            if status in ("completed", "failed"):
                raise HTTPError(400, f"Job '{job_id}' is {status} and cannot be cancelled")
            if job.cancelled_at is None:
                job.cancelled_at = now
                self.ctx.state.cancelled.append(job_id)
            return Response.json(self.view(job, now))

    def get_results(self, req: Request, job_id: str) -> Response:
        return Response.json(self.results(job_id))

    def download_results(self, req: Request, job_id: str) -> Response:
        results = self.results(job_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("results.json", orjson.dumps(results))
        return Response(200, buffer.getvalue(), content_type="application/zip")

    def logs(self, req: Request, job_id: str) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            job = self._job(job_id)
            details = self.status_details(job, now)
        return Response.json({"job_id": job_id, "logs": [details["message"]]})

    def results(self, job_id: str) -> dict[str, Any]:
        """The job's results, computed once on first read (the scorer runs outside the lock)."""
        now = self.ctx.now()
        with self.ctx.state.lock:
            job = self._job(job_id)
            status, _ = eval_phase(job, now)
            if status != "completed":
                raise not_found(f"Results for evaluation job '{job_id}' (status {status})")
            if job.results is not None:
                return job.results
            config, target_model = job.config, job.target_model or ""
            finished = job.created + job.queue_s + job.run_s
            scorer = self._scorer
        tasks: dict[str, Any] = {}
        for task_name, task in (config.get("tasks") or {}).items():
            files_url, limit = _dataset_ref(task)
            items = self._load(files_url, limit) if files_url else None
            metrics: dict[str, Any] = {}
            for metric_name, metric in (task.get("metrics") or {}).items():
                scores: dict[str, Any] = {}
                for score_name in score_names(metric, metric_name):
                    value = None
                    if scorer is not None:
                        value = scorer(
                            ScoreContext(
                                job_id,
                                target_model,
                                task_name,
                                task,
                                metric_name,
                                metric,
                                score_name,
                                items,
                                self.respond,
                            )
                        )
                    if value is None:
                        value = self._fixed_score(target_model, score_name)
                    count = len(items) if items is not None else 0
                    scores[score_name] = {
                        "value": float(value),
                        "stats": {
                            "count": count,
                            "sum": float(value) * count,
                            "mean": float(value),
                        },
                    }
                metrics[metric_name] = {"scores": scores}
            tasks[task_name] = {"metrics": metrics}
        results = {
            "id": self.ctx.ids.new("evaluation_result"),
            "job": job_id,
            "namespace": job.body.get("namespace") or "default",
            "tasks": tasks,
            "groups": {},
            "files_url": f"hf://datasets/evaluation-results/{job_id}",
            **entity_times(self.ctx, finished),
        }
        with self.ctx.state.lock:
            if job.results is None:
                job.results = results
            return job.results

    def _fixed_score(self, model: str, score_name: str) -> float:
        by_model = self.ctx.config.scores_by_model.get(model) or {}
        if score_name in by_model:
            return by_model[score_name]
        return self.ctx.config.scores.get(score_name, DEFAULT_SCORE)

    # --- views ---

    def status_details(self, job: EvaluationJob, now: float) -> dict[str, Any]:
        status, fraction = eval_phase(job, now)
        task_state = {
            "created": "pending",
            "running": "running",
            "completed": "completed",
            "failed": "failed",
            "cancelled": "failed",
        }[status]
        message = {
            "created": "Job created, waiting to start",
            "running": "Evaluation in progress",
            "completed": "Job completed successfully",
            "failed": job.fail_message or "Job failed",
            "cancelled": "Job cancelled",
        }[status]
        return {
            "message": message,
            "progress": round(100.0 * (1.0 if status == "completed" else fraction), 2),
            "samples_processed": int(job.n_items * (1.0 if status == "completed" else fraction)),
            "task_status": {name: task_state for name in (job.config.get("tasks") or {})},
        }

    def view(self, job: EvaluationJob, now: float) -> dict[str, Any]:
        status, fraction = eval_phase(job, now)
        started = job.created + job.queue_s
        changed = {
            "created": job.created,
            "running": started,
            "completed": started + job.run_s,
            "failed": started + fraction * job.run_s,
            "cancelled": job.cancelled_at or now,
        }[status]
        view = {
            "id": job.id,
            "namespace": job.body.get("namespace") or "default",
            "config": job.config,
            "target": job.target,
            "status": status,
            "status_details": self.status_details(job, now),
            "result": job.results["id"] if job.results else None,
            **entity_times(self.ctx, job.created, changed),
        }
        view.update({k: job.body[k] for k in _JOB_FIELDS if k in job.body})
        return view


def _validate_tasks(tasks: Any) -> None:
    if tasks is None:
        return
    if not isinstance(tasks, dict):
        raise validation_error(["tasks"], "must be an object")
    for task_name, task in tasks.items():
        if not isinstance(task, dict) or not isinstance(task.get("type"), str):
            raise validation_error(["tasks", task_name, "type"], "Field required")
        for metric_name, metric in (task.get("metrics") or {}).items():
            if not isinstance(metric, dict) or not isinstance(metric.get("type"), str):
                raise validation_error(
                    ["tasks", task_name, "metrics", metric_name, "type"], "Field required"
                )


def _job_filter_view(view: dict[str, Any]) -> dict[str, Any]:
    target = view.get("target") or {}
    return {**view, "target": {**target, "model": target_model_of(target)}}
