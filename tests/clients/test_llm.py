"""ChatClient against a real OpenAI-compatible server on loopback: retries, errors, auth."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from flywheel.clients.llm import ChatClient, LanedTransport
from flywheel.errors import ConfigError, RemoteCallError
from tests.support.openai_server import ScriptedOpenAIServer

API_KEY = "sk-test-SECRET-0123456789"


def _payload(prompt: str = "hello") -> dict:
    return {"model": "test-model", "messages": [{"role": "user", "content": prompt}]}


@pytest.fixture
def server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer({"hello": {"content": "hi there"}}, delays={"slow": 1.0}) as running:
        yield running


def _client(server: ScriptedOpenAIServer, **kwargs: object) -> ChatClient:
    options: dict = {"retry_backoff_s": 0.01, **kwargs}
    return ChatClient(server.base_url, **options)


async def test_chat_returns_response_latency_and_attempts(server: ScriptedOpenAIServer) -> None:
    async with _client(server) as client:
        reply = await client.chat(_payload())
    assert reply.attempts == 1
    assert reply.latency_s > 0
    assert reply.response["choices"][0]["message"]["content"] == "hi there"
    assert reply.response["usage"]["completion_tokens"] == 2
    assert server.requests[0].body == _payload()


async def test_retries_5xx_then_succeeds(server: ScriptedOpenAIServer) -> None:
    server.fail_next(2, status=503)
    async with _client(server, max_retries=3) as client:
        reply = await client.chat(_payload())
    assert reply.attempts == 3
    assert server.count(status=503) == 2
    assert server.count(status=200) == 1


async def test_retries_429_honouring_retry_after(server: ScriptedOpenAIServer) -> None:
    server.fail_next(1, status=429, retry_after=0.6)
    async with _client(server, retry_backoff_s=0.001) as client:
        started = time.perf_counter()
        reply = await client.chat(_payload())
        elapsed = time.perf_counter() - started
    assert reply.attempts == 2
    assert elapsed >= 0.55, "the client must wait as long as Retry-After says"
    assert reply.latency_s < 0.5, "latency is that of the successful attempt only"


async def test_retry_after_is_capped(server: ScriptedOpenAIServer) -> None:
    server.fail_next(1, status=429, retry_after=30)
    async with _client(server, max_retry_after_s=0.1) as client:
        started = time.perf_counter()
        reply = await client.chat(_payload())
    assert reply.attempts == 2
    assert time.perf_counter() - started < 2


async def test_gives_up_after_max_retries_with_retryable_error(
    server: ScriptedOpenAIServer,
) -> None:
    server.fail_next(10, status=500)
    async with _client(server, max_retries=2) as client:
        with pytest.raises(RemoteCallError) as caught:
            await client.chat(_payload())
    error = caught.value
    assert error.retryable is True
    assert error.status_code == 500
    assert f"POST {server.base_url}/chat/completions" in str(error)
    assert "HTTP 500" in str(error)
    assert "after 3 attempts" in str(error)
    assert server.count() == 3


async def test_400_is_not_retried_and_names_the_call_without_the_key(
    server: ScriptedOpenAIServer,
) -> None:
    # The server even echoes the key in its error body: it must still not reach the message.
    server.fail_next(1, status=400, message=f"bad request for key {API_KEY}")
    async with _client(server, api_key=API_KEY, max_retries=3) as client:
        with pytest.raises(RemoteCallError) as caught:
            await client.chat(_payload())
    error = caught.value
    message = str(error)
    assert error.retryable is False
    assert error.status_code == 400
    assert message.startswith(f"POST {server.base_url}/chat/completions")
    assert "HTTP 400" in message
    assert "bad request for key" in message, "a short excerpt of the body"
    assert API_KEY not in message
    assert API_KEY not in repr(error.args)
    assert server.count() == 1


async def test_long_error_body_is_excerpted(server: ScriptedOpenAIServer) -> None:
    server.fail_next(1, status=422, message="x" * 5000)
    async with _client(server) as client:
        with pytest.raises(RemoteCallError) as caught:
            await client.chat(_payload())
    assert len(str(caught.value)) < 500


async def test_timeout_is_retryable(server: ScriptedOpenAIServer) -> None:
    async with _client(server, timeout_s=0.2, max_retries=1) as client:
        started = time.perf_counter()
        with pytest.raises(RemoteCallError) as caught:
            await client.chat(_payload("slow"))
        elapsed = time.perf_counter() - started
    assert caught.value.retryable is True
    assert caught.value.status_code is None
    assert "timed out after 0.2s" in str(caught.value)
    assert "after 2 attempts" in str(caught.value)
    assert elapsed < 0.9


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with ChatClient(
        f"http://127.0.0.1:{port}/v1", max_retries=1, retry_backoff_s=0.01
    ) as client:
        with pytest.raises(RemoteCallError) as caught:
            await client.chat(_payload())
    assert caught.value.retryable is True
    assert "cannot reach the endpoint" in str(caught.value)
    assert f"POST http://127.0.0.1:{port}/v1/chat/completions" in str(caught.value)


async def test_authorization_header_only_with_a_key(server: ScriptedOpenAIServer) -> None:
    async with _client(server) as client:
        await client.chat(_payload())
    async with _client(server, api_key=API_KEY) as client:
        await client.chat(_payload())
    without, with_key = server.requests
    assert "authorization" not in without.headers
    assert with_key.headers["authorization"] == f"Bearer {API_KEY}"


async def test_wrong_key_is_rejected_without_leaking_it() -> None:
    with ScriptedOpenAIServer(required_api_key="right-key") as server:
        async with ChatClient(server.base_url, api_key=API_KEY) as client:
            with pytest.raises(RemoteCallError) as caught:
                await client.chat(_payload())
        async with ChatClient(server.base_url, api_key="right-key") as client:
            reply = await client.chat(_payload())
    assert caught.value.status_code == 401
    assert caught.value.retryable is False
    assert API_KEY not in str(caught.value)
    assert reply.attempts == 1


async def test_list_models(server: ScriptedOpenAIServer) -> None:
    async with _client(server) as client:
        assert await client.list_models() == ["test-model"]


async def test_base_url_trailing_slash_and_bad_scheme(server: ScriptedOpenAIServer) -> None:
    async with ChatClient(server.base_url + "/") as client:
        await client.chat(_payload())
    assert server.requests[-1].path == "/v1/chat/completions"
    with pytest.raises(ConfigError):
        ChatClient("localhost:8000/v1")


async def test_pool_serves_max_connections_in_parallel() -> None:
    with ScriptedOpenAIServer({}, delay_s=0.2) as server:
        async with ChatClient(server.base_url, max_connections=32) as client:
            started = time.perf_counter()
            await asyncio.gather(*(client.chat(_payload(f"p{i}")) for i in range(32)))
            wide = time.perf_counter() - started
        async with ChatClient(server.base_url, max_connections=3) as client:
            started = time.perf_counter()
            await asyncio.gather(*(client.chat(_payload(f"p{i}")) for i in range(6)))
            narrow = time.perf_counter() - started
    assert wide < 1.0, f"32 requests of 0.2 s on 32 connections took {wide:.2f} s"
    assert narrow >= 0.38, "3 connections serve 6 requests in two waves"
    assert server.count() == 38


def test_laned_transport_splits_exactly() -> None:
    for connections in (1, 3, 4, 10, 64, 127):
        assert LanedTransport(connections).max_connections == connections


async def test_scripted_server_callable_scripts() -> None:
    def by_key(key: str) -> dict | None:
        return {"content": key.upper()} if key.startswith("echo") else None

    def by_body(key: str, body: dict) -> dict:
        return {"tool_calls": [{"name": "lookup", "arguments": {"model": body["model"]}}]}

    with ScriptedOpenAIServer(by_key, default={"content": "default"}) as server:
        async with ChatClient(server.base_url) as client:
            echoed = await client.chat(_payload("echo me"))
            other = await client.chat(_payload("what"))
    assert echoed.response["choices"][0]["message"]["content"] == "ECHO ME"
    assert other.response["choices"][0]["message"]["content"] == "default"

    with ScriptedOpenAIServer(by_body) as server:
        async with ChatClient(server.base_url) as client:
            reply = await client.chat(_payload("anything"))
    choice = reply.response["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "lookup", "arguments": '{"model":"test-model"}'}
    assert set(reply.response) >= {"id", "object", "created", "model", "choices", "usage"}
    assert reply.response["usage"]["total_tokens"] == 1 + 1


# --- the lean HTTP/1.1 pool ------------------------------------------------------------------


async def _raw_server(responses: list[bytes], close_after_each: bool = False):  # type: ignore[no-untyped-def]
    """A loopback server answering request n (over all connections) with ``responses[n]``."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(responses[min(len(served), len(responses) - 1)])
                served.append(1)
                await writer.drain()
                if close_after_each:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, served


BODY = b'{"choices": [{"message": {"role": "assistant", "content": "ok"}}]}'


async def test_chunked_and_connection_close_responses() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % 10
        + BODY[:10]
        + b"\r\n"
        + b"%x\r\n" % (len(BODY) - 10)
        + BODY[10:]
        + b"\r\n0\r\n\r\n"
    )
    until_eof = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY
    server, served = await _raw_server([chunked, until_eof, chunked], close_after_each=True)
    async with server:
        port = server.sockets[0].getsockname()[1]
        async with ChatClient(f"http://127.0.0.1:{port}/v1", max_retries=0) as client:
            for _ in range(3):
                reply = await client.chat(_payload())
                assert reply.response["choices"][0]["message"]["content"] == "ok"
    assert len(served) == 3


async def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
    server, served = await _raw_server([response], close_after_each=True)
    async with server:
        port = server.sockets[0].getsockname()[1]
        async with ChatClient(f"http://127.0.0.1:{port}/v1", max_retries=0) as client:
            await client.chat(_payload())
            await asyncio.sleep(0.05)  # the server has closed the kept-alive connection
            reply = await client.chat(_payload())
    assert reply.attempts == 1, "a stale keep-alive connection is not a failed attempt"
    assert len(served) == 2


async def test_malformed_response_is_a_retryable_error() -> None:
    server, _ = await _raw_server([b"garbage\r\n\r\n"])
    async with server:
        port = server.sockets[0].getsockname()[1]
        async with ChatClient(f"http://127.0.0.1:{port}/v1", max_retries=0) as client:
            with pytest.raises(RemoteCallError) as caught:
                await client.chat(_payload())
    assert caught.value.retryable is True
    assert "malformed HTTP response" in str(caught.value)


async def test_environment_proxy_uses_httpx(
    server: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "")
    client = ChatClient("http://models.example/v1")
    assert client._http is not None and client._pool is None
    await client.aclose()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with _client(server) as direct:
        assert direct._pool is not None
        await direct.chat(_payload())
