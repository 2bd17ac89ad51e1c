"""A fast OpenAI-compatible loopback server with a fixed latency, for throughput benchmarks.

:class:`~tests.support.openai_server.ScriptedOpenAIServer` runs a thread per connection and
builds every reply, which is what tests want but too slow to tell a client's overhead apart from
the server's at thousands of requests per second. This one is a bare ``asyncio.Protocol``: it
parses just enough HTTP/1.1 (request line, ``Content-Length``, keep-alive), never decodes the
body, and answers every ``POST …/chat/completions`` with the same small, valid
``chat.completion`` holding one tool call, ``latency_s`` after the request arrived (a timer, no
work in between). ``GET …/models`` lists one model. Run it in its own process so that its CPU
time is not the client's:

    python -m tests.support.fast_openai_server --latency-s 0.05   # prints the port, then serves

or, from async code, ``async with fast_server_process(0.05) as base_url: ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator

import orjson

MODEL = "bench-model"

_COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_0",
                            "type": "function",
                            "function": {
                                "name": "get_order_status",
                                "arguments": '{"order_id": "ORD-10001"}',
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132},
    }
)
_MODELS = orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]})


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


_OK_COMPLETION = _response("200 OK", _COMPLETION)
_OK_MODELS = _response("200 OK", _MODELS)
_NOT_FOUND = _response("404 Not Found", b'{"error": {"message": "not found"}}')
_BAD_REQUEST = _response("400 Bad Request", b'{"error": {"message": "bad request"}}')


class _Connection(asyncio.Protocol):
    """One keep-alive connection: answers each complete request after the fixed latency."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return  # wait for the rest of the body
            self.buffer = self.buffer[end + 4 + length :]
            self.loop.call_later(self.latency_s, self._send, _route(head))

    def _send(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)


def _route(head: bytes) -> bytes:
    """The canned response for a request head (request line + headers)."""
    parts = head.split(b" ", 2)
    if len(parts) < 3:
        return _BAD_REQUEST
    method, target = parts[0], parts[1].split(b"?", 1)[0]
    if method == b"POST" and target.endswith(b"/chat/completions"):
        return _OK_COMPLETION
    if method == b"GET" and target.endswith(b"/models"):
        return _OK_MODELS
    return _NOT_FOUND


async def serve(latency_s: float, port: int = 0) -> None:
    """Serve on 127.0.0.1 until cancelled or SIGTERM; print the bound port first (one line)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(latency_s), "127.0.0.1", port, backlog=4096
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await stop.wait()


@contextlib.asynccontextmanager
async def fast_server_process(latency_s: float) -> AsyncIterator[str]:
    """Run the server in a child process; yield its base URL (``http://127.0.0.1:PORT/v1``)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.fast_openai_server",
        "--latency-s",
        str(latency_s),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        if not line.strip().isdigit():
            raise RuntimeError(
                "the fast OpenAI server did not start (no port on its stdout): run "
                "`python -m tests.support.fast_openai_server` to see why"
            )
        yield f"http://127.0.0.1:{int(line)}/v1"
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-s", type=float, default=0.05)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.latency_s, args.port))
