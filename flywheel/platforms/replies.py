"""What the built-in evaluator sends and gets back: the replayed chat request and a Reply."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flywheel.clients.llm import ChatClient
from flywheel.config import EvaluationConfig
from flywheel.errors import RemoteCallError

DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True)
class Reply:
    """The candidate's answer to one eval record (or why there is none)."""

    index: int
    ok: bool
    message: dict[str, Any] | None
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    latency_s: float
    error: str | None
    ttft_s: float | None = None
    """Time to the first token, when the reply was streamed."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (one checkpoint line).

        Shares ``message`` with the Reply rather than deep-copying it as ``dataclasses.asdict``
        would (that copy was a tenth of the evaluator's CPU time at high concurrency).
        """
        return {
            "index": self.index,
            "ok": self.ok,
            "message": self.message,
            "finish_reason": self.finish_reason,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "latency_s": self.latency_s,
            "error": self.error,
            "ttft_s": self.ttft_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reply:
        """Inverse of :meth:`to_json`; tolerant of missing optional fields."""
        return cls(
            index=int(data["index"]),
            ok=bool(data["ok"]),
            message=data.get("message"),
            finish_reason=data.get("finish_reason"),
            tokens_in=int(data.get("tokens_in") or 0),
            tokens_out=int(data.get("tokens_out") or 0),
            latency_s=float(data.get("latency_s") or 0.0),
            error=data.get("error"),
            ttft_s=float(data["ttft_s"]) if data.get("ttft_s") is not None else None,
        )

    @classmethod
    def failed(cls, index: int, error: str, latency_s: float = 0.0) -> Reply:
        """A request that got no usable answer."""
        return cls(index, False, None, None, 0, 0, latency_s, error)


class Responder(Protocol):
    """Answers chat requests: HTTP endpoints one by one (``batch_size`` 1, ``concurrency`` N);
    a local model in batches (``batch_size`` B, ``concurrency`` 1)."""

    batch_size: int
    concurrency: int

    async def answer(self, requests: list[tuple[int, dict[str, Any]]]) -> list[Reply]:
        """One Reply per ``(index, chat request)``; failures are failed Replies, not errors."""
        ...


class HttpResponder:
    """A :class:`Responder` over an OpenAI-compatible endpoint (one request per call)."""

    batch_size = 1

    def __init__(self, client: ChatClient, concurrency: int) -> None:
        self.client = client
        self.concurrency = max(1, concurrency)

    async def answer(self, requests: list[tuple[int, dict[str, Any]]]) -> list[Reply]:
        return [await self._one(index, payload) for index, payload in requests]

    async def _one(self, index: int, payload: dict[str, Any]) -> Reply:
        started = time.perf_counter()
        try:
            reply = await self.client.chat(payload)
        except RemoteCallError as exc:
            return Reply.failed(index, str(exc), time.perf_counter() - started)
        return reply_from_response(index, reply.response, reply.latency_s)


def reply_from_response(index: int, response: Mapping[str, Any], latency_s: float) -> Reply:
    """A Reply from an OpenAI chat-completion body (failed when it holds no message)."""
    choices = response.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, Mapping) else None
    if not isinstance(message, dict):
        return Reply.failed(index, "the response has no choices[0].message", latency_s)
    usage = response.get("usage")
    usage = usage if isinstance(usage, Mapping) else {}
    return Reply(
        index=index,
        ok=True,
        message=message,
        finish_reason=choice.get("finish_reason") if isinstance(choice, Mapping) else None,
        tokens_in=int(usage.get("prompt_tokens") or 0),
        tokens_out=int(usage.get("completion_tokens") or 0),
        latency_s=latency_s,
        error=None,
    )


def build_chat_request(
    record: Mapping[str, Any], model: str, config: EvaluationConfig
) -> dict[str, Any]:
    """The chat request replaying ``record``'s logged request against ``model``.

    Keeps the logged ``tools`` and ``tool_choice`` (never forces ``"required"``: the candidate
    must also decide *when* to call a tool); sampling settings come from ``config`` first.
    """
    logged = record.get("request") or {}
    payload: dict[str, Any] = {"model": model, "messages": logged.get("messages") or []}
    tools = logged.get("tools")
    if tools:
        payload["tools"] = tools
        if logged.get("tool_choice") is not None:
            payload["tool_choice"] = logged["tool_choice"]
    temperature = (
        config.temperature if config.temperature is not None else logged.get("temperature")
    )
    if temperature is not None:
        payload["temperature"] = temperature
    payload["max_tokens"] = (
        config.max_tokens
        or logged.get("max_tokens")
        or logged.get("max_completion_tokens")
        or DEFAULT_MAX_TOKENS
    )
    return payload
