"""The production result store: collection ``flywheel_runs`` in MongoDB via ``AsyncMongoClient``.

One document per run: ``_id`` is the run id, the fields are the run's JSON dump, and
``started_at`` is a BSON date (indexed, as in the blueprint) so runs sort by time. BSON dates keep
milliseconds only, so the exact value is kept beside it in ``started_at_iso``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    InvalidName,
    InvalidURI,
    OperationFailure,
    PyMongoError,
)

from flywheel.clients.closing import AsyncClosing
from flywheel.clients.results import stored_run_unreadable
from flywheel.clients.urls import redact_url
from flywheel.errors import ConfigError, ConnectionFailed, FlywheelError, InvalidDataError
from flywheel.schemas import FlywheelRunResult, RunStatus

__all__ = ["COLLECTION", "MongoResultStore"]

COLLECTION = "flywheel_runs"
_EXACT_STARTED_AT = "started_at_iso"
_AUTH_FAILURE_CODES = frozenset({13, 18})  # Unauthorized, AuthenticationFailed


class MongoResultStore(AsyncClosing):
    """Run snapshots in MongoDB; a save replaces the document only with an equal or newer revision.

    The client connects on first use. ``server_selection_timeout_ms`` bounds how long an operation
    waits for a reachable server before failing with ConnectionFailed.
    """

    def __init__(
        self,
        url: str,
        *,
        database: str = "flywheel",
        server_selection_timeout_ms: int = 5_000,
    ) -> None:
        self.url = redact_url(url)
        self._secrets = _secrets_of(url)
        self.database = database
        self._timeout_ms = server_selection_timeout_ms
        try:
            self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                url,
                tz_aware=True,
                connect=False,
                serverSelectionTimeoutMS=server_selection_timeout_ms,
                connectTimeoutMS=server_selection_timeout_ms,
            )
            self._collection: AsyncCollection[dict[str, Any]] = self._client[database][COLLECTION]
        except (InvalidURI, ConfigurationError, InvalidName, ValueError, TypeError) as exc:
            raise ConfigError(
                f"invalid MongoDB result store URL {self.url} (database {database!r}): "
                f"{self._scrub(str(exc))}"
            ) from None
        self._indexed = False
        self._index_lock = asyncio.Lock()

    async def _runs(self) -> AsyncCollection[dict[str, Any]]:
        """The collection, with its indexes created once per store (lazily, on first use)."""
        if not self._indexed:
            async with self._index_lock:
                if not self._indexed:
                    async with self._errors("create indexes"):
                        await self._collection.create_index("workload_id")
                        await self._collection.create_index("started_at")
                    self._indexed = True
        return self._collection

    async def save_run(self, run: FlywheelRunResult) -> bool:
        """Replace-or-insert guarded by revision; False when a newer revision is stored."""
        doc = _to_document(run)
        runs = await self._runs()
        guard = {"_id": run.run_id, "revision": {"$lte": run.revision}}
        async with self._errors(f"save run {run.run_id}"):
            # A duplicate key means a document with this _id exists but the guard did not match
            # (a newer revision), or a concurrent first save won the insert: try once more.
            for attempt in range(2):
                try:
                    result = await runs.replace_one(guard, doc, upsert=True)
                except DuplicateKeyError:
                    if attempt == 1:
                        return False
                    continue
                return result.upserted_id is not None or result.matched_count == 1
        return False

    async def get_run(self, run_id: str) -> FlywheelRunResult | None:
        """The stored snapshot of ``run_id``, or None."""
        runs = await self._runs()
        async with self._errors(f"read run {run_id}"):
            doc = await runs.find_one({"_id": run_id})
        return None if doc is None else _from_document(doc)

    async def list_runs(
        self,
        *,
        workload_id: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
    ) -> list[FlywheelRunResult]:
        """Up to ``limit`` runs, newest ``started_at`` first (ties: higher run id first)."""
        if limit < 0:
            raise ValueError(f"limit must not be negative (got {limit})")
        if limit == 0:
            return []  # MongoDB reads limit 0 as "no limit"
        query: dict[str, Any] = {}
        if workload_id is not None:
            query["workload_id"] = workload_id
        if status is not None:
            query["status"] = RunStatus(status).value
        runs = await self._runs()
        async with self._errors("list runs"):
            cursor = runs.find(query).sort([("started_at", -1), ("_id", -1)]).limit(limit)
            docs = await cursor.to_list()
        return [_from_document(doc) for doc in docs]

    async def delete_run(self, run_id: str) -> bool:
        """Delete ``run_id``; return whether it existed."""
        runs = await self._runs()
        async with self._errors(f"delete run {run_id}"):
            result = await runs.delete_one({"_id": run_id})
        return result.deleted_count == 1

    async def aclose(self) -> None:
        """Close the client (idempotent)."""
        await self._client.close()

    @asynccontextmanager
    async def _errors(self, action: str) -> AsyncIterator[None]:
        """Turn driver errors into flywheel errors whose messages name the store, not secrets."""
        try:
            yield
        except ConnectionFailure as exc:
            raise ConnectionFailed(
                f"cannot reach the MongoDB result store at {self.url} to {action} "
                f"(no server answered within {self._timeout_ms} ms: {_first_reason(exc)}); "
                "check that MongoDB is running and the URL is right"
            ) from None
        except OperationFailure as exc:
            if exc.code in _AUTH_FAILURE_CODES:
                raise ConnectionFailed(
                    f"the MongoDB result store at {self.url} refused to {action}: "
                    f"{self._scrub(str(exc))}; check the user name, password and database in "
                    "the URL"
                ) from None
            raise FlywheelError(
                f"MongoDB result store at {self.url}: cannot {action}: {self._scrub(str(exc))}"
            ) from None
        except ConfigurationError as exc:
            raise ConnectionFailed(
                f"cannot use the MongoDB result store at {self.url} to {action}: "
                f"{self._scrub(str(exc))}"
            ) from None
        except PyMongoError as exc:
            raise FlywheelError(
                f"MongoDB result store at {self.url}: cannot {action}: {self._scrub(str(exc))}"
            ) from None

    def _scrub(self, text: str) -> str:
        """``text`` with the URL's password (raw or percent-decoded) replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _to_document(run: FlywheelRunResult) -> dict[str, Any]:
    doc = run.model_dump(mode="json")
    doc["_id"] = run.run_id  # also in the replacement, or a wire-compatible server may mint one
    doc[_EXACT_STARTED_AT] = doc["started_at"]
    doc["started_at"] = run.started_at  # a BSON date: sortable and indexed
    return doc


def _from_document(doc: dict[str, Any]) -> FlywheelRunResult:
    run_id = str(doc.pop("_id", "?"))
    exact = doc.pop(_EXACT_STARTED_AT, None)
    if exact is not None:
        doc["started_at"] = exact
    try:
        return FlywheelRunResult.model_validate(doc)
    except ValidationError as exc:
        raise InvalidDataError(stored_run_unreadable(run_id, exc)) from None


def _first_reason(exc: ConnectionFailure) -> str:
    """The useful head of a driver message, without the long topology description."""
    text = str(exc)
    for marker in (" (configured timeouts", ", Timeout:", ", Topology Description"):
        text = text.split(marker, 1)[0]
    return text.strip() or type(exc).__name__


def _secrets_of(url: str) -> frozenset[str]:
    """The password in ``url``, raw and percent-decoded (what a driver message might echo)."""
    userinfo = url.partition("://")[2].split("?", 1)[0].rpartition("@")[0]
    password = userinfo.partition(":")[2]
    return frozenset({password, unquote(password)} - {""})
