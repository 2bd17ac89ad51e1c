"""The embedded log store: one SQLite file (WAL mode), read newest first with keyset pagination.

The file may be shared with the SQLite result store: each store opens its own connection with a
busy timeout, and WAL lets readers and one writer work at the same time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from flywheel.clients.closing import AsyncClosing
from flywheel.clients.logstore import (
    RawBatch,
    RawLog,
    RecordKey,
    WorkloadSummary,
    check_page_args,
)
from flywheel.clients.sqlite import DEFAULT_BUSY_TIMEOUT_MS, LazySQLite
from flywheel.errors import FlywheelError
from flywheel.schemas import LogRecord

_FETCH_CHUNK = 500
"""Row ids per ``IN (...)`` lookup (well under SQLite's bound-parameter limit)."""

__all__ = ["SQLiteLogStore", "micros_to_datetime", "to_epoch_micros"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_records (
    id INTEGER PRIMARY KEY,
    workload_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    ts INTEGER NOT NULL,  -- epoch microseconds (UTC) of the record's timestamp
    record TEXT NOT NULL  -- the LogRecord as JSON
);
CREATE INDEX IF NOT EXISTS log_records_by_client
    ON log_records (workload_id, client_id, ts DESC, id DESC);
CREATE INDEX IF NOT EXISTS log_records_by_workload
    ON log_records (workload_id, ts DESC, id DESC);
"""


def to_epoch_micros(value: datetime) -> int:
    """Exact epoch microseconds of an aware (or UTC-naive) datetime; sorts like the instant."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICROSECOND


def micros_to_datetime(micros: int) -> datetime:
    """The aware UTC datetime of epoch microseconds (inverse of :func:`to_epoch_micros`)."""
    return _EPOCH + timedelta(microseconds=micros)


class SQLiteLogStore(AsyncClosing):
    """Log records in a SQLite table, indexed for newest-first reads per workload (and client)."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self._sqlite = LazySQLite(
            path, what="log store", table="log", schema=_SCHEMA, busy_timeout_ms=busy_timeout_ms
        )
        self._write_lock = asyncio.Lock()

    async def add(self, records: Sequence[LogRecord]) -> int:
        """Insert ``records`` in one transaction (all or none); return how many were inserted."""
        if not records:
            return 0
        rows = [
            (r.workload_id, r.client_id, to_epoch_micros(r.timestamp), r.model_dump_json())
            for r in records
        ]
        db = await self._sqlite.connection()
        async with self._write_lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.executemany(
                    "INSERT INTO log_records (workload_id, client_id, ts, record) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                await db.rollback()
                raise
            await db.commit()
        return len(rows)

    async def iter_raw(
        self,
        workload_id: str,
        client_id: str | None = None,
        *,
        limit: int | None = None,
        batch_size: int = 1000,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AsyncIterator[RawBatch]:
        """Yield the workload's records newest first as the stored JSON (UTF-8 bytes), keyed
        by row id."""
        async for rows in self._pages(workload_id, client_id, limit, batch_size, since, until):
            yield rows

    async def fetch_raw(self, keys: Sequence[RecordKey]) -> list[RawLog]:
        """The stored JSON of the rows with ids ``keys``, in that order."""
        found: dict[RecordKey, bytes] = {}
        db = await self._sqlite.connection()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _FETCH_CHUNK):
            chunk = unique[start : start + _FETCH_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, CAST(record AS BLOB) FROM log_records WHERE id IN ({marks})"
            async with db.execute(sql, chunk) as cur:
                found.update(await cur.fetchall())
        missing = [key for key in unique if key not in found]
        if missing:
            raise FlywheelError(
                f"{len(missing)} log records disappeared from {self.path} while they were being "
                f"curated (row ids {missing[:5]}); run the flywheel again"
            )
        return [found[key] for key in keys]

    async def iter_batches(
        self,
        workload_id: str,
        client_id: str | None = None,
        *,
        limit: int | None = None,
        batch_size: int = 1000,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the workload's records newest first as JSON-mode dicts (see :meth:`iter_raw`)."""
        async for rows in self._pages(workload_id, client_id, limit, batch_size, since, until):
            yield [orjson.loads(text) for text in rows]

    async def _pages(
        self,
        workload_id: str,
        client_id: str | None,
        limit: int | None,
        batch_size: int,
        since: datetime | None,
        until: datetime | None,
    ) -> AsyncIterator[RawBatch]:
        """The stored JSON of matching records, one page query per batch (keyset, no OFFSET)."""
        check_page_args(limit, batch_size)
        remaining = limit
        where, params = _where(workload_id, client_id, since, until)
        # As a BLOB the JSON comes back as bytes, with no decoding into str on the way.
        first_sql = f"SELECT id, ts, CAST(record AS BLOB) FROM log_records WHERE {where} "
        next_sql = first_sql + "AND (ts, id) < (?, ?) "
        order = "ORDER BY ts DESC, id DESC LIMIT ?"
        cursor: tuple[int, int] | None = None
        db = await self._sqlite.connection()
        while remaining is None or remaining > 0:
            size = batch_size if remaining is None else min(batch_size, remaining)
            if cursor is None:
                sql, args = first_sql + order, (*params, size)
            else:
                sql, args = next_sql + order, (*params, cursor[0], cursor[1], size)
            async with db.execute(sql, args) as cur:
                rows = list(await cur.fetchall())
            if not rows:
                return
            last_id, last_ts, _ = rows[-1]
            cursor = (last_ts, last_id)
            page = RawBatch([row[2] for row in rows], [row[0] for row in rows])
            del rows
            if remaining is not None:
                remaining -= len(page)
            yield page
            if len(page) < size:
                return

    async def count(
        self,
        workload_id: str | None = None,
        client_id: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many records match; None matches every workload (or client)."""
        where, args = _where(workload_id, client_id, since, until)
        db = await self._sqlite.connection()
        async with db.execute(f"SELECT COUNT(*) FROM log_records WHERE {where}", args) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def workloads(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[WorkloadSummary]:
        """One summary per (workload_id, client_id), ordered by workload then client."""
        where, args = _where(None, None, since, until)
        db = await self._sqlite.connection()
        sql = (
            "SELECT workload_id, client_id, COUNT(*), MIN(ts), MAX(ts) FROM log_records "
            f"WHERE {where} GROUP BY workload_id, client_id ORDER BY workload_id, client_id"
        )
        async with db.execute(sql, args) as cur:
            rows = await cur.fetchall()
        return [
            WorkloadSummary(
                workload_id=w,
                client_id=c,
                records=int(n),
                oldest=micros_to_datetime(oldest),
                newest=micros_to_datetime(newest),
            )
            for w, c, n, oldest, newest in rows
        ]

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        await self._sqlite.aclose()


def _where(
    workload_id: str | None,
    client_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (never empty) and its parameters for the given filters and window."""
    clauses: list[str] = []
    args: list[Any] = []
    if workload_id is not None:
        clauses.append("workload_id = ?")
        args.append(workload_id)
    if client_id is not None:
        clauses.append("client_id = ?")
        args.append(client_id)
    if since is not None:
        clauses.append("ts >= ?")
        args.append(to_epoch_micros(since))
    if until is not None:
        clauses.append("ts < ?")
        args.append(to_epoch_micros(until))
    return (" AND ".join(clauses) or "1 = 1"), tuple(args)
