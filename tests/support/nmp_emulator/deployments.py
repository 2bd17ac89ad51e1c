"""Deployment Management (DMS): ``/v1/deployment/model-deployments`` and ``/v1/deployment/configs``.

A deployment is ``pending`` for ``Durations.deploy`` seconds, then ``ready`` (its models are
served by the NIM surface) or, when ``Faults.deployment_failures`` names it, ``failed`` with the
reason in ``status_details.description``. ``Faults.deployment_pending_status`` makes it report
another string while it starts. Creating a deployment that exists answers
``EmulatorConfig.deployment_conflict_status`` with ``model deployment already exists``.
"""

from __future__ import annotations

from typing import Any

from tests.support.nmp_emulator.faults import lookup
from tests.support.nmp_emulator.http import HTTPError, Request, Response, Router
from tests.support.nmp_emulator.state import (
    Context,
    Deployment,
    conflict,
    entity_times,
    list_response,
    lost_response,
    not_found,
    progress,
    split_ref,
    validation_error,
)

_CONFIG_FIELDS = (
    "description",
    "custom_fields",
    "project",
    "ownership",
    "model",
    "nim_deployment",
    "external_endpoint",
)
_SECRET_FIELDS = ("hf_token",)


def deployment_status(dep: Deployment, now: float) -> tuple[str, str]:
    """(status, description) at monotonic time ``now``."""
    if progress(now - dep.created, dep.deploy_s) < 1.0:
        return dep.pending_status, "Model deployment is being created"
    if dep.fail_reason is not None:
        return "failed", dep.fail_reason
    return "ready", "Model deployment is ready"


def model_ref(model: Any) -> str | None:
    """A model given as a string, or as an Entity Store object, → ``"ns/name"``."""
    if isinstance(model, str):
        return model
    if isinstance(model, dict):
        name = model.get("name")
        if not name:
            return None
        return f"{model['namespace']}/{name}" if model.get("namespace") else name
    return None


class DeploymentService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        r = router
        base = "/v1/deployment/model-deployments"
        r.add("POST", base, self.create)
        r.add("GET", base, self.list)
        r.add("GET", base + "/{ns}/{name}", self.get)
        r.add("PATCH", base + "/{ns}/{name}", self.update)
        r.add("DELETE", base + "/{ns}/{name}", self.delete)
        configs = "/v1/deployment/configs"
        r.add("POST", configs, self.create_config)
        r.add("GET", configs, self.list_configs)
        r.add("GET", configs + "/{ns}/{name}", self.get_config)
        r.add("PATCH", configs + "/{ns}/{name}", self.update_config)
        r.add("DELETE", configs + "/{ns}/{name}", self.delete_config)

    # --- views ---

    def view(self, dep: Deployment, now: float) -> dict[str, Any]:
        status, description = deployment_status(dep, now)
        starting = status == dep.pending_status
        changed = dep.created if starting else dep.created + dep.deploy_s
        body = {k: v for k, v in dep.body.items() if k not in _SECRET_FIELDS}
        return {
            **body,
            "name": dep.name,
            "namespace": dep.namespace,
            "config": dep.body["config"],
            "models": list(dep.models),
            "async_enabled": bool(dep.body.get("async_enabled", False)),
            "url": self.ctx.nim_url,
            "deployed": status == "ready",
            "status_details": {"status": status, "description": description},
            **entity_times(self.ctx, dep.created, max(changed, dep.updated)),
        }

    def _models_of(self, body: dict[str, Any]) -> list[str]:
        models = body.get("models")
        if isinstance(models, list) and models:
            return [str(m) for m in models]
        config = body["config"]
        if isinstance(config, str):
            stored = self.ctx.state.deployment_configs.get(split_ref(config))
            if stored is None:
                if self.ctx.config.strict:
                    raise not_found(f"Deployment config '{config}'")
                return []
            config = stored
        if not isinstance(config, dict):
            raise validation_error(["config"], "must be an object or a config reference")
        ref = model_ref(config.get("model"))
        return [ref] if ref else []

    # --- model deployments ---

    def create(self, req: Request) -> Response:
        body = req.json_object()
        if "config" not in body:
            raise validation_error(["config"], "Field required")
        state = self.ctx.state
        now = self.ctx.now()
        with state.lock:
            ns = body.get("namespace") or "default"
            name = body.get("name") or self.ctx.ids.new("deployment")
            key = (ns, name)
            if key in state.deployments:
                raise HTTPError(
                    self.ctx.config.deployment_conflict_status,
                    f"model deployment already exists: {ns}/{name}",
                )
            models = self._models_of(body)
            ids = [name, f"{ns}/{name}", *models]
            guard_conflict, lost = self.ctx.guard_create(ids)
            dep = Deployment(
                namespace=ns,
                name=name,
                body=dict(body),
                models=models,
                created=now,
                deploy_s=self.ctx.durations.deploy,
                fail_reason=lookup(self.ctx.faults.faults.deployment_failures, ids),
                pending_status=lookup(self.ctx.faults.faults.deployment_pending_status, ids)
                or "pending",
            )
            state.deployments[key] = dep
            state.deployments_created[f"{ns}/{name}"] += 1
            view = self.view(dep, now)
        if guard_conflict:
            raise HTTPError(
                self.ctx.config.deployment_conflict_status,
                f"model deployment already exists: {ns}/{name}",
            )
        if lost:
            raise lost_response()
        return Response.json(view)

    def list(self, req: Request) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            items = [self.view(d, now) for d in self.ctx.state.deployments.values()]
        return Response.json(list_response(self.ctx, req, items))

    def get(self, req: Request, ns: str, name: str) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            dep = self.ctx.state.deployments.get((ns, name))
            if dep is None:
                raise not_found(f"Model deployment '{ns}/{name}'")
            return Response.json(self.view(dep, now))

    def update(self, req: Request, ns: str, name: str) -> Response:
        body = req.json_object()
        now = self.ctx.now()
        with self.ctx.state.lock:
            dep = self.ctx.state.deployments.get((ns, name))
            if dep is None:
                raise not_found(f"Model deployment '{ns}/{name}'")
            dep.body.update({k: v for k, v in body.items() if v is not None})
            if "config" in body or "models" in body:
                dep.models = self._models_of(dep.body)
            dep.updated = now
            return Response.json(self.view(dep, now))

    def delete(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            dep = self.ctx.state.deployments.pop((ns, name), None)
            if dep is None:
                raise not_found(f"Model deployment '{ns}/{name}'")
            self.ctx.state.deployments_deleted[f"{ns}/{name}"] += 1
        return Response.json(
            {"id": f"{ns}/{name}", "deleted_at": self.ctx.iso(), "message": "Resource deleted"}
        )

    # --- deployment configs ---

    def create_config(self, req: Request) -> Response:
        body = req.json_object()
        state = self.ctx.state
        with state.lock:
            ns = body.get("namespace") or "default"
            name = body.get("name") or self.ctx.ids.new("deployment-config")
            if (ns, name) in state.deployment_configs:
                raise conflict(f"Deployment config '{ns}/{name}'")
            entity = {"name": name, "namespace": ns, **entity_times(self.ctx, self.ctx.now())}
            entity.update({k: body[k] for k in _CONFIG_FIELDS if k in body})
            state.deployment_configs[(ns, name)] = entity
        return Response.json(entity)

    def list_configs(self, req: Request) -> Response:
        with self.ctx.state.lock:
            items = list(self.ctx.state.deployment_configs.values())
        return Response.json(list_response(self.ctx, req, items))

    def get_config(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            entity = self.ctx.state.deployment_configs.get((ns, name))
        if entity is None:
            raise not_found(f"Deployment config '{ns}/{name}'")
        return Response.json(entity)

    def update_config(self, req: Request, ns: str, name: str) -> Response:
        body = req.json_object()
        with self.ctx.state.lock:
            entity = self.ctx.state.deployment_configs.get((ns, name))
            if entity is None:
                raise not_found(f"Deployment config '{ns}/{name}'")
            entity.update({k: body[k] for k in _CONFIG_FIELDS if body.get(k) is not None})
            entity["updated_at"] = self.ctx.iso()
            return Response.json(entity)

    def delete_config(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            if self.ctx.state.deployment_configs.pop((ns, name), None) is None:
                raise not_found(f"Deployment config '{ns}/{name}'")
        return Response.json(
            {"id": f"{ns}/{name}", "deleted_at": self.ctx.iso(), "message": "Resource deleted"}
        )
