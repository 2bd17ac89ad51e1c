"""Log store → curation → artifact store: the work behind ``prepare_datasets``.

Kept free of Temporal so the curation benchmark runs exactly this code. Logs are read as raw
JSON a batch at a time; datasets are streamed to the artifact store. Peak memory is the
survivors' training lines plus a few batches, never the parsed workload: the few records
needed whole again (eval records, few-shot examples) are fetched back from the log store.
The per-record work (parse, validate, fingerprint; format training lines) runs in a process
pool once a workload is big enough to repay it, else in a worker thread: the same functions
either way, so the same bytes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.embeddings import Embedder
from flywheel.clients.logstore import LogStore, RawBatch
from flywheel.clients.logstore.refetch import RefetchingKeeper
from flywheel.config import RunConfig
from flywheel.curation.icl import (
    Example,
    choose_uniform,
    inject_all,
    make_example,
    request_token_counts,
)
from flywheel.curation.pii import build_redactor
from flywheel.curation.pipeline import CurationOptions, CurationPlan, Curator, Which
from flywheel.curation.scan import Scanned, scan_batch
from flywheel.curation.similarity import query_text, select_semantic
from flywheel.errors import FlywheelError, InvalidDataError
from flywheel.schemas import DatasetBundle, DatasetFormat, DatasetRef, WorkloadType

EXPORT_FACTOR = 2
"""Read the newest ``EXPORT_FACTOR × limit`` logs: validation and dedup then thin them out."""

READ_BATCH = 1_000
"""Records per batch read from the log store (and per scanning task)."""
PARALLEL_FROM_RECORDS = 10_000
"""Records scanned in-thread before the process pool (if any) is used: small runs never pay
for starting processes."""

Heartbeat = Callable[[dict[str, Any]], None]
EmbedderFactory = Callable[[], Embedder]
ProcessPool = Callable[[], Executor | None]
"""Gives the process pool for curation work (started on first call), or None for none."""


@dataclass
class StageTimes:
    """Seconds spent per stage (for the benchmark and the activity's log line)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@dataclass(frozen=True)
class DatasetSource:
    """Which logs a run curates."""

    workload_id: str
    client_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> str:
        who = f" and client {self.client_id!r}" if self.client_id else ""
        window = ""
        if self.since or self.until:
            window = f" between {self.since or 'the start'} and {self.until or 'now'}"
        return f"workload {self.workload_id!r}{who}{window}"


async def build_datasets(
    store: LogStore,
    artifacts: ArtifactStore,
    config: RunConfig,
    source: DatasetSource,
    *,
    seed: int,
    embedder: EmbedderFactory | None = None,
    processes: ProcessPool | None = None,
    heartbeat: Heartbeat | None = None,
    times: StageTimes | None = None,
) -> DatasetBundle:
    """Curate the newest logs of ``source`` and write eval, train, val and ICL datasets."""
    beat = heartbeat or (lambda _details: None)
    times = times or StageTimes()
    keeper = RefetchingKeeper(store)
    plan = await _scan(store, config, source, seed, beat, times, _Work(processes), keeper)
    return await _write_datasets(plan, keeper, artifacts, config, seed, embedder, beat, times)


async def _write_datasets(
    plan: CurationPlan,
    keeper: RefetchingKeeper,
    artifacts: ArtifactStore,
    config: RunConfig,
    seed: int,
    embedder: EmbedderFactory | None,
    beat: Heartbeat,
    times: StageTimes,
) -> DatasetBundle:

    beat({"stage": "writing datasets"})
    with times.stage("write_eval"):
        await keeper.load(plan.eval_positions)
        await keeper.load(plan.positions_needing_records())
        eval_ref = await asyncio.to_thread(
            lambda: artifacts.put_jsonl_sync(plan.eval_records(), DatasetFormat.EVAL)
        )
        await asyncio.to_thread(plan.find_leaks)

    # Train and val are mostly hashing and writing (outside the GIL), few-shot selection mostly
    # Python: side by side they share the cores.
    async def timed(stage: str, work: Awaitable[Any]) -> Any:
        with times.stage(stage):
            return await work

    train_ref, val_ref, (icl_refs, icl_stats, warnings) = await asyncio.gather(
        timed("write_train", _write_training(plan, "train", artifacts)),
        timed("write_val", _write_training(plan, "val", artifacts)),
        timed("icl", _icl_datasets(plan, keeper, artifacts, config, seed, embedder, beat)),
    )
    report = plan.report(icl=icl_stats)
    report.warnings.extend(warnings)
    return DatasetBundle(
        eval=eval_ref,
        train=train_ref,
        val=val_ref,
        icl=icl_refs,
        workload_type=plan.workload_type,
        report=report,
    )


def curation_options(config: RunConfig, seed: int) -> CurationOptions:
    """The curation options of a run's configuration."""
    split = config.data_split_config
    curation = config.curation_config
    return CurationOptions(
        eval_size=split.eval_size,
        val_ratio=split.val_ratio,
        min_total_records=split.min_total_records,
        limit=split.limit,
        seed=seed,
        parse_function_arguments=split.parse_function_arguments,
        max_tool_properties=curation.max_tool_properties,
        keep_non_tool_records=curation.keep_non_tool_records,
        near_duplicate_threshold=curation.near_duplicate_threshold,
        leakage_guard=curation.leakage_guard,
    )


class _Work:
    """Runs per-record work in the process pool when there is one and it pays, else a thread."""

    def __init__(self, processes: ProcessPool | None) -> None:
        self._processes = processes
        self._pool: Executor | None = None
        self.window = 2

    def start(self) -> None:
        """Start the pool's processes now (in the background) rather than on first use."""
        pool = self.pool()
        if pool is not None:
            for _ in range(self.window // 2):
                pool.submit(int)  # each spawns (and imports in) one process

    def pool(self) -> Executor | None:
        if self._pool is None and self._processes is not None:
            self._pool = self._processes()
            self.window = 2 * max(getattr(self._pool, "_max_workers", 1), 1)
        return self._pool

    def run(self, parallel: bool, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        pool = self.pool() if parallel else None
        if pool is None:
            return asyncio.to_thread(fn, *args)
        return asyncio.get_running_loop().run_in_executor(pool, fn, *args)


async def _scan(
    store: LogStore,
    config: RunConfig,
    source: DatasetSource,
    seed: int,
    beat: Heartbeat,
    times: StageTimes,
    work: _Work,
    keeper: RefetchingKeeper,
) -> CurationPlan:
    curator = Curator(
        curation_options(config, seed),
        redactor=build_redactor(config.curation_config.pii),
        keeper=keeper,
    )
    batches = store.iter_raw(
        source.workload_id,
        source.client_id,
        limit=EXPORT_FACTOR * config.data_split_config.limit,
        batch_size=READ_BATCH,
        since=source.since,
        until=source.until,
    ).__aiter__()
    scanning: deque[tuple[RawBatch, Awaitable[Scanned]]] = deque()
    read = 0
    expected = await store.count(
        source.workload_id, source.client_id, since=source.since, until=source.until
    )
    if min(expected, EXPORT_FACTOR * config.data_split_config.limit) >= PARALLEL_FROM_RECORDS:
        work.start()  # big: spawn the processes now, while the first batches are read
        read = PARALLEL_FROM_RECORDS

    async def accept_oldest() -> None:
        batch, results = scanning.popleft()
        curator.accept(batch, await results, batch.keys)
        beat({"stage": "reading logs", "records": curator.total})

    # The store reads the next batch while earlier ones are scanned.
    upcoming = asyncio.ensure_future(anext(batches, None))
    try:
        while True:
            with times.stage("extract"):
                batch = await upcoming
            if batch is None:
                break
            upcoming = asyncio.ensure_future(anext(batches, None))
            with times.stage("validate_dedup"):
                parallel = read >= PARALLEL_FROM_RECORDS
                read += len(batch)
                scanning.append(
                    (
                        batch,
                        work.run(
                            parallel,
                            scan_batch,
                            batch,
                            curator.scan_settings,
                            curator.tool_calling,
                        ),
                    )
                )
                while len(scanning) > work.window:
                    await accept_oldest()
        with times.stage("validate_dedup"):
            while scanning:
                await accept_oldest()
    finally:
        if not upcoming.done():
            upcoming.cancel()
        await batches.aclose()
    if curator.total == 0:
        raise InvalidDataError(
            f"no logs found for {source.describe()}: load some with `flywheel logs load FILE.jsonl`"
        )
    beat({"stage": "splitting", "records": curator.total})
    with times.stage("sample_split"):
        return await asyncio.to_thread(curator.finish)


async def _write_training(plan: CurationPlan, which: Which, artifacts: ArtifactStore) -> DatasetRef:
    """Stream the train or val set's lines (formatted in pass one) to the artifact store."""

    def write() -> DatasetRef:
        # Hashing and writing a chunk (both release the GIL) overlap building the next one.
        with (
            artifacts.jsonl_writer(DatasetFormat.TRAINING) as writer,
            ThreadPoolExecutor(1) as output,
        ):
            written: Future[None] | None = None
            for data, lines in plan.training_chunks(which):
                if written is not None:
                    written.result()
                written = output.submit(writer.write, data, lines)
            if written is not None:
                written.result()
        assert writer.ref is not None
        return writer.ref

    return await asyncio.to_thread(write)


async def _icl_datasets(
    plan: CurationPlan,
    keeper: RefetchingKeeper,
    artifacts: ArtifactStore,
    config: RunConfig,
    seed: int,
    embedder: EmbedderFactory | None,
    beat: Heartbeat,
) -> tuple[dict[str, DatasetRef], dict[str, dict[str, float]], list[str]]:
    """One ICL eval set per distinct candidate context length; candidate → its dataset."""
    icl = config.icl_config
    if icl.max_examples == 0 or not config.candidates:
        return {}, {}, []
    warnings: list[str] = []
    pool = plan.pool_positions()
    chooser: Callable[[int], Mapping[str, Sequence[Example]]] | None = None
    method = icl.example_selection
    if method == "semantic_similarity":
        beat({"stage": "embedding ICL examples", "pool": len(pool)})
        try:
            chooser = await _semantic_chooser(plan, keeper, pool, config, seed, embedder)
        except FlywheelError as exc:
            warnings.append(f"semantic ICL selection failed, used uniform instead: {exc}")
            method = "uniform_distribution"
    if chooser is None:
        groups = await _uniform_examples(plan, keeper, pool, icl.max_examples, seed)
        chooser = lambda _index: groups  # noqa: E731 - the same examples for every record

    eval_records = await asyncio.to_thread(plan.eval_records)
    request_tokens = await asyncio.to_thread(request_token_counts, eval_records)
    by_context: dict[int, DatasetRef] = {}
    stats: dict[str, dict[str, float]] = {}
    refs: dict[str, DatasetRef] = {}
    for candidate in config.candidates:
        context_length = min(candidate.context_length, icl.max_context_length)
        if context_length not in by_context:
            beat({"stage": "writing ICL dataset", "context_length": context_length})

            def build(context_length: int = context_length) -> tuple[DatasetRef, dict[str, float]]:
                records, record_stats = inject_all(
                    eval_records,
                    chooser,
                    context_length=context_length,
                    reserved_tokens=icl.reserved_tokens,
                    request_tokens=request_tokens,
                )
                return artifacts.put_jsonl_sync(records, DatasetFormat.EVAL), record_stats

            ref, record_stats = await asyncio.to_thread(build)
            by_context[context_length] = ref
            stats[f"context_{context_length}"] = {
                **record_stats,
                "pool": len(pool),
                "semantic": float(method == "semantic_similarity"),
            }
        refs[candidate.name] = by_context[context_length]
    return refs, stats, warnings


async def _uniform_examples(
    plan: CurationPlan,
    keeper: RefetchingKeeper,
    pool: Sequence[int],
    max_examples: int,
    seed: int,
) -> dict[str, list[Example]]:
    chosen = choose_uniform(
        [plan.labels[p] for p in pool],
        max_examples=max_examples,
        tool_calling=plan.workload_type == WorkloadType.TOOL_CALLING,
        seed=seed,
    )
    await keeper.load(pool[i] for indices in chosen.values() for i in indices)
    return {
        name: [make_example(name, plan.record(pool[i])) for i in indices]
        for name, indices in chosen.items()
    }


async def _semantic_chooser(
    plan: CurationPlan,
    keeper: RefetchingKeeper,
    pool: Sequence[int],
    config: RunConfig,
    seed: int,
    embedder: EmbedderFactory | None,
) -> Callable[[int], Mapping[str, Sequence[Example]]]:
    """Per eval record, the pool examples nearest its last user turn (relevance + coverage)."""
    similarity = config.icl_config.similarity_config
    if embedder is None or similarity is None:
        raise FlywheelError("no embedding model is configured for semantic_similarity")
    size = similarity.pool_size
    if size is not None and len(pool) > size:
        pool = sorted(random.Random(seed).sample(list(pool), size))
    await keeper.load(pool)
    pool_records = await asyncio.to_thread(lambda: [plan.record(p) for p in pool])
    keeper.forget(pool)
    pool_texts = [query_text(record) for record in pool_records]
    keep = [i for i, text in enumerate(pool_texts) if text]
    eval_records = await asyncio.to_thread(plan.eval_records)
    eval_texts = [query_text(record) for record in eval_records]

    client = embedder()
    try:
        pool_vectors = await client.embed([pool_texts[i] or "" for i in keep], input_type="query")
        eval_vectors = await client.embed([t or "" for t in eval_texts], input_type="query")
    finally:
        await client.aclose()
    for row, text in enumerate(eval_texts):
        if not text:
            eval_vectors[row] = 0.0  # no user turn: no similar examples
    labels = [plan.labels[pool[i]] for i in keep]
    choices = await asyncio.to_thread(
        select_semantic,
        eval_vectors,
        pool_vectors,
        labels,
        max_examples=config.icl_config.max_examples,
        relevance_ratio=similarity.relevance_ratio,
        tool_calling=plan.workload_type == WorkloadType.TOOL_CALLING,
    )
    cache: dict[int, Example] = {}

    def examples_for(index: int) -> Mapping[str, Sequence[Example]]:
        groups: dict[str, list[Example]] = {}
        for choice in choices[index]:
            if choice not in cache:
                cache[choice] = make_example(labels[choice], pool_records[keep[choice]])
            groups.setdefault(labels[choice], []).append(cache[choice])
        return groups

    return examples_for
