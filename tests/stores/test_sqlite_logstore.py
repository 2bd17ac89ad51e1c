"""SQLiteLogStore: newest-first streaming reads, filters, counts and summaries on a real file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from flywheel.clients.logstore import LogStore, WorkloadSummary, open_log_store
from flywheel.clients.logstore.sqlite import SQLiteLogStore
from flywheel.clients.results.sqlite import SQLiteResultStore
from flywheel.clients.sqlite import sqlite_path_from_url
from flywheel.errors import ConfigError, ConnectionFailed, FlywheelError
from flywheel.schemas import FlywheelRunResult, LogRecord, RunStatus

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def record(n: int, *, workload: str = "w1", client: str = "c1", ts: Any = None) -> LogRecord:
    """A valid record whose user message carries ``n``; timestamp T0 + n seconds by default."""
    return LogRecord.model_validate(
        {
            "workload_id": workload,
            "client_id": client,
            "timestamp": ts if ts is not None else (T0 + timedelta(seconds=n)).isoformat(),
            "request": {"messages": [{"role": "user", "content": f"q{n}"}]},
            "response": {"choices": [{"message": {"role": "assistant", "content": f"a{n}"}}]},
        }
    )


def ids(batch: list[dict[str, Any]]) -> list[str]:
    return [r["request"]["messages"][0]["content"] for r in batch]


async def collect(store: LogStore, *args: Any, **kwargs: Any) -> list[list[dict[str, Any]]]:
    return [batch async for batch in store.iter_batches(*args, **kwargs)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteLogStore]:
    async with SQLiteLogStore(tmp_path / "nested" / "dir" / "flywheel.db") as opened:
        yield opened


async def test_creates_parent_folders_and_uses_wal(tmp_path: Path, store: SQLiteLogStore) -> None:
    assert await store.add([record(1)]) == 1
    path = tmp_path / "nested" / "dir" / "flywheel.db"
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(log_records)")}
    assert "log_records_by_client" in indexes


async def test_newest_first_whatever_the_insert_order(store: SQLiteLogStore) -> None:
    await store.add([record(n) for n in (3, 1, 4, 0, 2)])
    assert [ids(b) for b in await collect(store, "w1")] == [["q4", "q3", "q2", "q1", "q0"]]


async def test_equal_timestamps_come_later_stored_first_across_batches(
    store: SQLiteLogStore,
) -> None:
    same = T0.isoformat()
    await store.add([record(n, ts=same) for n in range(5)])
    await store.add([record(9)])
    batches = await collect(store, "w1", batch_size=2)
    assert [ids(b) for b in batches] == [["q9", "q4"], ["q3", "q2"], ["q1", "q0"]]


async def test_iso_and_epoch_timestamps_sort_together(store: SQLiteLogStore) -> None:
    await store.add(
        [
            record(1, ts=1_700_000_000),  # 2023-11-14T22:13:20Z
            record(2, ts="2023-11-14T22:13:21Z"),
            record(3, ts="2023-11-14T23:13:19+01:00"),  # 22:13:19Z
            record(4, ts=1_700_000_000.25),
        ]
    )
    [batch] = await collect(store, "w1")
    assert ids(batch) == ["q2", "q4", "q1", "q3"]
    assert [r["timestamp"] for r in batch] == [
        "2023-11-14T22:13:21Z",
        "2023-11-14T22:13:20.250000Z",
        "2023-11-14T22:13:20Z",
        "2023-11-14T23:13:19+01:00",
    ]


async def test_batches_are_json_mode_records(store: SQLiteLogStore) -> None:
    original = record(1).model_copy(update={"extra_field": {"k": [1, 2]}})
    await store.add([original])
    [[stored]] = await collect(store, "w1")
    assert stored == original.model_dump(mode="json")
    assert LogRecord.model_validate(stored) == original


async def test_batches_of_batch_size_and_limit(store: SQLiteLogStore) -> None:
    await store.add([record(n) for n in range(7)])
    assert [len(b) for b in await collect(store, "w1", batch_size=3)] == [3, 3, 1]
    assert [len(b) for b in await collect(store, "w1", batch_size=3, limit=5)] == [3, 2]
    assert [len(b) for b in await collect(store, "w1", batch_size=3, limit=6)] == [3, 3]
    assert [len(b) for b in await collect(store, "w1", batch_size=100, limit=50)] == [7]
    assert await collect(store, "w1", limit=0) == []
    assert ids((await collect(store, "w1", limit=2))[0]) == ["q6", "q5"]
    assert await collect(store, "nobody") == []


async def test_reads_one_batch_at_a_time(store: SQLiteLogStore) -> None:
    """The next page is read only when asked for: a record stored in between is seen."""
    await store.add([record(n) for n in range(10, 15)])
    batches = store.iter_batches("w1", batch_size=2)
    first = await anext(batches)
    assert ids(first) == ["q14", "q13"]
    # Stored after the first page: an older record must still show up, a newer one must not
    # (keyset pagination continues below the last key seen).
    await store.add([record(1), record(99)])
    rest = [ids(b) async for b in batches]
    assert rest == [["q12", "q11"], ["q10", "q1"]]


async def test_client_filter(store: SQLiteLogStore) -> None:
    await store.add([record(n, client="a" if n % 2 else "b") for n in range(6)])
    await store.add([record(50, workload="w2", client="a")])
    assert ids((await collect(store, "w1", "a"))[0]) == ["q5", "q3", "q1"]
    assert ids((await collect(store, "w1", "b"))[0]) == ["q4", "q2", "q0"]
    assert ids((await collect(store, "w1"))[0]) == ["q5", "q4", "q3", "q2", "q1", "q0"]
    assert [len(b) for b in await collect(store, "w1", "a", batch_size=2)] == [2, 1]
    assert await collect(store, "w1", "nobody") == []


async def test_iter_raw_yields_the_stored_json(store: SQLiteLogStore) -> None:
    original = record(1).model_copy(update={"extra_field": {"k": [1, 2]}})
    await store.add([original, record(2, ts="2024-01-01T01:00:02+01:00"), record(3)])
    raw = [batch async for batch in store.iter_raw("w1", batch_size=2)]
    parsed = [batch async for batch in store.iter_batches("w1", batch_size=2)]
    assert all(isinstance(doc, bytes) for batch in raw for doc in batch)
    assert [[orjson.loads(doc) for doc in batch] for batch in raw] == parsed
    assert [ids(b) for b in parsed] == [["q3", "q2"], ["q1"]]
    assert raw[1][0] == original.model_dump_json().encode()
    assert orjson.loads(raw[0][1])["timestamp"] == "2024-01-01T01:00:02+01:00"
    assert [len(b) async for b in store.iter_raw("w1", limit=1)] == [1]
    assert [b async for b in store.iter_raw("w1", limit=0)] == []
    with pytest.raises(ValueError, match="limit"):
        _ = [b async for b in store.iter_raw("w1", limit=-1)]


async def test_time_window(store: SQLiteLogStore) -> None:
    await store.add([record(n, client="a" if n % 2 else "b") for n in range(10)])
    await store.add([record(4, client="b", ts=T0.timestamp() + 4.5), record(50, workload="w2")])
    since, until = T0 + timedelta(seconds=3), T0 + timedelta(seconds=7)
    window = [ids(b) for b in await collect(store, "w1", since=since, until=until, batch_size=2)]
    assert window == [["q6", "q5"], ["q4", "q4"], ["q3"]], "since inclusive, until exclusive"
    assert [ids(b) for b in await collect(store, "w1", "a", since=since, until=until)] == [
        ["q5", "q3"]
    ]
    assert [ids(b) for b in await collect(store, "w1", since=since, until=until, limit=2)] == [
        ["q6", "q5"]
    ]
    naive = {"since": since.replace(tzinfo=None), "until": until.replace(tzinfo=None)}
    assert await store.count("w1", **naive) == 5, "naive datetimes are UTC"
    offset = timezone(timedelta(hours=2))
    assert await store.count("w1", since=since.astimezone(offset)) == 8
    assert await store.count("w1", until=T0 + timedelta(seconds=1)) == 1
    assert await store.count(since=since, until=until) == 5
    assert await store.count(client_id="b", since=since, until=until) == 3
    assert await collect(store, "w1", since=until, until=since) == []
    assert await store.workloads(since=since, until=until) == [
        WorkloadSummary("w1", "a", 2, since, T0 + timedelta(seconds=5)),
        WorkloadSummary("w1", "b", 3, T0 + timedelta(seconds=4), T0 + timedelta(seconds=6)),
    ]
    raw = [ids([orjson.loads(d) for d in b]) async for b in store.iter_raw("w1", since=until)]
    assert raw == [["q9", "q8", "q7"]]


async def test_counts(store: SQLiteLogStore) -> None:
    assert await store.count() == 0
    await store.add([record(n, client="a" if n < 3 else "b") for n in range(5)])
    await store.add([record(9, workload="w2", client="a")])
    assert await store.count() == 6
    assert await store.count("w1") == 5
    assert await store.count("w1", "a") == 3
    assert await store.count("w1", "b") == 2
    assert await store.count(client_id="a") == 4
    assert await store.count("w3") == 0


async def test_workloads_summary(store: SQLiteLogStore) -> None:
    assert await store.workloads() == []
    await store.add([record(n, client="b") for n in (5, 1, 3)])
    await store.add([record(7, client="a"), record(2, workload="w0", client="z")])
    assert await store.workloads() == [
        WorkloadSummary("w0", "z", 1, T0 + timedelta(seconds=2), T0 + timedelta(seconds=2)),
        WorkloadSummary("w1", "a", 1, T0 + timedelta(seconds=7), T0 + timedelta(seconds=7)),
        WorkloadSummary("w1", "b", 3, T0 + timedelta(seconds=1), T0 + timedelta(seconds=5)),
    ]


async def test_add_nothing(store: SQLiteLogStore) -> None:
    assert await store.add([]) == 0
    assert await store.count() == 0


async def test_data_persists_across_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flywheel.db'}"
    async with open_log_store(url) as first:
        await first.add([record(n) for n in range(3)])
    async with open_log_store(url) as second:
        assert await second.count("w1") == 3


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SQLiteLogStore(tmp_path / "x.db")
    await store.add([record(1)])
    await store.aclose()
    await store.aclose()  # idempotent
    with pytest.raises(ConnectionFailed, match="closed"):
        await store.count()


async def test_shares_a_file_with_the_result_store(tmp_path: Path) -> None:
    path = tmp_path / "flywheel.db"
    run = FlywheelRunResult(run_id="r1", workload_id="w1", status=RunStatus.RUNNING, started_at=T0)
    async with SQLiteLogStore(path) as logs, SQLiteResultStore(path) as results:
        await logs.add([record(1)])
        assert await results.save_run(run)
        await logs.add([record(2)])
        assert await results.get_run("r1") == run
        assert await logs.count() == 2
    with sqlite3.connect(path) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert {"log_records", "flywheel_runs"} <= tables


async def test_unusable_path_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = SQLiteLogStore(blocker / "flywheel.db")
    with pytest.raises(ConnectionFailed, match="a-file"):
        await store.count()
    await store.aclose()


async def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are notes, not a database" * 100)
    store = SQLiteLogStore(path)
    with pytest.raises(ConnectionFailed, match=r"notes\.db"):
        await store.add([record(1)])
    await store.aclose()


async def test_bad_batch_size(store: SQLiteLogStore) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await collect(store, "w1", batch_size=0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////abs/path/flywheel.db", Path("/abs/path/flywheel.db")),
        ("sqlite:///relative/flywheel.db", Path("relative/flywheel.db")),
        ("sqlite:///flywheel.db", Path("flywheel.db")),
        ("SQLITE:///flywheel.db", Path("flywheel.db")),
        ("sqlite:///~/fw/flywheel.db", Path("~/fw/flywheel.db").expanduser()),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_urls(url: str, expected: Path | str) -> None:
    assert sqlite_path_from_url(url, what="log store") == expected


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite:///some/folder/", "sqlite://flywheel.db"])
def test_sqlite_urls_without_a_file(url: str) -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        open_log_store(url)


def test_open_log_store_picks_sqlite(tmp_path: Path) -> None:
    store = open_log_store(f"sqlite:///{tmp_path / 'logs.db'}")
    assert isinstance(store, SQLiteLogStore)
    assert store.path == tmp_path / "logs.db"
    assert not (tmp_path / "logs.db").exists()  # nothing happens until first use


@pytest.mark.parametrize("url", ["postgres://db/logs", "flywheel.db", "mongodb://h/db"])
def test_other_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_log_store(url)
    message = str(info.value)
    assert repr(url) in message
    assert "sqlite:///relative/path.db" in message
    assert "sqlite:////absolute/path.db" in message


async def test_memory_database_works() -> None:
    async with open_log_store("sqlite:///:memory:") as store:
        await store.add([record(1), record(2)])
        assert ids((await collect(store, "w1"))[0]) == ["q2", "q1"]


async def test_fetch_raw_returns_records_by_their_batch_keys(store: SQLiteLogStore) -> None:
    await store.add([record(n) for n in range(1200)])
    batches = [batch async for batch in store.iter_raw("w1", batch_size=500)]
    keys = [key for batch in batches for key in batch.keys]
    docs = [doc for batch in batches for doc in batch]
    assert len(set(keys)) == 1200
    wanted = [keys[1100], keys[3], keys[700], keys[3]]  # any order, repeats, several pages
    assert await store.fetch_raw(wanted) == [docs[1100], docs[3], docs[700], docs[3]]
    assert await store.fetch_raw([]) == []


async def test_fetch_raw_names_records_that_are_gone(
    tmp_path: Path, store: SQLiteLogStore
) -> None:
    await store.add([record(1), record(2)])
    keys = [key async for batch in store.iter_raw("w1") for key in batch.keys]
    with sqlite3.connect(tmp_path / "nested" / "dir" / "flywheel.db") as conn:
        conn.execute("DELETE FROM log_records WHERE id = ?", (keys[0],))
    with pytest.raises(FlywheelError, match=r"1 log records disappeared .* run the flywheel again"):
        await store.fetch_raw(keys)
