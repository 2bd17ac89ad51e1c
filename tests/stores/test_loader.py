"""load_jsonl: every non-blank line is stored or rejected with its line number and reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from flywheel.clients.logstore.loader import LoadReport, load_jsonl
from flywheel.clients.logstore.sqlite import SQLiteLogStore
from flywheel.curation.log_lines import Rejection
from flywheel.errors import FlywheelError, NotFoundError


def good(n: int, **fields: Any) -> bytes:
    data: dict[str, Any] = {
        "workload_id": "w1",
        "client_id": "c1",
        "timestamp": 1_700_000_000 + n,
        "request": {"messages": [{"role": "user", "content": f"q{n}"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": f"a{n}"}}]},
    }
    data.update(fields)
    return orjson.dumps({k: v for k, v in data.items() if v is not None})


MIXED_LINES = [
    good(1),  # 1
    b'{"workload_id": "w1", "client_id": ',  # 2 bad JSON
    b"",  # 3 blank
    good(2, timestamp="2023-11-14T22:13:22Z"),  # 4 ISO timestamp
    good(3, request=None),  # 5 missing request
    good(4, timestamp=[1, 2]),  # 6 wrong type
    b'{"workload_id": "w\xe9"}',  # 7 not UTF-8
    b"   \t",  # 8 whitespace only
    b"[1, 2, 3]",  # 9 not an object
    good(5, request={"messages": "hello"}),  # 10 wrong type
    good(6, client_id=None),  # 11 missing client_id
    good(7),  # 12
    good(8, response={"choices": []}),  # 13 (empty choices are the validator's business)
]

MIXED_REJECTIONS = [
    Rejection(2, "bad JSON: unexpected end of data at column 35"),
    Rejection(5, "missing field: request"),
    Rejection(6, "wrong type: timestamp must be epoch seconds or an ISO 8601 string (got array)"),
    Rejection(7, "not UTF-8: invalid byte 0xe9 at byte 19"),
    Rejection(9, "not a JSON object (got array)"),
    Rejection(10, "wrong type: request.messages must be a list (got str)"),
    Rejection(11, "missing field: client_id"),
]


def write(path: Path, lines: list[bytes], *, newline: bytes = b"\n", final: bool = True) -> Path:
    path.write_bytes(newline.join(lines) + (newline if final else b""))
    return path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteLogStore]:
    async with SQLiteLogStore(tmp_path / "flywheel.db") as opened:
        yield opened


async def contents(store: SQLiteLogStore, workload: str = "w1") -> list[str]:
    return [
        r["request"]["messages"][0]["content"]
        async for batch in store.iter_batches(workload)
        for r in batch
    ]


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
async def test_mixed_file(tmp_path: Path, store: SQLiteLogStore, batch_size: int) -> None:
    path = write(tmp_path / "logs.jsonl", MIXED_LINES)
    report = await load_jsonl(path, store, batch_size=batch_size)
    assert report == LoadReport(
        accepted=4, rejected=7, rejections=MIXED_REJECTIONS, rejections_truncated=False
    )
    assert await contents(store) == ["q8", "q7", "q2", "q1"]


async def test_crlf_and_no_final_newline(tmp_path: Path, store: SQLiteLogStore) -> None:
    path = write(tmp_path / "logs.jsonl", MIXED_LINES, newline=b"\r\n", final=False)
    report = await load_jsonl(path, store)
    assert (report.accepted, report.rejected) == (4, 7)
    assert report.rejections == MIXED_REJECTIONS


async def test_kept_rejections_are_capped_but_all_counted(
    tmp_path: Path, store: SQLiteLogStore
) -> None:
    path = write(tmp_path / "logs.jsonl", MIXED_LINES)
    report = await load_jsonl(path, store, batch_size=2, max_rejections_kept=3)
    assert report.rejected == 7
    assert report.rejections == MIXED_REJECTIONS[:3]
    assert report.rejections_truncated
    assert report.accepted == 4


async def test_overrides(tmp_path: Path, store: SQLiteLogStore) -> None:
    lines = [good(1, workload_id=None, client_id=None), good(2, workload_id="other"), good(3)]
    path = write(tmp_path / "logs.jsonl", lines)
    report = await load_jsonl(path, store, workload_id="router", client_id="app")
    assert report == LoadReport(accepted=3, rejected=0)
    assert await store.count("router", "app") == 3
    assert await store.count() == 3


async def test_ids_missing_without_overrides(tmp_path: Path, store: SQLiteLogStore) -> None:
    path = write(tmp_path / "logs.jsonl", [good(1, workload_id=None), good(2)])
    report = await load_jsonl(path, store, client_id="app")
    assert report.rejections == [Rejection(1, "missing field: workload_id")]
    assert await store.count("w1", "app") == 1


async def test_many_lines_in_batches(tmp_path: Path, store: SQLiteLogStore) -> None:
    lines = [good(n) if n % 10 else b"{bad" for n in range(1, 2501)]
    path = write(tmp_path / "logs.jsonl", lines)
    report = await load_jsonl(path, store, batch_size=300)
    assert (report.accepted, report.rejected) == (2250, 250)
    assert [r.line_no for r in report.rejections] == list(range(10, 2501, 10))
    assert await store.count("w1") == 2250


async def test_empty_and_blank_files(tmp_path: Path, store: SQLiteLogStore) -> None:
    assert await load_jsonl(write(tmp_path / "a.jsonl", []), store) == LoadReport()
    assert await load_jsonl(write(tmp_path / "b.jsonl", [b"", b" ", b""]), store) == LoadReport()


async def test_missing_file_names_the_path(tmp_path: Path, store: SQLiteLogStore) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(NotFoundError, match=r"log file not found: .*nope\.jsonl"):
        await load_jsonl(path, store)


async def test_a_directory_is_not_a_log_file(tmp_path: Path, store: SQLiteLogStore) -> None:
    with pytest.raises(FlywheelError, match="is a directory"):
        await load_jsonl(tmp_path, store)


async def test_bad_batch_size(tmp_path: Path, store: SQLiteLogStore) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        await load_jsonl(write(tmp_path / "a.jsonl", [good(1)]), store, batch_size=0)
