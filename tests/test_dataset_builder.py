"""build_datasets: a real SQLite log store in, content-addressed JSONL artifacts out."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flywheel.activities.dataset_builder import DatasetSource, StageTimes, build_datasets
from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.embeddings import EmbedderCache, open_embedder
from flywheel.clients.logstore.sqlite import SQLiteLogStore
from flywheel.config import EmbeddingConfig, RunConfig
from flywheel.curation.icl import EXAMPLE_HEADER, PREAMBLE
from flywheel.curation.records import tool_name
from flywheel.errors import InvalidDataError
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import LogRecord
from tests.support.embeddings_server import EmbeddingsServer

WORKLOAD = "support-agent"
START = datetime(2026, 10, 1, tzinfo=UTC)
URL = "http://127.0.0.1:9/v1"


def run_config(**overrides: Any) -> RunConfig:
    values: dict[str, Any] = {
        "data_split_config": {"eval_size": 30, "min_total_records": 20, "limit": 1000},
        "icl_config": {"max_examples": 3, "max_context_length": 32768, "reserved_tokens": 512},
        "candidates": [
            {"name": "big", "model": "m1", "base_url": URL, "context_length": 16384},
            {"name": "big-too", "model": "m2", "base_url": URL, "context_length": 16384},
            {"name": "small", "model": "m3", "base_url": URL, "context_length": 2000},
        ],
    }
    return RunConfig.model_validate(values | overrides)


@pytest.fixture
async def store(tmp_path: Path):
    records = generate_customer_service_logs(300, seed=5, workload_id=WORKLOAD, start=START)
    async with SQLiteLogStore(tmp_path / "logs.db") as store:
        await store.add([LogRecord.model_validate(r) for r in records])
        yield store


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore((tmp_path / "artifacts").as_uri())


def system_text(record: dict[str, Any]) -> str:
    messages = record["request"]["messages"]
    return next((m["content"] for m in messages if m["role"] == "system"), "")


async def build(store: SQLiteLogStore, artifacts: ArtifactStore, config: RunConfig, **kw: Any):
    beats: list[dict[str, Any]] = []
    bundle = await build_datasets(
        store,
        artifacts,
        config,
        kw.pop("source", DatasetSource(workload_id=WORKLOAD)),
        seed=11,
        heartbeat=beats.append,
        **kw,
    )
    return bundle, beats


async def test_datasets_and_icl_sets_per_context_length(
    store: SQLiteLogStore, artifacts: ArtifactStore
) -> None:
    times = StageTimes()
    bundle, beats = await build(store, artifacts, run_config(), times=times)

    report = bundle.report
    evals = await artifacts.read_dataset(bundle.eval)
    train = await artifacts.read_dataset(bundle.train)
    val = await artifacts.read_dataset(bundle.val)
    assert (len(evals), len(train), len(val)) == (
        report.eval_records,
        report.train_records,
        report.val_records,
    )
    assert report.eval_records == 30 and report.total_records == 300
    assert bundle.eval.n_records == 30

    # One ICL dataset per distinct context length, shared by candidates that have the same one.
    assert bundle.icl["big"] == bundle.icl["big-too"] != bundle.icl["small"]
    assert sorted(report.icl) == ["context_16384", "context_2000"]
    big = await artifacts.read_dataset(bundle.icl["big"])
    small = await artifacts.read_dataset(bundle.icl["small"])
    assert all(system_text(r).count(EXAMPLE_HEADER) == 3 for r in big)
    assert report.icl["context_16384"]["mean_examples"] == 3
    # The small window fits fewer examples, never more than its budget allows.
    assert report.icl["context_2000"]["mean_examples"] < 3
    assert all(system_text(r).count(EXAMPLE_HEADER) <= 3 for r in small)
    for icl, plain in zip(big, evals, strict=True):
        assert icl["response"] == plain["response"]
        assert system_text(icl).startswith(PREAMBLE)

    assert {"extract", "validate_dedup", "sample_split", "write_train", "write_val", "icl"} <= set(
        times.seconds
    )
    stages = [beat["stage"] for beat in beats]
    assert stages[0] == "reading logs" and "writing datasets" in stages


async def test_retried_build_writes_the_same_artifacts(
    store: SQLiteLogStore, artifacts: ArtifactStore
) -> None:
    first, _ = await build(store, artifacts, run_config())
    again, _ = await build(store, artifacts, run_config())
    assert first == again
    files = await artifacts.list("datasets")
    assert not [f for f in files if "incoming" in f]
    assert len(files) == 5  # eval, train, val, two ICL sets


async def test_time_window_limits_the_logs(store: SQLiteLogStore, artifacts: ArtifactStore) -> None:
    (summary,) = await store.workloads()
    assert summary.newest is not None and summary.oldest is not None
    since = summary.oldest + (summary.newest - summary.oldest) / 2
    expected = await store.count(WORKLOAD, since=since)
    assert 20 < expected < 300
    source = DatasetSource(workload_id=WORKLOAD, since=since)
    bundle, _ = await build(store, artifacts, run_config(), source=source)
    assert bundle.report.total_records == expected


async def test_no_logs_names_the_workload_and_window(
    store: SQLiteLogStore, artifacts: ArtifactStore
) -> None:
    source = DatasetSource(
        workload_id=WORKLOAD, client_id="nobody", until=datetime(2020, 1, 1, tzinfo=UTC)
    )
    with pytest.raises(InvalidDataError) as caught:
        await build(store, artifacts, run_config(), source=source)
    message = str(caught.value)
    assert "no logs found for workload 'support-agent' and client 'nobody'" in message
    assert "2020-01-01" in message and "flywheel logs load" in message


def semantic(embedding: dict[str, Any], **similarity: Any) -> dict[str, Any]:
    return {
        "max_examples": 3,
        "max_context_length": 32768,
        "reserved_tokens": 512,
        "example_selection": "semantic_similarity",
        "similarity_config": {
            "relevance_ratio": 1.0,
            "embedding_nim_config": embedding,
            **similarity,
        },
    }


async def test_semantic_selection_with_the_bundled_local_model(
    store: SQLiteLogStore, artifacts: ArtifactStore
) -> None:
    pytest.importorskip("sentence_transformers", reason="needs the `local` extra")
    embedding = {"deployment_type": "in_process", "model_name": "all-MiniLM-L6-v2"}
    config = run_config(icl_config=semantic(embedding))
    cache = EmbedderCache()
    embedder_config = EmbeddingConfig.model_validate(embedding)
    bundle, _ = await build(
        store,
        artifacts,
        config,
        embedder=lambda: open_embedder(embedder_config, api_key=None, cache=cache),
    )
    assert bundle.report.icl["context_16384"]["semantic"] == 1.0
    assert bundle.report.warnings == []
    records = await artifacts.read_dataset(bundle.icl["big"])
    # With pure relevance, the nearest examples of a request mostly call the same tool.
    agree = Counter()
    for record in records:
        label = tool_name(record)
        first_example = system_text(record).split(EXAMPLE_HEADER)[1]
        agree[
            label in first_example or (label == "no_tool" and "tool calls" not in first_example)
        ] += 1
    assert agree[True] >= 0.6 * len(records), agree


async def test_semantic_selection_through_an_embeddings_endpoint(
    store: SQLiteLogStore, artifacts: ArtifactStore
) -> None:
    with EmbeddingsServer(dim=16) as server:
        embedding = {"deployment_type": "remote", "model_name": "embed", "url": server.base_url}
        config = run_config(icl_config=semantic(embedding, pool_size=50))
        embedder_config = EmbeddingConfig.model_validate(embedding)
        bundle, _ = await build(
            store,
            artifacts,
            config,
            embedder=lambda: open_embedder(embedder_config, api_key=None),
        )
        embedded = sum(len(r.body["input"]) for r in server.requests if r.body)
    assert bundle.report.icl["context_16384"]["semantic"] == 1.0
    assert embedded == 50 + 30  # the sampled pool and the eval queries, nothing else
    assert bundle.report.icl["context_16384"]["pool"] <= bundle.report.train_records


async def test_semantic_selection_falls_back_to_uniform_when_embedding_fails(
    store: SQLiteLogStore, artifacts: ArtifactStore
) -> None:
    with EmbeddingsServer() as server:
        server.fail_next(100, status=400, message="model not found")
        embedding = {"deployment_type": "remote", "model_name": "embed", "url": server.base_url}
        embedder_config = EmbeddingConfig.model_validate(embedding)
        bundle, _ = await build(
            store,
            artifacts,
            run_config(icl_config=semantic(embedding)),
            embedder=lambda: open_embedder(embedder_config, api_key=None),
        )
    assert bundle.report.icl["context_16384"]["semantic"] == 0.0
    assert bundle.report.icl["context_16384"]["mean_examples"] == 3
    (warning,) = bundle.report.warnings
    assert warning.startswith("semantic ICL selection failed, used uniform instead:")
    assert "model not found" in warning


async def test_process_pool_gives_the_same_datasets(
    store: SQLiteLogStore, artifacts: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = run_config(
        curation_config={"pii": {"enabled": True}, "near_duplicate_threshold": 0.95}
    )
    in_thread, _ = await build(store, artifacts, config)

    import flywheel.activities.dataset_builder as builder

    monkeypatch.setattr(builder, "PARALLEL_FROM_RECORDS", 50)
    monkeypatch.setattr(builder, "READ_BATCH", 40)
    started: list[ProcessPoolExecutor] = []

    def processes() -> ProcessPoolExecutor:
        started.append(ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")))
        return started[0]

    try:
        in_pool, _ = await build(store, artifacts, config, processes=processes)
    finally:
        for pool in started:
            pool.shutdown()
    assert len(started) == 1
    assert in_pool == in_thread
    assert in_pool.report.pii_redactions == in_thread.report.pii_redactions


async def test_worker_resources_own_the_curation_pool(tmp_path: Path) -> None:
    from flywheel.activities.resources import WorkerResources
    from flywheel.config import Settings

    single = WorkerResources(
        Settings(data_dir=tmp_path / "one", worker={"curation_processes": 1}), platforms={}
    )
    assert single.curation_pool() is None
    single.warm_up()  # nothing to start
    await single.aclose()

    resources = WorkerResources(
        Settings(data_dir=tmp_path / "two", worker={"curation_processes": 2}), platforms={}
    )
    resources.warm_up()
    pool = resources.curation_pool()
    assert isinstance(pool, ProcessPoolExecutor)
    assert resources.curation_pool() is pool  # one per worker, reused by every run
    from flywheel.curation.scan import ScanSettings, scan_batch

    scanned = pool.submit(scan_batch, [b"{}", b"nope"], ScanSettings()).result(timeout=60)
    assert scanned.reasons == ["invalid_format", "invalid_json"]
    await resources.aclose()
    with pytest.raises(RuntimeError):
        pool.submit(int)


async def test_records_fetched_back_from_the_store_match_curating_in_memory(
    tmp_path: Path, artifacts: ArtifactStore
) -> None:
    """A generic workload whose requests offer tools: no training line is decided in pass one,
    so every train/val record, like the eval records and examples, is fetched back by key."""
    from flywheel.activities.dataset_builder import curation_options
    from flywheel.curation.pipeline import curate
    from tests.curation.builders import make_record

    records = []
    for n in range(120):
        record = make_record(f"question {n}", content=f"answer {n}", tools=["lookup", "cancel"])
        record |= {"workload_id": WORKLOAD, "timestamp": f"2026-10-01T00:{n // 60:02}:{n % 60:02}Z"}
        records.append(record)
    config = run_config(icl_config={"max_examples": 2, "max_context_length": 8192})
    async with SQLiteLogStore(tmp_path / "generic.db") as store:
        await store.add([LogRecord.model_validate(r) for r in records])
        bundle, _ = await build(store, artifacts, config)
    expected = curate(reversed(records), curation_options(config, 11))
    assert bundle.workload_type == expected.workload_type
    assert await artifacts.read_jsonl(bundle.eval.uri) == expected.eval_records
    assert await artifacts.read_jsonl(bundle.train.uri) == expected.train_lines
    assert await artifacts.read_jsonl(bundle.val.uri) == expected.val_lines
    assert all("tools" not in line for line in expected.train_lines), "generic form"
    icl = await artifacts.read_jsonl(bundle.icl["big"].uri)
    assert all(system_text(r).count(EXAMPLE_HEADER) == 2 for r in icl)
