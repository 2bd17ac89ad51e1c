"""The embedded result store: table ``flywheel_runs`` in a SQLite file (often the log store's).

Each row holds the run's JSON snapshot plus the columns used to filter and sort. A conditional
upsert keeps the newest revision, so concurrent or retried saves can't roll a run back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flywheel.clients.closing import AsyncClosing
from flywheel.clients.results import stored_run_unreadable
from flywheel.clients.sqlite import DEFAULT_BUSY_TIMEOUT_MS, LazySQLite
from flywheel.errors import InvalidDataError
from flywheel.schemas import FlywheelRunResult, RunStatus

__all__ = ["SQLiteResultStore", "sortable_utc"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flywheel_runs (
    run_id TEXT PRIMARY KEY,
    workload_id TEXT NOT NULL,
    client_id TEXT,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,  -- UTC, fixed-width ISO 8601: sorts as text
    revision INTEGER NOT NULL,
    doc TEXT NOT NULL          -- FlywheelRunResult as JSON
);
CREATE INDEX IF NOT EXISTS flywheel_runs_workload_id ON flywheel_runs (workload_id);
CREATE INDEX IF NOT EXISTS flywheel_runs_started_at ON flywheel_runs (started_at);
"""

_UPSERT = """
INSERT INTO flywheel_runs (run_id, workload_id, client_id, status, started_at, revision, doc)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET
    workload_id = excluded.workload_id,
    client_id = excluded.client_id,
    status = excluded.status,
    started_at = excluded.started_at,
    revision = excluded.revision,
    doc = excluded.doc
WHERE excluded.revision >= flywheel_runs.revision
"""


def sortable_utc(value: datetime) -> str:
    """``value`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, whose text order is time order."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SQLiteResultStore(AsyncClosing):
    """Run snapshots in SQLite; safe to share a file with :class:`SQLiteLogStore`."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self._sqlite = LazySQLite(
            path,
            what="result store",
            table="flywheel_runs",
            schema=_SCHEMA,
            busy_timeout_ms=busy_timeout_ms,
        )

    async def save_run(self, run: FlywheelRunResult) -> bool:
        """Insert or replace the run's row unless the stored revision is higher."""
        row = (
            run.run_id,
            run.workload_id,
            run.client_id,
            run.status.value,
            sortable_utc(run.started_at),
            run.revision,
            run.model_dump_json(),
        )
        db = await self._sqlite.connection()
        async with db.execute(_UPSERT, row) as cur:
            return cur.rowcount == 1

    async def get_run(self, run_id: str) -> FlywheelRunResult | None:
        """The stored snapshot of ``run_id``, or None."""
        db = await self._sqlite.connection()
        async with db.execute("SELECT doc FROM flywheel_runs WHERE run_id = ?", (run_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else _load(run_id, row[0])

    async def list_runs(
        self,
        *,
        workload_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
    ) -> list[FlywheelRunResult]:
        """Up to ``limit`` runs, newest ``started_at`` first (ties: higher run_id first)."""
        if limit < 0:
            raise ValueError(f"limit must not be negative (got {limit})")
        clauses: list[str] = []
        args: list[Any] = []
        if workload_id is not None:
            clauses.append("workload_id = ?")
            args.append(workload_id)
        if status is not None:
            clauses.append("status = ?")
            args.append(RunStatus(status).value)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        sql = (
            f"SELECT run_id, doc FROM flywheel_runs {where}"
            "ORDER BY started_at DESC, run_id DESC LIMIT ?"
        )
        db = await self._sqlite.connection()
        async with db.execute(sql, (*args, limit)) as cur:
            rows = await cur.fetchall()
        return [_load(run_id, doc) for run_id, doc in rows]

    async def delete_run(self, run_id: str) -> bool:
        """Delete ``run_id``; return whether it existed."""
        db = await self._sqlite.connection()
        async with db.execute("DELETE FROM flywheel_runs WHERE run_id = ?", (run_id,)) as cur:
            return cur.rowcount == 1

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        await self._sqlite.aclose()


def _load(run_id: str, doc: str) -> FlywheelRunResult:
    try:
        return FlywheelRunResult.model_validate_json(doc)
    except ValidationError as exc:
        raise InvalidDataError(stored_run_unreadable(run_id, exc)) from None
