"""One connection to a NeMo Microservices (NMP) installation, shared by the thin service clients.

It holds the SDK client (platform services on ``nemo_base_url``, NIM on ``nim_base_url``), the
Data Store's Hugging Face API, the namespace, the retry policy and the secrets to mask. The SDK's
own retries are off (``max_retries=0``): the SDK would repeat a create whose reply was lost and
make a second job; here reads and deletes are retried by :class:`RetryPolicy`, and creates go
through :meth:`NemoConnection.ensure`, which looks up what exists before trying again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import httpx
from nemo_microservices import AsyncNeMoMicroservices

from flywheel.clients.closing import AsyncClosing
from flywheel.clients.nemo.errors import RetryPolicy, is_status
from flywheel.clients.retries import backoff_delay, status_error
from flywheel.config import NMPConfig, read_secret
from flywheel.errors import ConfigError, RemoteCallError

__all__ = ["NemoConnection", "nim_root", "nim_v1"]

T = TypeVar("T")

PAGE_SIZE = 100
SDK_LOGGER = "nemo_microservices._base_client"
"""The SDK logs every request's options, body included, at DEBUG: masked by :class:`SecretMask`."""
_NAMESPACE_EXISTS = (409, 422)
"""The Data Store answers an existing namespace with 409 (some versions 422)."""


class SecretMask(logging.Filter):
    """Masks known secrets in a library logger's records (the SDK's DEBUG lines print request
    bodies, and a judge's API key travels in an evaluation job's body)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            masked = message
            for secret in self.secrets:
                masked = masked.replace(secret, "***")
            if masked != message:
                record.msg, record.args = masked, None
        return True


def _root(url: str) -> str:
    return url.strip().rstrip("/")


def nim_root(config: NMPConfig) -> str:
    """The NIM's root URL (the SDK's ``inference_base_url``; it adds ``/v1/...`` itself)."""
    return _root(config.nim_base_url).removesuffix("/v1")


def nim_v1(config: NMPConfig) -> str:
    """The NIM's OpenAI-compatible base URL (``…/v1``), for chat clients."""
    return f"{nim_root(config)}/v1"


class NemoConnection(AsyncClosing):
    """The SDK client, the Data Store and the retry policy for one ``nmp_config``."""

    def __init__(self, config: NMPConfig, *, api_key: str | None, hf_token: str | None) -> None:
        from huggingface_hub import HfApi

        self.config = config
        self.namespace = config.nmp_namespace
        self.api_key = api_key
        self.policy = RetryPolicy(
            max_retries=config.max_retries,
            backoff_s=config.retry_backoff_s,
            secrets=tuple(s for s in (api_key, hf_token) if s),
        )
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self.sdk = AsyncNeMoMicroservices(
            base_url=_root(config.nemo_base_url),
            inference_base_url=nim_root(config),
            timeout=config.request_timeout_s,
            max_retries=0,  # see the module docstring: creates are retried by `ensure`
            default_headers=headers,
        )
        datastore = _root(config.datastore_base_url)
        # token=False, not None: None would send a token found in the worker's HF cache.
        self.hf = HfApi(endpoint=f"{datastore}/v1/hf", token=hf_token or False)
        self._datastore = httpx.AsyncClient(
            base_url=datastore,
            timeout=config.request_timeout_s,
            headers={"Authorization": f"Bearer {hf_token}"} if hf_token else None,
        )
        self._namespaces_ready: set[str] = set()
        self._namespace_lock = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._mask = SecretMask()
        self._mask.secrets.update(self.policy.secrets)
        logging.getLogger(SDK_LOGGER).addFilter(self._mask)

    @classmethod
    def from_config(cls, config: NMPConfig) -> NemoConnection:
        """A connection with its secrets read from the environment variables ``config`` names."""
        api_key = read_secret(config.api_key_env)
        if config.api_key_env and api_key is None:
            raise ConfigError(
                f"nmp_config names api_key_env {config.api_key_env}, but that environment "
                "variable is not set on the worker: set it where the worker runs"
            )
        return cls(config, api_key=api_key, hf_token=read_secret(config.hf_token_env))

    async def aclose(self) -> None:
        logging.getLogger(SDK_LOGGER).removeFilter(self._mask)
        await self.sdk.close()
        await self._datastore.aclose()

    # --- calls ---

    async def call(
        self,
        what: str,
        fn: Callable[[], Awaitable[T]],
        *,
        retry: bool = True,
        secrets: tuple[str, ...] = (),
    ) -> T:
        """Await ``fn()`` under the retry policy (see :class:`RetryPolicy`); ``secrets`` are
        masked in its errors besides the connection's own (a judge key sent in a body)."""
        policy = self.policy
        extra = tuple(s for s in secrets if s)
        if extra:
            self._mask.secrets.update(extra)
            policy = replace(policy, secrets=policy.secrets + extra)
        return await policy.run(what, fn, retry=retry)

    async def call_sync(self, what: str, fn: Callable[[], T]) -> T:
        """Run blocking ``fn()`` (``huggingface_hub``) in a thread under the retry policy."""
        return await self.policy.run_sync(what, fn)

    async def find(self, what: str, fn: Callable[[], Awaitable[T]]) -> T | None:
        """``fn()``'s result, or None when the object does not exist (404)."""
        try:
            return await self.call(what, fn)
        except RemoteCallError as exc:
            if is_status(exc, 404):
                return None
            raise

    async def delete(self, what: str, fn: Callable[[], Awaitable[Any]]) -> bool:
        """Delete with ``fn()``; True if something was deleted, False if it was gone (404)."""
        try:
            await self.call(what, fn)
        except RemoteCallError as exc:
            if is_status(exc, 404):
                return False
            raise
        return True

    async def ensure(
        self,
        what: str,
        find: Callable[[], Awaitable[T | None]],
        create: Callable[[], Awaitable[T]],
        *,
        secrets: tuple[str, ...] = (),
    ) -> tuple[T, bool]:
        """The object ``find()`` returns, or else the one ``create()`` makes: ``(it, created)``.

        A create is never repeated blindly: after a 409 (someone else made it) or a retryable
        failure (the reply may have been lost after the object was made), ``find()`` runs again
        first. So concurrent callers and retried attempts end up with one object.
        """
        attempt = 0
        while True:
            attempt += 1
            found = await find()
            if found is not None:
                return found, False
            try:
                return await self.call(what, create, retry=False, secrets=secrets), True
            except RemoteCallError as exc:
                conflict = exc.status_code == 409
                if not (conflict or exc.retryable) or attempt > self.policy.max_retries:
                    raise
                if not conflict:
                    await asyncio.sleep(
                        backoff_delay(
                            attempt, None, backoff_s=self.policy.backoff_s, max_delay_s=15
                        )
                    )

    async def all_pages(self, what: str, pages: Callable[[], AsyncIterator[T]]) -> list[T]:
        """Every item of a paginated list (``pages()`` makes a fresh SDK paginator per try)."""

        async def collect() -> list[T]:
            return [item async for item in pages()]

        return await self.call(what, collect)

    def lock(self, key: str) -> asyncio.Lock:
        """A lock per key, so concurrent steps of one worker do not publish the same thing twice."""
        return self._locks.setdefault(key, asyncio.Lock())

    # --- shared pieces ---

    async def ensure_namespace(self) -> None:
        """The namespace in the Entity Store (checked once per connection)."""
        async with self._namespace_lock:
            if "entity" in self._namespaces_ready:
                return
            await self.ensure(
                f"Entity Store namespace create ({self.namespace})",
                lambda: self.find(
                    "Entity Store namespace lookup",
                    lambda: self.sdk.namespaces.retrieve(self.namespace),
                ),
                lambda: self.sdk.namespaces.create(id=self.namespace),
            )
            self._namespaces_ready.add("entity")

    async def ensure_datastore_namespace(self) -> None:
        """The namespace in the Data Store too (only steps that upload need it)."""
        await self.ensure_namespace()
        what = f"Data Store namespace create ({self.namespace})"

        async def create() -> None:
            response = await self._datastore.post(
                "/v1/datastore/namespaces", data={"namespace": self.namespace}
            )
            if response.status_code < 300 or response.status_code in _NAMESPACE_EXISTS:
                return
            raise status_error(what, response.status_code, response.content, secret=None, attempt=1)

        async with self._namespace_lock:
            if "datastore" not in self._namespaces_ready:
                await self.call(what, create)
                self._namespaces_ready.add("datastore")

    async def served_models(self) -> set[str]:
        """The model ids the NIM lists on ``/v1/models`` now."""
        listing = await self.call("NIM model list", self.sdk.inference.models.list)
        return {model.id for model in listing.data or [] if getattr(model, "id", None)}

    async def wait_until_served(
        self,
        model: str,
        *,
        deadline: float,
        poll_s: float,
        on_wait: Callable[[], None],
        what: str,
    ) -> None:
        """Poll the NIM's ``/v1/models`` until it lists ``model`` (``on_wait`` each round).

        Raises a non-retryable RemoteCallError naming ``what`` when ``deadline`` (monotonic)
        passes first.
        """
        while model not in await self.served_models():
            if time.monotonic() >= deadline:
                raise RemoteCallError(
                    f"{what}: the NIM at {nim_root(self.config)} did not list {model} on "
                    "/v1/models in time",
                    retryable=False,
                )
            on_wait()
            await asyncio.sleep(poll_s)
