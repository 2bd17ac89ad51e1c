"""One contract for every result store: SQLite (a real file) and MongoDB (real nx-27017)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from flywheel.clients.results import ResultStore, mongodb_database_from_url, open_result_store
from flywheel.clients.results.mongodb import MongoResultStore
from flywheel.clients.results.sqlite import SQLiteResultStore
from flywheel.clients.urls import redact_url
from flywheel.config import Candidate, Platform, RunConfig
from flywheel.errors import ConfigError, ConnectionFailed
from flywheel.schemas import (
    CandidateResult,
    CurationReport,
    CustomizationResult,
    DatasetBundle,
    DatasetFormat,
    DatasetRef,
    EvalKind,
    EvalResult,
    FlywheelRunInput,
    FlywheelRunResult,
    RunStatus,
    StepStatus,
    WorkloadType,
)
from tests.support.mongo import free_port

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def ref(name: str, n: int, fmt: DatasetFormat = DatasetFormat.TRAINING) -> DatasetRef:
    return DatasetRef(uri=f"file:///data/{name}.jsonl", sha256="ab" * 32, n_records=n, format=fmt)


def full_run(
    run_id: str = "flywheel-w1-20250301T120000", *, revision: int = 3
) -> FlywheelRunResult:
    """A run with every nested part filled in, and datetimes in more than one time zone."""
    plus_two = timezone(timedelta(hours=2))
    candidate = Candidate(
        name="small-1b", model="meta/llama-3.2-1b-instruct", base_url="http://127.0.0.1:9/v1"
    )
    return FlywheelRunResult(
        run_id=run_id,
        workload_id="w1",
        client_id="c1",
        status=RunStatus.COMPLETED,
        started_at=T0,
        finished_at=datetime(2025, 3, 1, 15, 30, 1, 999, tzinfo=plus_two),
        input=FlywheelRunInput(workload_id="w1", client_id="c1", config_overrides={"a": {"b": 1}}),
        config=RunConfig(candidates=[candidate], max_parallel_candidates=2),
        datasets=DatasetBundle(
            eval=ref("eval", 20, DatasetFormat.EVAL),
            train=ref("train", 70),
            val=ref("val", 8),
            icl={"small-1b": ref("icl", 20, DatasetFormat.EVAL)},
            workload_type=WorkloadType.TOOL_CALLING,
            report=CurationReport(
                workload_type=WorkloadType.TOOL_CALLING,
                seed=42,
                total_records=120,
                dropped={"duplicate": 10, "invalid": 12},
                selected=98,
                eval_records=20,
                train_records=70,
                val_records=8,
                tool_counts={"search": 60, "no_tool": 38},
                warnings=["few records"],
            ),
        ),
        candidates=[
            CandidateResult(
                name="small-1b",
                model="meta/llama-3.2-1b-instruct",
                platform=Platform.ENDPOINTS,
                status=StepStatus.COMPLETED,
                evals=[
                    EvalResult(
                        kind=EvalKind.BASE,
                        status=StepStatus.COMPLETED,
                        metrics={"function_name_accuracy": 0.75, "similarity": 0.5},
                        n_total=20,
                        n_scored=19,
                        n_failed=1,
                        latency_p50_s=0.21,
                        latency_p95_s=1.5,
                        tokens_in=1234,
                        tokens_out=567,
                        started_at=T0 + timedelta(minutes=1),
                        finished_at=T0 + timedelta(minutes=2, microseconds=7),
                    ),
                    EvalResult(kind=EvalKind.ICL, status=StepStatus.FAILED, error="timeout"),
                ],
                customization=CustomizationResult(
                    status=StepStatus.SKIPPED, skipped_reason="endpoints cannot be customized"
                ),
                started_at=T0,
                finished_at=T0 + timedelta(hours=1),
            )
        ],
        revision=revision,
    )


def brief_run(
    run_id: str, *, workload: str, status: RunStatus, minutes: int, revision: int = 0
) -> FlywheelRunResult:
    return FlywheelRunResult(
        run_id=run_id,
        workload_id=workload,
        status=status,
        started_at=T0 + timedelta(minutes=minutes),
        revision=revision,
    )


@pytest.fixture(params=["sqlite", "mongodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResultStore]:
    """A fresh, empty store of each kind."""
    if request.param == "sqlite":
        opened = open_result_store(f"sqlite:///{tmp_path / 'flywheel.db'}")
    else:
        mongo_url = request.getfixturevalue("mongo_url")
        opened = open_result_store(f"{mongo_url}/t_{uuid.uuid4().hex[:12]}")
    async with opened:
        yield opened


async def test_round_trip_keeps_everything(store: ResultStore) -> None:
    run = full_run()
    assert await store.save_run(run)
    loaded = await store.get_run(run.run_id)
    assert loaded == run
    assert loaded is not None
    assert loaded.model_dump(mode="json") == run.model_dump(mode="json")
    assert loaded.started_at == T0  # microseconds survive
    assert loaded.started_at.tzinfo is not None
    assert loaded.finished_at is not None and loaded.finished_at.utcoffset() == timedelta(hours=2)
    assert loaded.candidates[0].eval(EvalKind.BASE) == run.candidates[0].evals[0]


async def test_unknown_run_is_none(store: ResultStore) -> None:
    assert await store.get_run("no-such-run") is None


async def test_newer_or_equal_revision_replaces(store: ResultStore) -> None:
    first = brief_run("r1", workload="w1", status=RunStatus.RUNNING, minutes=0, revision=1)
    assert await store.save_run(first)
    same = first.model_copy(update={"error": "same revision, later snapshot"})
    assert await store.save_run(same)
    assert await store.get_run("r1") == same
    newer = first.model_copy(update={"status": RunStatus.COMPLETED, "revision": 5})
    assert await store.save_run(newer)
    assert await store.get_run("r1") == newer


async def test_older_revision_is_not_written(store: ResultStore) -> None:
    newer = full_run("r1", revision=7)
    assert await store.save_run(newer)
    older = brief_run("r1", workload="w1", status=RunStatus.RUNNING, minutes=99, revision=6)
    assert not await store.save_run(older)
    assert await store.get_run("r1") == newer
    assert [r.run_id for r in await store.list_runs(status=RunStatus.RUNNING)] == []


async def test_list_newest_first_with_filters_and_limit(store: ResultStore) -> None:
    runs = [
        brief_run("a", workload="w1", status=RunStatus.COMPLETED, minutes=10),
        brief_run("b", workload="w2", status=RunStatus.FAILED, minutes=30),
        brief_run("c", workload="w1", status=RunStatus.RUNNING, minutes=20),
        brief_run("d", workload="w1", status=RunStatus.COMPLETED, minutes=40),
        brief_run("e", workload="w2", status=RunStatus.COMPLETED, minutes=-5),
    ]
    for run in runs:
        assert await store.save_run(run)

    async def listed(**kwargs: object) -> list[str]:
        return [r.run_id for r in await store.list_runs(**kwargs)]  # type: ignore[arg-type]

    assert await listed() == ["d", "b", "c", "a", "e"]
    assert await listed(limit=2) == ["d", "b"]
    assert await listed(limit=0) == []
    assert await listed(workload_id="w1") == ["d", "c", "a"]
    assert await listed(status=RunStatus.COMPLETED) == ["d", "a", "e"]
    assert await listed(workload_id="w1", status=RunStatus.COMPLETED, limit=1) == ["d"]
    assert await listed(workload_id="w2", status=RunStatus.CANCELLED) == []
    assert (await store.list_runs(workload_id="w2"))[0] == runs[1]


async def test_list_orders_by_instant_across_time_zones(store: ResultStore) -> None:
    minus_five = timezone(timedelta(hours=-5))
    early = brief_run("early", workload="w", status=RunStatus.COMPLETED, minutes=0)
    # 08:00-05:00 is 13:00Z: later than 12:00Z though its wall clock reads earlier.
    late = early.model_copy(
        update={"run_id": "late", "started_at": datetime(2025, 3, 1, 8, tzinfo=minus_five)}
    )
    await store.save_run(early)
    await store.save_run(late)
    assert [r.run_id for r in await store.list_runs()] == ["late", "early"]


async def test_delete(store: ResultStore) -> None:
    await store.save_run(full_run("r1"))
    await store.save_run(full_run("r2"))
    assert await store.delete_run("r1")
    assert not await store.delete_run("r1")
    assert await store.get_run("r1") is None
    assert [r.run_id for r in await store.list_runs()] == ["r2"]


async def test_a_second_store_on_the_same_data_sees_the_runs(
    store: ResultStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    await store.save_run(full_run("r1"))
    if isinstance(store, SQLiteResultStore):
        url = f"sqlite:///{store.path}"
    else:
        assert isinstance(store, MongoResultStore)
        url = f"{request.getfixturevalue('mongo_url')}/{store.database}"
    async with open_result_store(url) as again:  # creates its indexes again: must be harmless
        assert await again.get_run("r1") == full_run("r1")
        assert await again.save_run(full_run("r1", revision=4))
    assert (await store.get_run("r1")) == full_run("r1", revision=4)


# --- choosing and reaching a store --------------------------------------------------------------


async def test_unreachable_mongodb_names_the_url_without_the_password() -> None:
    port = free_port()
    store = MongoResultStore(
        f"mongodb://flywheel:s3cr%40t@127.0.0.1:{port}/flywheel?authSource=admin",
        server_selection_timeout_ms=300,
    )
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as info:
        await store.get_run("r1")
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert f"mongodb://flywheel:***@127.0.0.1:{port}/flywheel" in message
    assert "s3cr" not in message
    assert "check that MongoDB is running" in message
    await store.aclose()


async def test_open_result_store_choices(tmp_path: Path) -> None:
    async with open_result_store(f"sqlite:///{tmp_path / 'x.db'}") as sqlite:
        assert isinstance(sqlite, SQLiteResultStore)
    assert not (tmp_path / "x.db").exists()  # nothing happens until first use
    async with open_result_store("mongodb://127.0.0.1:1/", mongodb_db="fromsettings") as mongo:
        assert isinstance(mongo, MongoResultStore)
        assert mongo.database == "fromsettings"
    url = "mongodb://127.0.0.1:1/fromurl?w=1"
    async with open_result_store(url, mongodb_db="fromsettings") as in_url:
        assert isinstance(in_url, MongoResultStore)
        assert in_url.database == "fromurl"


@pytest.mark.parametrize(
    "url", ["postgres://u:pw@db/runs", "runs.db", "http://localhost:9200", "sqlite:///"]
)
def test_unsupported_result_store_urls(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_result_store(url)
    assert "pw" not in str(info.value)
    assert "sqlite:///" in str(info.value)


def test_malformed_mongodb_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"invalid MongoDB result store URL mongodb://u:\*\*\*@"):
        open_result_store("mongodb://u:pw@127.0.0.1:notaport/db")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mongodb://h:27017/db", "db"),
        ("mongodb://u:p%2Fq@h1,h2:27018/my%20db?replicaSet=rs", "my db"),
        ("mongodb+srv://u:p@cluster.example.net/?retryWrites=true", None),
        ("mongodb://h", None),
    ],
)
def test_database_from_url(url: str, expected: str | None) -> None:
    assert mongodb_database_from_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mongodb://u:pw@h/db", "mongodb://u:***@h/db"),
        ("mongodb://u:p@w@h1,h2/db?x=1", "mongodb://u:***@h1,h2/db?x=1"),
        ("mongodb://u@h/db", "mongodb://u@h/db"),
        (
            "mongodb://h/db?tlsCertificateKeyFilePassword=zz",
            "mongodb://h/db?tlsCertificateKeyFilePassword=***",
        ),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
