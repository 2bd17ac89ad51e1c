"""What a worker's activities share: settings, stores, artifact storage and model platforms.

Opened lazily on first use and closed once when the worker stops; tests can pass their own
platforms (for example a recording one) without touching module state.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor

from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.embeddings import Embedder, EmbedderCache, open_embedder
from flywheel.clients.logstore import LogStore, open_log_store
from flywheel.clients.process_pool import process_pool
from flywheel.clients.results import ResultStore, open_result_store
from flywheel.config import Platform, RunConfig, Settings, read_secret
from flywheel.curation.scan import ScanSettings, scan_batch
from flywheel.errors import UnsupportedOperation
from flywheel.platforms import build_platforms
from flywheel.platforms.base import ModelPlatform


class WorkerResources:
    """Long-lived clients used by activities, one set per worker process."""

    def __init__(
        self, settings: Settings, *, platforms: Mapping[Platform, ModelPlatform] | None = None
    ) -> None:
        self.settings = settings
        assert settings.artifact_store_uri is not None
        self.artifacts = ArtifactStore(settings.artifact_store_uri)
        self._platforms = (
            dict(platforms) if platforms is not None else build_platforms(settings, self.artifacts)
        )
        self._log_store: LogStore | None = None
        self._result_store: ResultStore | None = None
        self._embedders = EmbedderCache()
        self._curation_pool: ProcessPoolExecutor | None = None
        self._lock = asyncio.Lock()

    async def log_store(self) -> LogStore:
        async with self._lock:
            if self._log_store is None:
                assert self.settings.log_store_url is not None
                self._log_store = open_log_store(
                    self.settings.log_store_url,
                    api_key=read_secret(self.settings.log_store_api_key_env),
                )
            return self._log_store

    async def result_store(self) -> ResultStore:
        async with self._lock:
            if self._result_store is None:
                assert self.settings.result_store_url is not None
                self._result_store = open_result_store(
                    self.settings.result_store_url, mongodb_db=self.settings.mongodb_db
                )
            return self._result_store

    def embedder_factory(self, config: RunConfig) -> Callable[[], Embedder] | None:
        """How to open the embedder for a run's semantic ICL (None when the run has none).

        In-process models are loaded once per worker and shared between runs.
        """
        similarity = config.icl_config.similarity_config
        if similarity is None or similarity.embedding_nim_config is None:
            return None
        embedding = similarity.embedding_nim_config
        return lambda: open_embedder(
            embedding, api_key=read_secret(embedding.api_key_env), cache=self._embedders
        )

    def curation_pool(self) -> Executor | None:
        """The worker's process pool for curation work, started on first use (None: no pool).

        Spawned, not forked (the worker process runs threads); its processes exit with us.
        """
        size = self.settings.worker.curation_processes or os.cpu_count() or 1
        if size <= 1:
            return None
        if self._curation_pool is None:
            self._curation_pool = process_pool(size)
        return self._curation_pool

    def warm_up(self) -> None:
        """Start the curation processes now (without waiting), so no run pays for spawning."""
        pool = self.curation_pool()
        if pool is not None:
            for _ in range(self.settings.worker.curation_processes or os.cpu_count() or 1):
                pool.submit(scan_batch, [], ScanSettings())  # imports curation in each process

    def has_platform(self, name: Platform) -> bool:
        return name in self._platforms

    def platform(self, name: Platform) -> ModelPlatform:
        try:
            return self._platforms[name]
        except KeyError:
            available = ", ".join(sorted(p.value for p in self._platforms)) or "none"
            raise UnsupportedOperation(
                f"the `{name.value}` platform is not available on this worker "
                f"(available: {available})"
            ) from None

    async def aclose(self) -> None:
        for platform in self._platforms.values():
            await platform.aclose()
        if self._log_store is not None:
            await self._log_store.aclose()
        if self._result_store is not None:
            await self._result_store.aclose()
        self._embedders.clear()
        if self._curation_pool is not None:
            self._curation_pool.shutdown(cancel_futures=True)
