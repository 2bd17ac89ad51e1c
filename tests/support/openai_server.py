"""A scripted OpenAI-compatible server on loopback, for tests and benchmarks.

Real HTTP (stdlib ``ThreadingHTTPServer``, one daemon thread per connection, HTTP/1.1
keep-alive), so clients are exercised exactly as against vLLM or a NIM. Replies are chosen by the
content of the last user message; faults (5xx, 429 with Retry-After) and delays can be injected.
Handler threads share nothing but a short lock around the request log and fault counters, so
concurrent requests are served truly in parallel.
"""

from __future__ import annotations

import inspect
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson

from tests.support.loopback import LoopbackHTTPServer

Message = dict[str, Any]
Script = (
    Mapping[str, Message]
    | Callable[[str], Message | None]
    | Callable[[str, dict[str, Any]], Message | None]
)
"""Last user message content → reply message (``content`` and/or ``tool_calls``).

A callable takes the key, or the key and the request body; None means "the default reply".
"""

DEFAULT_REPLY: Message = {"content": "I don't know."}


def token_count(text: str) -> int:
    """The server's token count: whitespace-separated words (deterministic, for assertions)."""
    return len(text.split())


def last_user_content(body: Mapping[str, Any]) -> str:
    """Content of the last ``user`` message of a chat request ('' when there is none)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else orjson.dumps(content).decode()
    return ""


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server received."""

    time: float
    path: str
    key: str | None
    status: int
    model: str | None
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    remaining: int
    status: int
    retry_after: float | None
    message: str | None = None


class ScriptedOpenAIServer(LoopbackHTTPServer):
    """Serves ``POST /v1/chat/completions`` and ``GET /v1/models`` with scripted replies."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        default: Message | None = None,
        delay_s: float = 0.0,
        delays: Mapping[str, float] | None = None,
        models: tuple[str, ...] = ("test-model",),
        required_api_key: str | None = None,
    ) -> None:
        super().__init__()
        self.script: Script = script if script is not None else {}
        self._script_takes_body = callable(script) and _positional_arity(script) >= 2
        self.default: Message = default if default is not None else dict(DEFAULT_REPLY)
        self.delay_s = delay_s
        self.delays: dict[str, float] = dict(delays or {})
        self.models = models
        self.required_api_key = required_api_key
        self._lock = threading.Lock()
        self._log: list[LoggedRequest] = []
        self._next_faults: list[_Fault] = []
        self._key_faults: dict[str, _Fault] = {}
        self._ids = itertools.count(1)

    # --- fault injection ---

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        *,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """The next ``n`` chat requests (whatever their prompt) fail with ``status``.

        ``retry_after`` adds a ``Retry-After`` header (seconds); ``message`` replaces the error
        message in the body.
        """
        with self._lock:
            self._next_faults.append(_Fault(n, status, retry_after, message))

    def fail_key(
        self,
        key: str,
        n: int = 1,
        status: int = 500,
        *,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """The next ``n`` chat requests whose last user message is ``key`` fail with ``status``."""
        with self._lock:
            self._key_faults[key] = _Fault(n, status, retry_after, message)

    # --- the request log ---

    @property
    def requests(self) -> list[LoggedRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._log)

    def count(self, key: str | None = None, *, status: int | None = None) -> int:
        """Chat requests received (for ``key`` only, if given; with ``status``, if given)."""
        return sum(
            1
            for r in self.requests
            if r.path.endswith("/chat/completions")
            and (key is None or r.key == key)
            and (status is None or r.status == status)
        )

    def keys(self) -> list[str]:
        """The keys (last user messages) of the chat requests, in arrival order."""
        return [r.key for r in self.requests if r.key is not None]

    def clear(self) -> None:
        with self._lock:
            self._log.clear()

    # --- handling ---

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = handler.path.split("?", 1)[0].rstrip("/")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        raw = b""
        length = int(headers.get("content-length") or 0)
        if length:
            raw = handler.rfile.read(length)

        if self.required_api_key is not None and (
            headers.get("authorization") != f"Bearer {self.required_api_key}"
        ):
            self._respond(handler, path, None, None, headers, 401, _error(401, "invalid API key"))
            return

        if method == "GET" and path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "scripted"}
                for m in self.models
            ]
            self._respond(handler, path, None, None, headers, 200, {"object": "list", "data": data})
            return
        if method != "POST" or path != "/v1/chat/completions":
            self._respond(handler, path, None, None, headers, 404, _error(404, "not found"))
            return

        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self._respond(handler, path, None, None, headers, 400, _error(400, "invalid JSON"))
            return
        key = last_user_content(body)

        delay = self.delays.get(key, self.delay_s)
        if delay > 0:
            time.sleep(delay)

        fault = self._take_fault(key)
        if fault is not None:
            extra = {}
            if fault.retry_after is not None:
                extra["Retry-After"] = f"{fault.retry_after:g}"
            error = _error(fault.status, fault.message or f"injected failure {fault.status}")
            self._respond(handler, path, key, body, headers, fault.status, error, extra)
            return

        message = self._reply_for(key, body)
        self._respond(handler, path, key, body, headers, 200, self._completion(body, message))

    def _take_fault(self, key: str) -> _Fault | None:
        with self._lock:
            fault = self._key_faults.get(key)
            if fault is None or fault.remaining <= 0:
                fault = next((f for f in self._next_faults if f.remaining > 0), None)
            if fault is None:
                return None
            fault.remaining -= 1
            return fault

    def _reply_for(self, key: str, body: dict[str, Any]) -> Message:
        if callable(self.script):
            reply = self.script(key, body) if self._script_takes_body else self.script(key)
        else:
            reply = self.script.get(key)
        return reply if reply is not None else self.default

    def _completion(self, body: dict[str, Any], reply: Message) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.get("content")}
        tool_calls = [
            _tool_call(call, f"call_{next(self._ids)}") for call in reply.get("tool_calls") or []
        ]
        if tool_calls:
            message["tool_calls"] = tool_calls
        prompt_tokens = sum(
            token_count(m["content"])
            for m in body.get("messages") or []
            if isinstance(m, dict) and isinstance(m.get("content"), str)
        )
        completion_tokens = token_count(message["content"] or "") + sum(
            token_count(c["function"]["arguments"]) for c in tool_calls
        )
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": reply.get("finish_reason")
                    or ("tool_calls" if tool_calls else "stop"),
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _respond(
        self,
        handler: BaseHTTPRequestHandler,
        path: str,
        key: str | None,
        body: dict[str, Any] | None,
        headers: dict[str, str],
        status: int,
        payload: Any,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        data = orjson.dumps(payload)
        model = body.get("model") if body else None
        entry = LoggedRequest(time.time(), path, key, status, model, body, headers)
        with self._lock:
            self._log.append(entry)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (extra_headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


def _tool_call(call: Mapping[str, Any], call_id: str) -> dict[str, Any]:
    """A tool call in OpenAI's shape; ``{"name", "arguments"}`` shorthand accepted.

    Arguments given as a dict are sent as a JSON string (as OpenAI does); strings verbatim.
    """
    function = call.get("function", call)
    arguments = function.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments).decode()
    return {
        "id": call.get("id", call_id),
        "type": "function",
        "function": {"name": function["name"], "arguments": arguments},
    }


def _positional_arity(function: Callable[..., Any]) -> int:
    """How many positional arguments ``function`` accepts (a large number for ``*args``)."""
    count = 0
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return 1 << 16
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            count += 1
    return count


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "scripted_error", "code": status}}
