"""Entity Store: namespaces, datasets and models (``/v1/namespaces``, ``/v1/datasets``,
``/v1/models``).

``GET /v1/models`` is shared with the NIM's OpenAI-style model list when the SDK's
``inference_base_url`` equals its ``base_url``; every entry therefore carries both shapes: the
Entity Store fields (``name``, ``namespace``, ...) and OpenAI's (``id``, ``object``, ``created``,
``owned_by``). Models that a NIM serves without an Entity Store record are listed too.
"""

from __future__ import annotations

from typing import Any

from tests.support.nmp_emulator.http import Request, Response, Router
from tests.support.nmp_emulator.inference import served_models
from tests.support.nmp_emulator.state import (
    Context,
    conflict,
    entity_times,
    list_response,
    lost_response,
    not_found,
    require_str,
    split_ref,
)

_NAMESPACE_FIELDS = ("description", "custom_fields", "project", "ownership")
_DATASET_FIELDS = (
    "description",
    "custom_fields",
    "project",
    "ownership",
    "files_url",
    "format",
    "hf_endpoint",
    "limit",
    "split",
)
_MODEL_FIELDS = (
    "description",
    "custom_fields",
    "project",
    "ownership",
    "api_endpoint",
    "artifact",
    "base_model",
    "guardrails",
    "model_providers",
    "peft",
    "prompt",
    "spec",
)


class EntityStore:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def register(self, router: Router) -> None:
        r = router
        r.add("POST", "/v1/namespaces", self.create_namespace)
        r.add("GET", "/v1/namespaces", self.list_namespaces)
        r.add("GET", "/v1/namespaces/{ns}", self.get_namespace)
        r.add("PATCH", "/v1/namespaces/{ns}", self.update_namespace)
        r.add("DELETE", "/v1/namespaces/{ns}", self.delete_namespace)
        r.add("POST", "/v1/datasets", self.create_dataset)
        r.add("GET", "/v1/datasets", self.list_datasets)
        r.add("GET", "/v1/datasets/{ns}/{name}", self.get_dataset)
        r.add("PATCH", "/v1/datasets/{ns}/{name}", self.update_dataset)
        r.add("DELETE", "/v1/datasets/{ns}/{name}", self.delete_dataset)
        r.add("POST", "/v1/models", self.create_model)
        r.add("GET", "/v1/models", self.list_models)
        r.add("GET", "/v1/models/{ns}/{name}", self.get_model)
        r.add("PATCH", "/v1/models/{ns}/{name}", self.update_model)
        r.add("DELETE", "/v1/models/{ns}/{name}", self.delete_model)

    # --- namespaces ---

    def create_namespace(self, req: Request) -> Response:
        body = req.json_object()
        ns = require_str(body, "id")
        state = self.ctx.state
        with state.lock:
            if ns in state.namespaces:
                raise conflict(f"Namespace '{ns}'")
            guard_conflict, lost = self.ctx.guard_create([ns])
            now = self.ctx.now()
            entity = {"id": ns, **entity_times(self.ctx, now)}
            entity.update({k: body[k] for k in _NAMESPACE_FIELDS if k in body})
            state.namespaces[ns] = entity
        if guard_conflict:
            raise conflict(f"Namespace '{ns}'")
        if lost:
            raise lost_response()
        return Response.json(entity)

    def list_namespaces(self, req: Request) -> Response:
        with self.ctx.state.lock:
            items = list(self.ctx.state.namespaces.values())
        return Response.json(list_response(self.ctx, req, items))

    def get_namespace(self, req: Request, ns: str) -> Response:
        with self.ctx.state.lock:
            entity = self.ctx.state.namespaces.get(ns)
        if entity is None:
            raise not_found(f"Namespace '{ns}'")
        return Response.json(entity)

    def update_namespace(self, req: Request, ns: str) -> Response:
        body = req.json_object()
        with self.ctx.state.lock:
            entity = self.ctx.state.namespaces.get(ns)
            if entity is None:
                raise not_found(f"Namespace '{ns}'")
            entity.update({k: body[k] for k in _NAMESPACE_FIELDS if body.get(k) is not None})
            entity["updated_at"] = self.ctx.iso()
            return Response.json(entity)

    def delete_namespace(self, req: Request, ns: str) -> Response:
        with self.ctx.state.lock:
            if self.ctx.state.namespaces.pop(ns, None) is None:
                raise not_found(f"Namespace '{ns}'")
        return Response.json({"id": ns, "deleted_at": self.ctx.iso(), "message": "deleted"})

    # --- datasets ---

    def create_dataset(self, req: Request) -> Response:
        body = req.json_object()
        files_url = require_str(body, "files_url")
        ns = body.get("namespace") or "default"
        state = self.ctx.state
        with state.lock:
            entity_id = self.ctx.ids.new("dataset")
            name = body.get("name") or entity_id
            key = (ns, name)
            if key in state.datasets:
                raise conflict(f"Dataset '{ns}/{name}'")
            if self.ctx.config.strict and ns != "default" and ns not in state.namespaces:
                raise not_found(f"Namespace '{ns}'")
            guard_conflict, lost = self.ctx.guard_create([name, f"{ns}/{name}"])
            now = self.ctx.now()
            entity = {"id": entity_id, "name": name, "namespace": ns, **entity_times(self.ctx, now)}
            entity.update({k: body[k] for k in _DATASET_FIELDS if k in body})
            entity["files_url"] = files_url
            state.datasets[key] = entity
        if guard_conflict:
            raise conflict(f"Dataset '{ns}/{name}'")
        if lost:
            raise lost_response()
        return Response.json(entity)

    def list_datasets(self, req: Request) -> Response:
        with self.ctx.state.lock:
            items = list(self.ctx.state.datasets.values())
        return Response.json(list_response(self.ctx, req, items))

    def get_dataset(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            entity = self.ctx.state.datasets.get((ns, name))
        if entity is None:
            raise not_found(f"Dataset '{ns}/{name}'")
        return Response.json(entity)

    def update_dataset(self, req: Request, ns: str, name: str) -> Response:
        body = req.json_object()
        with self.ctx.state.lock:
            entity = self.ctx.state.datasets.get((ns, name))
            if entity is None:
                raise not_found(f"Dataset '{ns}/{name}'")
            # "If the request body has an empty field, keep the old value."
            entity.update({k: body[k] for k in _DATASET_FIELDS if body.get(k) not in (None, "")})
            entity["updated_at"] = self.ctx.iso()
            return Response.json(entity)

    def delete_dataset(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            entity = self.ctx.state.datasets.pop((ns, name), None)
        if entity is None:
            raise not_found(f"Dataset '{ns}/{name}'")
        return Response.json(
            {"id": entity["id"], "deleted_at": self.ctx.iso(), "message": "Resource deleted"}
        )

    # --- models ---

    def create_model(self, req: Request) -> Response:
        body = req.json_object()
        state = self.ctx.state
        with state.lock:
            entity_id = self.ctx.ids.new("model")
            ns = body.get("namespace") or "default"
            name = body.get("name") or entity_id
            if (ns, name) in state.models:
                raise conflict(f"Model '{ns}/{name}'")
            guard_conflict, lost = self.ctx.guard_create([name, f"{ns}/{name}"])
            entity = self.register_model(ns, name, {k: body[k] for k in _MODEL_FIELDS if k in body})
        if guard_conflict:
            raise conflict(f"Model '{ns}/{name}'")
        if lost:
            raise lost_response()
        return Response.json(entity)

    def register_model(self, ns: str, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Store a model entity (also used by the Customizer for customized models)."""
        now = self.ctx.now()
        entity: dict[str, Any] = {
            "id": self.ctx.ids.new("model"),
            "name": name,
            "namespace": ns,
            **entity_times(self.ctx, now),
            **fields,
        }
        with self.ctx.state.lock:
            self.ctx.state.models[(ns, name)] = entity
        return entity

    def list_models(self, req: Request) -> Response:
        now = self.ctx.now()
        with self.ctx.state.lock:
            registered = [_with_openai_fields(self.ctx, m) for m in self.ctx.state.models.values()]
            known = {m["id"] for m in registered}
            for model_id in served_models(self.ctx, now):
                if model_id not in known:
                    ns, name = split_ref(model_id)
                    registered.append(
                        {
                            "id": model_id,
                            "object": "model",
                            "created": int(self.ctx.clock.wall(now).timestamp()),
                            "owned_by": ns,
                            "name": name,
                            "namespace": ns,
                            "created_at": self.ctx.iso(now),
                            "updated_at": self.ctx.iso(now),
                        }
                    )
        # One big default page: the NIM's list (same path) is not paginated.
        return Response.json(list_response(self.ctx, req, registered, default_page_size=1000))

    def get_model(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            entity = self.ctx.state.models.get((ns, name))
        if entity is None:
            raise not_found(f"Model '{ns}/{name}'")
        return Response.json(entity)

    def update_model(self, req: Request, ns: str, name: str) -> Response:
        body = req.json_object()
        with self.ctx.state.lock:
            entity = self.ctx.state.models.get((ns, name))
            if entity is None:
                raise not_found(f"Model '{ns}/{name}'")
            entity.update({k: body[k] for k in _MODEL_FIELDS if body.get(k) is not None})
            entity["updated_at"] = self.ctx.iso()
            return Response.json(entity)

    def delete_model(self, req: Request, ns: str, name: str) -> Response:
        with self.ctx.state.lock:
            entity = self.ctx.state.models.pop((ns, name), None)
        if entity is None:
            raise not_found(f"Model '{ns}/{name}'")
        return Response.json(
            {"id": entity["id"], "deleted_at": self.ctx.iso(), "message": "Resource deleted"}
        )


def _with_openai_fields(ctx: Context, model: dict[str, Any]) -> dict[str, Any]:
    created = model.get("created_at")
    epoch = _epoch(created) if created else int(ctx.clock.wall(ctx.now()).timestamp())
    return {
        **model,
        "id": f"{model['namespace']}/{model['name']}",
        "entity_id": model.get("id"),
        "object": "model",
        "created": epoch,
        "owned_by": model["namespace"],
    }


def _epoch(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp())
