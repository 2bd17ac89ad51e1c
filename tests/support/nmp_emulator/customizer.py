"""NeMo Customizer: ``/v1/customization/configs``, ``/targets`` and ``/jobs``.

A job is ``created`` for ``Durations.customization_queue`` seconds, then ``running`` for
``Durations.customization`` seconds (``percentage_done``, ``epochs_completed``,
``steps_completed`` and the loss curves grow linearly), then ``completed``: its output model
(``output_model`` gets ``@<job id>`` appended when it has no revision) is registered in the
Entity Store and, ``Durations.model_sync`` seconds later, served by the NIM (when its base model
is deployed, see ``lora_requires_base_deployment``).

Faults: ``customization_failures`` makes a job fail part way with ``status_logs`` ending in the
given detail; ``not_enough_resources`` keeps a job waiting forever with a last status log whose
``message`` is ``NotEnoughResources`` (what the blueprint looks for).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tests.support.nmp_emulator.faults import lookup, matches
from tests.support.nmp_emulator.http import HTTPError, Request, Response, Router
from tests.support.nmp_emulator.state import (
    Context,
    CustomizationJob,
    conflict,
    entity_times,
    list_response,
    lost_response,
    not_found,
    progress,
    split_ref,
    strip_version,
    validation_error,
)

TERMINAL = ("completed", "failed", "cancelled")
_PRECISIONS = ("int8", "bf16", "fp16", "fp32", "fp8-mixed", "bf16-mixed")
_CONFIG_FIELDS = (
    "description",
    "custom_fields",
    "project",
    "ownership",
    "target",
    "training_options",
    "training_precision",
    "max_seq_length",
    "prompt_template",
    "chat_prompt_template",
    "dataset_schemas",
    "pod_spec",
)
_TARGET_FIELDS = (
    "description",
    "custom_fields",
    "project",
    "ownership",
    "base_model",
    "enabled",
    "hf_endpoint",
    "model_path",
    "model_uri",
    "num_parameters",
    "precision",
    "tokenizer",
)
_JOB_FIELDS = (
    "description",
    "custom_fields",
    "project",
    "ownership",
    "integrations",
    "dataset_parameters",
)
_HP_FILTER_KEYS = (
    "epochs",
    "batch_size",
    "finetuning_type",
    "training_type",
    "log_every_n_steps",
)
_TRAINING_OPTION_REQUIRED = ("training_type", "finetuning_type", "num_gpus", "micro_batch_size")

RegisterModel = Callable[[str, str, dict[str, Any]], dict[str, Any]]


def job_phase(job: CustomizationJob, now: float) -> tuple[str, float]:
    """(status, fraction of training done) at monotonic time ``now``."""
    end = job.cancelled_at if job.cancelled_at is not None else now
    elapsed = end - job.created
    if progress(elapsed, job.queue_s) < 1.0:
        status, fraction = "created", 0.0
    elif job.not_enough_resources:
        status, fraction = job.nre_status, 0.0
    else:
        fraction = progress(elapsed - job.queue_s, job.train_s)
        if job.fail_detail is not None and fraction >= job.fail_at:
            status, fraction = "failed", job.fail_at
        elif fraction >= 1.0:
            status = "completed"
        else:
            status = "running"
    if job.cancelled_at is not None and status not in ("completed", "failed"):
        status = "cancelled"
    return status, fraction


def _loss(step: int, total: int) -> float:
    return round(0.3 + 2.0 * math.exp(-4.0 * step / max(total, 1)), 4)


class CustomizerService:
    def __init__(self, ctx: Context, register_model: RegisterModel) -> None:
        self.ctx = ctx
        self.register_model = register_model

    def register(self, router: Router) -> None:
        r = router
        configs = "/v1/customization/configs"
        r.add("POST", configs, self.create_config)
        r.add("GET", configs, self.list_configs)
        r.add("GET", configs + "/{ns}/{name}", self.get_config)
        r.add("PATCH", configs + "/{ns}/{name}", self.update_config)
        r.add("DELETE", configs + "/{ns}/{name}", self.delete_config)
        targets = "/v1/customization/targets"
        r.add("POST", targets, self.create_target)
        r.add("GET", targets, self.list_targets)
        r.add("GET", targets + "/{ns}/{name}", self.get_target)
        r.add("PATCH", targets + "/{ns}/{name}", self.update_target)
        r.add("DELETE", targets + "/{ns}/{name}", self.delete_target)
        jobs = "/v1/customization/jobs"
        r.add("POST", jobs, self.create_job)
        r.add("GET", jobs, self.list_jobs)
        r.add("GET", jobs + "/{job_id}", self.get_job)
        r.add("GET", jobs + "/{job_id}/status", self.get_status)
        r.add("POST", jobs + "/{job_id}/cancel", self.cancel_job)
        r.add("GET", jobs + "/{job_id}/container-logs", self.container_logs)

    # --- time ---

    def tick(self, now: float) -> None:
        """Register the output model of every job seen completed for the first time."""
        for job in self.ctx.state.customization_jobs.values():
            if job.completed_at is not None:
                continue
            status, _ = job_phase(job, now)
            if status != "completed":
                continue
            job.completed_at = job.created + job.queue_s + job.train_s
            ns, _, name = job.output_model.partition("/")
            hp = job.body.get("hyperparameters") or {}
            self.register_model(
                ns,
                name,
                {
                    "base_model": job.base_model,
                    "peft": {"finetuning_type": hp.get("finetuning_type", "lora")},
                    "artifact": {
                        "files_url": f"hf://models/{job.output_model}",
                        "status": "upload_completed",
                        "backend_engine": "nemo",
                    },
                    "custom_fields": {"customization_job_id": job.id},
                },
            )

    # --- configs ---

    def create_config(self, req: Request) -> Response:
        body = req.json_object()
        _validate_config(body)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise validation_error(["name"], "Field required")
        if self.ctx.config.require_config_version and "@" not in name:
            raise validation_error(
                ["name"],
                "config name needs a version suffix, e.g. 'my-config@v1.0.0+A100'",
            )
        ns = body.get("namespace") or "default"
        state = self.ctx.state
        with state.lock:
            if (ns, name) in state.customization_configs:
                raise conflict(f"Customization config '{ns}/{name}'")
            guard_conflict, lost = self.ctx.guard_create([name, f"{ns}/{name}"])
            entity = {
                "id": self.ctx.ids.new("customization_config"),
                "name": name,
                "namespace": ns,
                **entity_times(self.ctx, self.ctx.now()),
            }
            entity.update({k: body[k] for k in _CONFIG_FIELDS if k in body})
            entity.setdefault("training_precision", "bf16-mixed")
            state.customization_configs[(ns, name)] = entity
        if guard_conflict:
            raise conflict(f"Customization config '{ns}/{name}'")
        if lost:
            raise lost_response()
        return Response.json(entity)

    def list_configs(self, req: Request) -> Response:
        with self.ctx.state.lock:
            items = list(self.ctx.state.customization_configs.values())
        return Response.json(list_response(self.ctx, req, items))

    def get_config(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            entity = self.ctx.state.customization_configs.get((ns, name))
        if entity is None:
            raise not_found(f"Customization config '{ns}/{name}'")
        return Response.json(entity)

    def update_config(self, req: Request, ns: str, name: str) -> Response:
        body = req.json_object()
        with self.ctx.state.lock:
            entity = self.ctx.state.customization_configs.get((ns, name))
            if entity is None:
                raise not_found(f"Customization config '{ns}/{name}'")
            entity.update({k: body[k] for k in _CONFIG_FIELDS if body.get(k) is not None})
            for option in body.get("add_training_options") or []:
                entity.setdefault("training_options", []).append(option)
            entity["updated_at"] = self.ctx.iso()
            return Response.json({**entity, "warning": None})

    def delete_config(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            entity = self.ctx.state.customization_configs.pop((ns, name), None)
        if entity is None:
            raise not_found(f"Customization config '{ns}/{name}'")
        return Response.json({"id": entity["id"], "message": "Resource deleted"})

    # --- targets ---

    def create_target(self, req: Request) -> Response:
        body = req.json_object()
        for required in ("num_parameters", "precision"):
            if required not in body:
                raise validation_error([required], "Field required")
        state = self.ctx.state
        with state.lock:
            ns = body.get("namespace") or "default"
            name = body.get("name") or self.ctx.ids.new("customization_target")
            if (ns, name) in state.customization_targets:
                raise conflict(f"Customization target '{ns}/{name}'")
            entity = {
                "id": self.ctx.ids.new("customization_target"),
                "name": name,
                "namespace": ns,
                "enabled": True,
                "status": "ready",
                "model_path": name,
                **entity_times(self.ctx, self.ctx.now()),
            }
            entity.update({k: body[k] for k in _TARGET_FIELDS if k in body})
            state.customization_targets[(ns, name)] = entity
        return Response.json(entity)

    def list_targets(self, req: Request) -> Response:
        with self.ctx.state.lock:
            items = list(self.ctx.state.customization_targets.values())
        return Response.json(list_response(self.ctx, req, items))

    def get_target(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            entity = self.ctx.state.customization_targets.get((ns, name))
        if entity is None:
            raise not_found(f"Customization target '{ns}/{name}'")
        return Response.json(entity)

    def update_target(self, req: Request, ns: str, name: str) -> Response:
        body = req.json_object()
        with self.ctx.state.lock:
            entity = self.ctx.state.customization_targets.get((ns, name))
            if entity is None:
                raise not_found(f"Customization target '{ns}/{name}'")
            entity.update({k: body[k] for k in _TARGET_FIELDS if body.get(k) is not None})
            entity["updated_at"] = self.ctx.iso()
            return Response.json({**entity, "warning_message": None})

    def delete_target(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            entity = self.ctx.state.customization_targets.pop((ns, name), None)
        if entity is None:
            raise not_found(f"Customization target '{ns}/{name}'")
        return Response.json({"id": entity["id"], "message": "Resource deleted"})

    # --- jobs ---

    def _resolve_config(self, config: Any) -> dict[str, Any]:
        if isinstance(config, str):
            stored = self.ctx.state.customization_configs.get(split_ref(config))
            if stored is None:
                raise not_found(f"Customization config '{config}'")
            return stored
        if isinstance(config, dict):
            _validate_config(config)
            return config
        raise validation_error(["config"], "must be a config reference or a config object")

    def _base_model(self, config: dict[str, Any]) -> str | None:
        target = config.get("target")
        if isinstance(target, dict):
            ref = target.get("base_model") or (
                f"{target.get('namespace')}/{target.get('name')}" if target.get("name") else None
            )
            return strip_version(ref) if ref else None
        if isinstance(target, str):
            stored = self.ctx.state.customization_targets.get(split_ref(target))
            if stored is not None and stored.get("base_model"):
                return strip_version(str(stored["base_model"]))
            return strip_version(target)
        return None

    def _check_dataset(self, dataset: Any) -> None:
        if isinstance(dataset, str):
            key = split_ref(dataset)
        elif isinstance(dataset, dict) and dataset.get("name"):
            key = (dataset.get("namespace") or "default", dataset["name"])
        else:
            raise validation_error(["dataset"], "must be a dataset reference")
        if self.ctx.config.strict and key not in self.ctx.state.datasets:
            raise not_found(f"Dataset '{key[0]}/{key[1]}'")

    def create_job(self, req: Request) -> Response:
        body = req.json_object()
        for required in ("config", "dataset", "hyperparameters"):
            if required not in body:
                raise validation_error([required], "Field required")
        hp = body["hyperparameters"]
        if not isinstance(hp, dict) or not hp.get("finetuning_type"):
            raise validation_error(["hyperparameters", "finetuning_type"], "Field required")
        state = self.ctx.state
        now = self.ctx.now()
        with state.lock:
            config = self._resolve_config(body["config"])
            self._check_dataset(body["dataset"])
            name = body.get("name")
            ns = body.get("namespace") or config.get("namespace") or "default"
            requested = body.get("output_model")
            ids = [name, f"{ns}/{name}" if name else None, requested]
            guard_conflict, lost = self.ctx.guard_create(ids)
            if guard_conflict and any(
                j.body.get("name") == name and name for j in state.customization_jobs.values()
            ):
                raise conflict(f"Customization job '{name}'")  # taken by an "earlier attempt"
            job_id = self.ctx.ids.new("cust")
            output_model = _output_model(requested, ns, config, job_id)
            durations = self.ctx.durations
            faults = self.ctx.faults.faults
            fault_ids = [*ids, output_model]
            job = CustomizationJob(
                id=job_id,
                body=dict(body),
                config=config,
                output_model=output_model,
                base_model=self._base_model(config),
                created=now,
                queue_s=durations.customization_queue,
                train_s=durations.customization,
                epochs=max(1, int(hp.get("epochs") or 1)),
                steps_per_epoch=max(1, self.ctx.config.steps_per_epoch),
                fail_detail=lookup(faults.customization_failures, fault_ids),
                fail_at=min(max(faults.customization_fail_at, 0.0), 1.0),
                not_enough_resources=matches(faults.not_enough_resources, fault_ids) is not None,
                nre_status=faults.not_enough_resources_status,
                sync_s=durations.model_sync,
            )
            job.body.pop("wandb_api_key", None)  # a secret: never echoed back
            state.customization_jobs[job_id] = job
            state.customizations_created[name or output_model] += 1
            view = self.view(job, now)
        if guard_conflict:
            raise conflict(f"Customization job '{name}'")
        if lost:
            raise lost_response()
        return Response.json(view)

    def _job(self, job_id: str) -> CustomizationJob:
        job = self.ctx.state.customization_jobs.get(job_id)
        if job is None:
            raise not_found(f"Customization job '{job_id}'")
        return job

    def list_jobs(self, req: Request) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            items = [self.view(j, now) for j in self.ctx.state.customization_jobs.values()]
        return Response.json(list_response(self.ctx, req, items, filter_view=_job_filter_view))

    def get_job(self, req: Request, job_id: str) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            return Response.json(self.view(self._job(job_id), now))

    def get_status(self, req: Request, job_id: str) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            return Response.json(self.status_details(self._job(job_id), now))

    def cancel_job(self, req: Request, job_id: str) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            job = self._job(job_id)
            status, _ = job_phase(job, now)
            if status in ("completed", "failed"):
                raise HTTPError(400, f"Job '{job_id}' is {status} and cannot be cancelled")
            if job.cancelled_at is None:
                job.cancelled_at = now
                self.ctx.state.cancelled.append(job_id)
            return Response.json(self.view(job, now))

    def container_logs(self, req: Request, job_id: str) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            job = self._job(job_id)
            status, _ = job_phase(job, now)
            details = self.status_details(job, now)
        text = "\n".join(
            f"{log['updated_at']} {log['message']}: {log.get('detail') or ''}"
            for log in details["status_logs"]
        )
        return Response.json(
            {
                "entries": {
                    f"{job_id}-training": {
                        "object": "Pod",
                        "status": {"phase": status},
                        "logs": {"training": text},
                        "events": [],
                    }
                },
                "error": None,
            }
        )

    # --- views ---

    def view(self, job: CustomizationJob, now: float) -> dict[str, Any]:
        details = self.status_details(job, now)
        hp = {"training_type": "sft", "epochs": job.epochs, **job.body["hyperparameters"]}
        config = job.config
        view: dict[str, Any] = {
            "id": job.id,
            "name": job.body.get("name"),
            "namespace": job.body.get("namespace") or config.get("namespace") or "default",
            "config": config,
            "dataset": job.body["dataset"],
            "hyperparameters": hp,
            "output_model": job.output_model,
            "status": details["status"],
            "status_details": details,
            "created_at": details["created_at"],
            "updated_at": details["updated_at"],
            "warnings": [],
        }
        view.update({k: job.body[k] for k in _JOB_FIELDS if k in job.body})
        options = config.get("training_options") or []
        option = next(
            (
                o
                for o in options
                if o.get("training_type") == hp.get("training_type")
                and o.get("finetuning_type") == hp.get("finetuning_type")
            ),
            options[0] if options else None,
        )
        precision = config.get("training_precision")
        if option is not None:
            view["config_snapshot"] = {
                "base_model": job.base_model or str(config.get("target") or ""),
                "max_seq_length": config.get("max_seq_length", 4096),
                "precision": precision if precision in _PRECISIONS else "bf16-mixed",
                "training_option": option,
                "prompt_template": config.get("prompt_template"),
            }
        return view

    def status_details(self, job: CustomizationJob, now: float) -> dict[str, Any]:
        status, fraction = job_phase(job, now)
        iso = self.ctx.iso
        started = job.created + job.queue_s
        total_steps = job.epochs * job.steps_per_epoch
        steps = total_steps if status == "completed" else int(fraction * total_steps)
        epochs_done = steps // job.steps_per_epoch
        span = max(job.train_s, 1e-9)
        train_loss = [
            {
                "step": s,
                "value": _loss(s, total_steps),
                "timestamp": iso(started + span * s / total_steps),
            }
            for s in range(1, steps + 1)
        ]
        val_loss = [
            {
                "step": e * job.steps_per_epoch,
                "value": round(_loss(e * job.steps_per_epoch, total_steps) + 0.05, 4),
                "timestamp": iso(started + span * e / job.epochs),
            }
            for e in range(1, epochs_done + 1)
        ]
        logs = [{"updated_at": iso(job.created), "message": "created", "detail": "Job created"}]
        changed = job.created
        if status != "created":
            if job.not_enough_resources:
                gpus = (job.config.get("training_options") or [{}])[0].get("num_gpus", 1)
                logs.append(
                    {
                        "updated_at": iso(started),
                        "message": "NotEnoughResources",
                        "detail": (
                            f"Insufficient GPU resources to schedule the training job "
                            f"(requested {gpus} GPU(s)); waiting for resources"
                        ),
                    }
                )
                changed = started
            elif job.cancelled_at is None or job.cancelled_at >= started:
                logs.append({"updated_at": iso(started), "message": "running", "detail": None})
                changed = started
        if status == "completed":
            changed = started + job.train_s
            logs.append(
                {"updated_at": iso(changed), "message": "completed", "detail": "Training completed"}
            )
        elif status == "failed":
            changed = started + job.fail_at * job.train_s
            logs.append(
                {"updated_at": iso(changed), "message": "failed", "detail": job.fail_detail}
            )
        elif status == "cancelled" and job.cancelled_at is not None:
            changed = job.cancelled_at
            logs.append(
                {"updated_at": iso(changed), "message": "cancelled", "detail": "Job cancelled"}
            )
        end = job.cancelled_at if job.cancelled_at is not None else now
        best = min(range(len(val_loss)), key=lambda i: val_loss[i]["value"]) if val_loss else None
        return {
            "created_at": iso(job.created),
            "updated_at": iso(changed),
            "status": status,
            "percentage_done": round(100.0 * (1.0 if status == "completed" else fraction), 2),
            "epochs_completed": epochs_done,
            "steps_completed": steps,
            "steps_per_epoch": job.steps_per_epoch,
            "train_loss": train_loss[-1]["value"] if train_loss else None,
            "val_loss": val_loss[-1]["value"] if val_loss else None,
            "best_epoch": best,
            "elapsed_time": max(0.0, min(end, changed if status in TERMINAL else end) - started),
            "metrics": {
                "keys": ["train_loss", "val_loss"],
                "metrics": {"train_loss": train_loss, "val_loss": val_loss},
            },
            "status_logs": logs,
        }


def _validate_config(body: dict[str, Any]) -> None:
    if not isinstance(body.get("max_seq_length"), int):
        raise validation_error(["max_seq_length"], "Field required")
    options = body.get("training_options")
    if not isinstance(options, list) or not options:
        raise validation_error(["training_options"], "Field required")
    for index, option in enumerate(options):
        for required in _TRAINING_OPTION_REQUIRED:
            if not isinstance(option, dict) or required not in option:
                raise validation_error(["training_options", str(index), required], "Field required")


def _output_model(requested: Any, ns: str, config: dict[str, Any], job_id: str) -> str:
    if isinstance(requested, str) and requested:
        model = requested if "/" in requested else f"{ns}/{requested}"
    else:
        base = strip_version(str(config.get("name") or "model"))
        model = f"{ns}/{base}"
    return model if "@" in model else f"{model}@{job_id}"


def _job_filter_view(view: dict[str, Any]) -> dict[str, Any]:
    hp = view.get("hyperparameters") or {}
    dataset = view.get("dataset")
    if isinstance(dataset, dict):
        dataset = f"{dataset.get('namespace') or 'default'}/{dataset.get('name')}"
    return {
        **view,
        "base_model": (view.get("config_snapshot") or {}).get("base_model"),
        "dataset": dataset,
        **{k: hp.get(k) for k in _HP_FILTER_KEYS},
    }
