"""prepare_datasets: a workload's logs → curated eval / ICL / train / val JSONL artifacts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio import activity

from flywheel.activities import names
from flywheel.activities.dataset_builder import (
    DatasetSource,
    Heartbeat,
    StageTimes,
    build_datasets,
)
from flywheel.activities.errors import translate_errors
from flywheel.activities.resources import WorkerResources
from flywheel.config import Platform, RunConfig
from flywheel.curation.split import derive_seed
from flywheel.errors import UnsupportedOperation
from flywheel.platforms.base import StepContext
from flywheel.schemas import DatasetBundle, PrepareDatasetsInput


class DatasetActivities:
    def __init__(self, resources: WorkerResources) -> None:
        self._resources = resources

    @activity.defn(name=names.PREPARE_DATASETS)
    @translate_errors
    async def prepare_datasets(self, request: PrepareDatasetsInput) -> DatasetBundle:
        """Read the workload's newest logs, curate them and write the datasets; return refs."""
        seed = request.config.data_split_config.random_seed
        times = StageTimes()
        async with (
            _steady_heartbeat() as heartbeat,
            self._embedding_nim(request, heartbeat) as config,
        ):
            bundle = await build_datasets(
                await self._resources.log_store(),
                self._resources.artifacts,
                config,
                DatasetSource(
                    workload_id=request.workload_id,
                    client_id=request.client_id,
                    since=request.since,
                    until=request.until,
                ),
                seed=seed if seed is not None else derive_seed(request.run_id),
                embedder=self._resources.embedder_factory(config),
                processes=self._resources.curation_pool,
                heartbeat=heartbeat,
                times=times,
            )
        report = bundle.report
        activity.logger.info(
            "curated %d of %d records (eval %d, train %d, val %d) in %s",
            report.selected,
            report.total_records,
            report.eval_records,
            report.train_records,
            report.val_records,
            ", ".join(f"{stage} {s:.2f}s" for stage, s in times.seconds.items()),
        )
        return bundle

    @contextlib.asynccontextmanager
    async def _embedding_nim(
        self, request: PrepareDatasetsInput, heartbeat: Heartbeat
    ) -> AsyncIterator[RunConfig]:
        """The run's configuration, with an embedding NIM deployed through NeMo for the length
        of the curation when semantic ICL asks for one (``deployment_type: local``)."""
        config = request.config
        icl = config.icl_config
        similarity = icl.similarity_config
        embedding = similarity.embedding_nim_config if similarity else None
        if (
            similarity is None
            or embedding is None
            or embedding.deployment_type != "local"
            or icl.example_selection != "semantic_similarity"
            or icl.max_examples == 0
        ):
            yield config
            return
        platform = self._resources.platform(Platform.NEMO)
        deploy = getattr(platform, "embedding_nim", None)
        if deploy is None:
            raise UnsupportedOperation("an embedding NIM needs the nemo platform on the worker")
        async with deploy(config, request.run_id, StepContext(heartbeat=heartbeat)) as remote:
            yield config.model_copy(
                update={
                    "icl_config": icl.model_copy(
                        update={
                            "similarity_config": similarity.model_copy(
                                update={"embedding_nim_config": remote}
                            )
                        }
                    )
                }
            )


@contextlib.asynccontextmanager
async def _steady_heartbeat() -> AsyncIterator[Heartbeat]:
    """Heartbeat at least every third of the heartbeat timeout, repeating the latest details.

    Long waits (an embeddings endpoint, a slow store) then neither time the activity out nor
    keep a cancellation from reaching it.
    """
    latest: list[Any] = [{"stage": "starting"}]

    def beat(details: dict[str, Any]) -> None:
        latest[0] = details
        activity.heartbeat(details)

    timeout = activity.info().heartbeat_timeout or timedelta(seconds=30)
    interval = max(timeout.total_seconds() / 3, 0.1)

    async def keep_beating() -> None:
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat(latest[0])

    task = asyncio.create_task(keep_beating())
    try:
        yield beat
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
