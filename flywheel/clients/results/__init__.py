"""The result store: one :class:`FlywheelRunResult` snapshot per run, newest revision wins.

Chosen by URL with :func:`open_result_store`: ``sqlite:///PATH`` (embedded default, may share
the log store's file) or ``mongodb://…`` / ``mongodb+srv://…`` (collection ``flywheel_runs``).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self
from urllib.parse import unquote

from pydantic import ValidationError

from flywheel.clients.urls import redact_url
from flywheel.errors import ConfigError
from flywheel.schemas import FlywheelRunResult, RunStatus

__all__ = [
    "ResultStore",
    "mongodb_database_from_url",
    "open_result_store",
    "redact_url",
    "stored_run_unreadable",
]

ACCEPTED_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, mongodb://host:27017/db "
    "or mongodb+srv://host/db"
)


class ResultStore(Protocol):
    """Saves and reads run snapshots; a save never replaces a newer revision by an older one."""

    async def save_run(self, run: FlywheelRunResult) -> bool:
        """Upsert by run_id unless a higher revision is stored; return whether it was written."""
        ...

    async def get_run(self, run_id: str) -> FlywheelRunResult | None:
        """The stored snapshot of ``run_id``, or None."""
        ...

    async def list_runs(
        self,
        *,
        workload_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
    ) -> list[FlywheelRunResult]:
        """Up to ``limit`` runs, newest ``started_at`` first, optionally filtered."""
        ...

    async def delete_run(self, run_id: str) -> bool:
        """Delete ``run_id``; return whether it existed."""
        ...

    async def aclose(self) -> None:
        """Release the connection; the store can't be used afterwards."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def open_result_store(url: str, *, mongodb_db: str = "flywheel") -> ResultStore:
    """The result store at ``url``; it connects on first use, so this does no network I/O.

    For MongoDB, a database named in the URL path wins over ``mongodb_db``. Raises ConfigError
    for a URL it cannot serve, naming the accepted forms.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from flywheel.clients.results.sqlite import SQLiteResultStore
        from flywheel.clients.sqlite import sqlite_path_from_url

        return SQLiteResultStore(sqlite_path_from_url(url, what="result store"))
    if scheme in ("mongodb", "mongodb+srv"):
        from flywheel.clients.results.mongodb import MongoResultStore

        return MongoResultStore(url, database=mongodb_database_from_url(url) or mongodb_db)
    raise ConfigError(f"invalid result_store_url {redact_url(url)!r}: expected {ACCEPTED_FORMS}")


def mongodb_database_from_url(url: str) -> str | None:
    """The database named in a MongoDB URL's path (``mongodb://h/NAME?…``), or None."""
    before_query = url.split("://", 1)[-1].split("?", 1)[0]
    hosts_and_path = before_query.rpartition("@")[2]
    _hosts, slash, path = hosts_and_path.partition("/")
    name = unquote(path) if slash else ""
    return name or None


def stored_run_unreadable(run_id: str, exc: ValidationError) -> str:
    """The message for a stored snapshot that this version's schema rejects."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "document"
    return (
        f"stored run {run_id} cannot be read by this version of flywheel ({where}: "
        f"{first.get('msg')}); it was probably written by another version: read it with that "
        "version or delete it"
    )
