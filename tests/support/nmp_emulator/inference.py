"""The NIM surface: ``/v1/models``, ``/v1/chat/completions``, ``/v1/embeddings``.

Served models are: ``EmulatorConfig.static_models``, the models of every *ready* deployment, and
the output model of every completed customization job once ``Durations.model_sync`` has passed
(while its Entity Store record exists and, with ``lora_requires_base_deployment``, while its base
model is deployed). Chat replies come from a pluggable responder; embeddings are deterministic
hash-based unit vectors. Token counts are whitespace word counts.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

import orjson

from tests.support.nmp_emulator.config import Message, Responder
from tests.support.nmp_emulator.deployments import deployment_status
from tests.support.nmp_emulator.http import HTTPError, Request, Response, Router
from tests.support.nmp_emulator.state import Context, progress


def served_models(ctx: Context, now: float) -> list[str]:
    """Model ids the NIM answers for at ``now`` (call under the state lock, after ``tick``)."""
    state = ctx.state
    served: dict[str, None] = dict.fromkeys(ctx.config.static_models)
    for dep in state.deployments.values():
        if deployment_status(dep, now)[0] == "ready":
            served.update(dict.fromkeys(dep.models))
    for job in state.customization_jobs.values():
        if job.completed_at is None or progress(now - job.completed_at, job.sync_s) < 1.0:
            continue
        ns, _, name = job.output_model.partition("/")
        if (ns, name) not in state.models:
            continue
        if (
            ctx.config.lora_requires_base_deployment
            and job.base_model is not None
            and job.base_model not in served
        ):
            continue
        served[job.output_model] = None
    return list(served)


def token_count(text: str) -> int:
    return len(text.split())


def last_user_content(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else orjson.dumps(content).decode()
    return ""


def default_responder(body: dict[str, Any]) -> Message:
    """A call to the first tool (empty arguments) when tools are given, else an echo."""
    tools = body.get("tools") or []
    if tools and isinstance(tools[0], Mapping):
        function = tools[0].get("function") or {}
        call = {"name": function.get("name", "tool"), "arguments": {}}
        return {"content": None, "tool_calls": [call]}
    return {"content": f"echo: {last_user_content(body)}"}


def normalise_message(reply: Mapping[str, Any], ids: itertools.count[int]) -> Message:
    """A responder's reply in OpenAI's assistant-message shape (arguments as JSON strings)."""
    message: Message = {"role": "assistant", "content": reply.get("content")}
    calls = []
    for call in reply.get("tool_calls") or []:
        function = call.get("function", call)
        arguments = function.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        calls.append(
            {
                "id": call.get("id") or f"chatcmpl-tool-{next(ids)}",
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }
        )
    if calls:
        message["tool_calls"] = calls
    return message


def embedding(text: str, dims: int) -> list[float]:
    """A deterministic unit vector for ``text``."""
    raw: list[float] = []
    counter = 0
    while len(raw) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        raw.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    vector = raw[:dims]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def nim_error(status: int, message: str, kind: str) -> HTTPError:
    return HTTPError(
        status,
        message,
        payload={
            "object": "error",
            "message": message,
            "type": kind,
            "param": None,
            "code": status,
        },
    )


class InferenceService:
    def __init__(self, ctx: Context, responder: Responder | None) -> None:
        self.ctx = ctx
        self._responder = responder or default_responder
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    @property
    def responder(self) -> Responder:
        with self._lock:
            return self._responder

    @responder.setter
    def responder(self, value: Responder | None) -> None:
        with self._lock:
            self._responder = value or default_responder

    def register(self, router: Router, *, with_models: bool) -> None:
        router.add("POST", "/v1/chat/completions", self.chat)
        router.add("POST", "/v1/embeddings", self.embeddings)
        router.add("GET", "/v1/health/ready", self.health)
        router.add("GET", "/v1/health/live", self.health)
        if with_models:
            router.add("GET", "/v1/models", self.list_models)

    def respond(self, body: dict[str, Any]) -> Message:
        """The normalised assistant message the responder gives for a chat request body."""
        reply = self.responder(body)
        if reply is None:
            reply = default_responder(body)
        return normalise_message(reply, self._ids)

    def check_auth(self, req: Request) -> None:
        key = self.ctx.config.inference_api_key
        if key is not None and req.headers.get("authorization") != f"Bearer {key}":
            raise nim_error(401, "invalid or missing API key", "AuthenticationError")

    def _require_served(self, model: Any) -> str:
        if not isinstance(model, str) or not model:
            raise nim_error(400, "'model' is required", "BadRequestError")
        with self.ctx.state.lock:
            served = served_models(self.ctx, self.ctx.now())
        if model not in served:
            raise nim_error(404, f"The model `{model}` does not exist.", "NotFoundError")
        return model

    def health(self, req: Request) -> Response:
        return Response.json({"object": "health.response", "message": "Service is ready."})

    def list_models(self, req: Request) -> Response:
        self.check_auth(req)
        now = self.ctx.now()
        with self.ctx.state.lock:
            served = served_models(self.ctx, now)
            parents = {
                j.output_model: j.base_model for j in self.ctx.state.customization_jobs.values()
            }
        created = int(self.ctx.clock.wall(now).timestamp())
        data = [
            {
                "id": model,
                "object": "model",
                "created": created,
                "owned_by": "system",
                "root": model,
                "parent": parents.get(model),
            }
            for model in served
        ]
        return Response.json({"object": "list", "data": data})

    def chat(self, req: Request) -> Response:
        self.check_auth(req)
        body = req.json_object()
        model = self._require_served(body.get("model"))
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise nim_error(400, "'messages' must be a non-empty list", "BadRequestError")
        if body.get("stream"):
            raise nim_error(400, "streaming is not emulated", "BadRequestError")
        message = self.respond(body)
        calls = message.get("tool_calls") or []
        prompt = sum(
            token_count(m["content"])
            for m in body["messages"]
            if isinstance(m, Mapping) and isinstance(m.get("content"), str)
        )
        completion = token_count(message.get("content") or "") + sum(
            token_count(c["function"]["arguments"]) for c in calls
        )
        return Response.json(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if calls else "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        )

    def embeddings(self, req: Request) -> Response:
        self.check_auth(req)
        body = req.json_object()
        model = self._require_served(body.get("model"))
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            raise nim_error(400, "'input' must be a string or a list of strings", "BadRequestError")
        dims = int(body.get("dimensions") or self.ctx.config.embedding_dim)
        data = [
            {"object": "embedding", "index": i, "embedding": embedding(text, dims)}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(token_count(t) for t in inputs)
        return Response.json(
            {
                "object": "list",
                "model": model,
                "data": data,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )
