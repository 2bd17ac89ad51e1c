"""The log store: where logged LLM calls live until a flywheel run curates them.

Chosen by URL with :func:`open_log_store`: ``sqlite:///PATH`` is the embedded default (one file,
no server); ``http(s)://HOST:PORT[/INDEX]`` is the blueprint's Elasticsearch log index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from flywheel.clients.urls import redact_url
from flywheel.errors import ConfigError
from flywheel.schemas import LogRecord

RawLog = str | bytes
"""One log record as JSON text."""

RecordKey = int | str
"""A stored record's identity in its store (an SQLite row id, an Elasticsearch ``_id``)."""


class RawBatch(list[RawLog]):
    """A batch of :data:`RawLog` with each record's :data:`RecordKey` in ``keys`` (same order),
    so a reader can drop the text and fetch the few records it needs again later."""

    __slots__ = ("keys",)

    def __init__(self, docs: list[RawLog], keys: list[RecordKey]) -> None:
        super().__init__(docs)
        if len(keys) != len(docs):
            raise ValueError(f"{len(keys)} keys for {len(docs)} records")
        self.keys = keys

__all__ = [
    "LogStore",
    "RawBatch",
    "RawLog",
    "RecordKey",
    "WorkloadSummary",
    "check_page_args",
    "open_log_store",
    "to_utc",
]

ACCEPTED_FORMS = (
    "sqlite:///relative/path.db or sqlite:////absolute/path.db (embedded), or "
    "http(s)://host:9200[/index] (Elasticsearch)"
)


@dataclass(frozen=True, slots=True)
class WorkloadSummary:
    """How many records one (workload, client) pair has, and the time span they cover.

    ``oldest``/``newest`` are None only when no record has a readable timestamp (Elasticsearch
    indexes a malformed timestamp as missing).
    """

    workload_id: str
    client_id: str
    records: int
    oldest: datetime | None
    newest: datetime | None


class LogStore(Protocol):
    """Stores log records and streams a workload's records back, newest first.

    Every read takes an optional time window: ``since`` (inclusive) and ``until`` (exclusive)
    compare with the records' timestamps; a naive datetime means UTC.
    """

    async def add(self, records: Sequence[LogRecord]) -> int:
        """Store ``records`` and return how many were stored (all or none where the store can)."""
        ...

    def iter_raw(
        self,
        workload_id: str,
        client_id: str | None = None,
        *,
        limit: int | None = None,
        batch_size: int = 1000,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AsyncIterator[RawBatch]:
        """Yield the workload's records in batches, newest first, each as JSON text.

        The text is the log document (``workload_id``, ``client_id``, ``timestamp``,
        ``request``, ``response``) unparsed, as ``str`` or UTF-8 ``bytes`` (whichever the store
        has at hand), so a consumer can parse it off the event loop; each batch carries the
        records' keys for :meth:`fetch_raw`.
        Same records, order and batching as :meth:`iter_batches`.
        """
        ...

    async def fetch_raw(self, keys: Sequence[RecordKey]) -> list[RawLog]:
        """The JSON text of the records with ``keys`` (from :meth:`iter_raw`), in that order.

        Raises FlywheelError naming the missing keys when a record is gone from the store.
        """
        ...

    def iter_batches(
        self,
        workload_id: str,
        client_id: str | None = None,
        *,
        limit: int | None = None,
        batch_size: int = 1000,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield the workload's records as JSON-mode dicts in batches, newest first.

        Records with equal timestamps come later-stored first. ``client_id`` None means every
        client; ``limit`` caps the total. Only one batch is held at a time: the next batch is read
        when the consumer asks for it.
        """
        ...

    async def count(
        self,
        workload_id: str | None = None,
        client_id: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many records match (None matches every value)."""
        ...

    async def workloads(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[WorkloadSummary]:
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


def to_utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (naive means UTC); None stays None."""
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def check_page_args(limit: int | None, batch_size: int) -> None:
    """Raise ValueError for a batch size below 1 or a negative limit (programming errors)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative (got {limit})")


def open_log_store(url: str, *, api_key: str | None = None) -> LogStore:
    """The log store at ``url``; it connects on first use, so this does no I/O.

    ``api_key`` is an Elasticsearch API key (sent as ``Authorization: ApiKey …``); the SQLite
    store has no use for it. Raises ConfigError for a URL it cannot serve, naming the accepted
    forms.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from flywheel.clients.logstore.sqlite import SQLiteLogStore
        from flywheel.clients.sqlite import sqlite_path_from_url

        return SQLiteLogStore(sqlite_path_from_url(url, what="log store"))
    if scheme in ("http", "https"):
        from flywheel.clients.logstore.elasticsearch import ElasticsearchLogStore

        return ElasticsearchLogStore(url, api_key=api_key)
    raise ConfigError(f"invalid log_store_url {redact_url(url)!r}: expected {ACCEPTED_FORMS}")
