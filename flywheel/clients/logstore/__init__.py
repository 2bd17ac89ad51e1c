"""The log store: where logged LLM calls live until a flywheel run curates them.

Chosen by URL with :func:`open_log_store`. ``sqlite:///PATH`` is the embedded default (one file,
no server); the blueprint's Elasticsearch index is not available in this version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from flywheel.clients.urls import redact_url
from flywheel.errors import ConfigError
from flywheel.schemas import LogRecord

__all__ = ["LogStore", "WorkloadSummary", "open_log_store"]

ACCEPTED_FORMS = "sqlite:///relative/path.db or sqlite:////absolute/path.db"


@dataclass(frozen=True, slots=True)
class WorkloadSummary:
    """How many records one (workload, client) pair has, and the time span they cover."""

    workload_id: str
    client_id: str
    records: int
    oldest: datetime
    newest: datetime


class LogStore(Protocol):
    """Stores log records and streams a workload's records back, newest first."""

    async def add(self, records: Sequence[LogRecord]) -> int:
        """Store ``records`` (all or none) and return how many were stored."""
        ...

    def iter_batches(
        self,
        workload_id: str,
        client_id: str | None = None,
        *,
        limit: int | None = None,
        batch_size: int = 1000,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the workload's records as JSON-mode dicts in batches, newest first.

        Records with equal timestamps come later-stored first. ``client_id`` None means every
        client; ``limit`` caps the total. Only one batch is held at a time: the next batch is read
        when the consumer asks for it.
        """
        ...

    async def count(self, workload_id: str | None = None, client_id: str | None = None) -> int:
        """How many records match (None matches every value)."""
        ...

    async def workloads(self) -> list[WorkloadSummary]:
        """One summary per (workload_id, client_id), ordered by workload then client."""
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


def open_log_store(url: str) -> LogStore:
    """The log store at ``url``; it connects on first use, so this does no I/O.

    Raises ConfigError for a URL it cannot serve, naming the accepted forms.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from flywheel.clients.logstore.sqlite import SQLiteLogStore
        from flywheel.clients.sqlite import sqlite_path_from_url

        return SQLiteLogStore(sqlite_path_from_url(url, what="log store"))
    if scheme in ("http", "https"):
        raise ConfigError(
            f"log_store_url {redact_url(url)!r}: the Elasticsearch log store is not available "
            f"in this version; use {ACCEPTED_FORMS}"
        )
    raise ConfigError(f"invalid log_store_url {redact_url(url)!r}: expected {ACCEPTED_FORMS}")
