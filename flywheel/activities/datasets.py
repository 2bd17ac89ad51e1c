"""prepare_datasets: a workload's logs → curated eval / ICL / train / val JSONL artifacts."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity

from flywheel.activities import names
from flywheel.activities.errors import translate_errors
from flywheel.activities.resources import WorkerResources
from flywheel.curation.icl import build_icl_records
from flywheel.curation.pipeline import Curated, CurationOptions, curate
from flywheel.curation.split import derive_seed
from flywheel.errors import InvalidDataError
from flywheel.schemas import DatasetBundle, DatasetFormat, DatasetRef, PrepareDatasetsInput

EXPORT_FACTOR = 2
"""Read the newest ``EXPORT_FACTOR × limit`` logs: validation and dedup then thin them out."""


class DatasetActivities:
    def __init__(self, resources: WorkerResources) -> None:
        self._resources = resources

    @activity.defn(name=names.PREPARE_DATASETS)
    @translate_errors
    async def prepare_datasets(self, request: PrepareDatasetsInput) -> DatasetBundle:
        """Read the workload's newest logs, curate them and write the datasets; return refs."""
        split_config = request.config.data_split_config
        seed = (
            split_config.random_seed
            if split_config.random_seed is not None
            else derive_seed(request.run_id)
        )
        records = await self._read_logs(request, limit=EXPORT_FACTOR * split_config.limit)
        if not records:
            who = f" and client {request.client_id!r}" if request.client_id else ""
            raise InvalidDataError(
                f"no logs found for workload {request.workload_id!r}{who}: load some with "
                "`flywheel logs load FILE.jsonl`"
            )
        options = CurationOptions(
            eval_size=split_config.eval_size,
            val_ratio=split_config.val_ratio,
            min_total_records=split_config.min_total_records,
            limit=split_config.limit,
            seed=seed,
            parse_function_arguments=split_config.parse_function_arguments,
        )
        activity.heartbeat({"stage": "curating", "records": len(records)})
        curated = await asyncio.to_thread(curate, records, options)
        del records
        activity.heartbeat({"stage": "writing datasets"})
        return await self._write(request, curated, seed)

    async def _read_logs(
        self, request: PrepareDatasetsInput, *, limit: int
    ) -> list[dict[str, Any]]:
        store = await self._resources.log_store()
        records: list[dict[str, Any]] = []
        async for batch in store.iter_batches(request.workload_id, request.client_id, limit=limit):
            records.extend(batch)
            activity.heartbeat({"stage": "reading logs", "records": len(records)})
        return records

    async def _write(
        self, request: PrepareDatasetsInput, curated: Curated, seed: int
    ) -> DatasetBundle:
        artifacts = self._resources.artifacts
        eval_ref = await artifacts.put_jsonl(curated.eval_records, DatasetFormat.EVAL)
        train_ref = await artifacts.put_jsonl(curated.train_lines, DatasetFormat.TRAINING)
        val_ref = await artifacts.put_jsonl(curated.val_lines, DatasetFormat.TRAINING)

        icl_config = request.config.icl_config
        icl_refs: dict[str, DatasetRef] = {}
        if icl_config.max_examples > 0:
            by_context: dict[int, DatasetRef] = {}
            for candidate in request.config.candidates:
                context_length = min(candidate.context_length, icl_config.max_context_length)
                if context_length not in by_context:
                    icl_records, _stats = await asyncio.to_thread(
                        build_icl_records,
                        curated.eval_records,
                        curated.train_records,
                        context_length=context_length,
                        reserved_tokens=icl_config.reserved_tokens,
                        max_examples=icl_config.max_examples,
                        workload_type=curated.workload_type,
                        seed=seed,
                    )
                    by_context[context_length] = await artifacts.put_jsonl(
                        icl_records, DatasetFormat.EVAL
                    )
                icl_refs[candidate.name] = by_context[context_length]

        return DatasetBundle(
            eval=eval_ref,
            train=train_ref,
            val=val_ref,
            icl=icl_refs,
            workload_type=curated.workload_type,
            report=curated.report,
        )
