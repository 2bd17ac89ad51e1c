"""RefetchingKeeper: survivors kept by log-store key, records fetched back on demand."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import flywheel.clients.logstore.refetch as refetch
from flywheel.clients.logstore.refetch import RefetchingKeeper
from flywheel.clients.logstore.sqlite import SQLiteLogStore
from flywheel.schemas import LogRecord


def record(n: int) -> LogRecord:
    return LogRecord.model_validate(
        {
            "workload_id": "w",
            "client_id": "c",
            "timestamp": f"2026-01-01T00:00:{n:02}Z",
            "request": {"messages": [{"role": "user", "content": f"q{n}"}]},
            "response": {"choices": [{"message": {"role": "assistant", "content": f"a{n}"}}]},
        }
    )


def question(raw: bytes | str | dict) -> str:
    data = raw if isinstance(raw, dict) else orjson.loads(raw)
    return data["request"]["messages"][0]["content"]


async def test_load_fetches_only_what_is_asked_a_page_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refetch, "FETCH_PAGE", 2)
    async with SQLiteLogStore(tmp_path / "logs.db") as store:
        await store.add([record(n) for n in range(6)])
        batches = [b async for b in store.iter_raw("w")]
        batch = batches[0]  # newest first: q5 … q0
        calls: list[int] = []
        fetch = store.fetch_raw

        async def counting_fetch(keys):  # type: ignore[no-untyped-def]
            calls.append(len(keys))
            return await fetch(keys)

        monkeypatch.setattr(store, "fetch_raw", counting_fetch)
        keeper = RefetchingKeeper(store)
        for key in batch.keys:
            keeper.append(key)
        parsed = {"request": {"messages": [{"content": "parsed"}]}}
        keeper.append(parsed)  # an already parsed record is kept as is
        assert len(keeper) == 7
        assert keeper[6] is parsed
        with pytest.raises(LookupError, match="position 1 was not loaded"):
            keeper[1]
        await keeper.load([1, 4, 5, 1, 6])
        assert calls == [2, 1], "three distinct keys in pages of two; the parsed one needs none"
        assert [question(keeper[p]) for p in (1, 4, 5)] == ["q4", "q1", "q0"]
        await keeper.load([4, 5])
        assert calls == [2, 1], "loaded records are not fetched again"
        keeper.forget([4])
        with pytest.raises(LookupError):
            keeper[4]
        assert question(keeper[5]) == "q0"
