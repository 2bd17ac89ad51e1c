"""The Elasticsearch log store: the blueprint's log index, over the REST API with httpx.

It talks as the official Elasticsearch 8/9 client does (``compatible-with=8`` media types), so an
application that already logs into a blueprint index works unchanged. Reads page newest first
with ``search_after`` under a point in time (no 10,000-hit ceiling); a server without the
``_pit`` endpoint (OpenSearch and compatibles) is paged with the scroll API instead.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import httpx
import orjson

from flywheel.clients.closing import AsyncClosing
from flywheel.clients.logstore import (
    RawBatch,
    RawLog,
    RecordKey,
    WorkloadSummary,
    check_page_args,
    to_utc,
)
from flywheel.clients.urls import redact_url
from flywheel.errors import ConfigError, ConnectionFailed, FlywheelError, RemoteCallError
from flywheel.schemas import LogRecord

__all__ = [
    "DEFAULT_INDEX",
    "INDEX_DEFINITION",
    "ElasticsearchLogStore",
    "ElasticsearchTarget",
    "parse_elasticsearch_url",
]

log = logging.getLogger(__name__)

DEFAULT_INDEX = "flywheel"
"""The blueprint's ``ES_COLLECTION_NAME`` default."""

INDEX_DEFINITION: dict[str, Any] = {
    "settings": {
        "mapping": {"total_fields": {"limit": 1000}},
        "index": {"mapping": {"ignore_malformed": True}},
    },
    "mappings": {
        "dynamic": "strict",
        "properties": {
            "workload_id": {"type": "keyword"},
            "client_id": {"type": "keyword"},
            "timestamp": {"type": "date"},
            "request": {"type": "object", "dynamic": False, "properties": {}},
            "response": {"type": "object", "dynamic": False, "properties": {}},
        },
    },
}
"""The log index exactly as the blueprint creates it (blueprint-spec §1.2)."""

KEEP_ALIVE = "1m"
"""How long the server keeps a point in time (or scroll) open between two page requests."""
_FETCH_CHUNK = 1000
"""Ids per fetch-by-id search (below the default ``index.max_result_window`` of 10,000)."""

ES_JSON = "application/vnd.elasticsearch+json; compatible-with=8"
ES_NDJSON = "application/vnd.elasticsearch+x-ndjson; compatible-with=8"

_SECONDS_BOUND = 100_000_000_000
"""Epoch numbers up to this are seconds, above it millis (LogRecord's rule). Elasticsearch reads
a bare number as millis, so a document written in seconds holds a value below this bound."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_AGG_PAGE = 1000
_BAD_INDEX_CHARS = re.compile(r'[\\/*?"<>| ,#:]')


@dataclass(frozen=True, slots=True)
class ElasticsearchTarget:
    """Where the log index lives: server base URL (no credentials), index, basic-auth user."""

    base_url: str
    index: str
    username: str | None = None
    password: str | None = None


def parse_elasticsearch_url(url: str) -> ElasticsearchTarget:
    """Split ``http(s)://[user:password@]host:port[/index]``; raise ConfigError naming the URL.

    The index defaults to ``flywheel``.
    """
    shown = redact_url(url)
    expected = "expected http(s)://[user:password@]host:9200[/index]"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"invalid log_store_url {shown!r}: {exc}; {expected}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"invalid log_store_url {shown!r}: {expected}")
    if parts.query or parts.fragment:
        raise ConfigError(
            f"invalid log_store_url {shown!r}: no query or fragment is read; {expected} "
            "(an API key goes in the variable named by log_store_api_key_env)"
        )
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > 1:
        raise ConfigError(
            f"invalid log_store_url {shown!r}: the path must be just the index name; {expected}"
        )
    index = unquote(segments[0]) if segments else DEFAULT_INDEX
    if (
        index != index.lower()
        or index in (".", "..")
        or index.startswith(("-", "_", "+"))
        or _BAD_INDEX_CHARS.search(index)
        or len(index.encode()) > 255
    ):
        raise ConfigError(
            f"invalid log_store_url {shown!r}: {index!r} is not a valid index name (lowercase, "
            'no spaces or \\ / * ? " < > | , # :, not starting with - _ +)'
        )
    host = parts.netloc.rpartition("@")[2]
    return ElasticsearchTarget(
        base_url=f"{parts.scheme.lower()}://{host}",
        index=index,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _iso_utc(value: datetime) -> str:
    """``value`` as ISO 8601 UTC with a ``Z`` (naive means UTC); microseconds only when set."""
    aware = to_utc(value)
    assert aware is not None
    return aware.isoformat().replace("+00:00", "Z")


def _epoch_value_to_datetime(value: float) -> datetime:
    """A date field's numeric value as a datetime: seconds up to 1e11, millis above (see
    :data:`_SECONDS_BOUND`), so documents written in epoch seconds get their real date."""
    seconds = value / 1000 if abs(value) > _SECONDS_BOUND else value
    return datetime.fromtimestamp(seconds, UTC)


class ElasticsearchLogStore(AsyncClosing):
    """Log records in an Elasticsearch index with the blueprint's mapping (created if missing).

    Credentials come from the URL's userinfo (basic auth) or ``api_key`` (which wins); they
    never appear in messages. Nothing connects until the first call.
    """

    def __init__(self, url: str, *, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        target = parse_elasticsearch_url(url)
        self.index = target.index
        self.url = f"{target.base_url}/{target.index}"
        """Where the index lives, safe to print (no credentials)."""
        self.timeout_s = timeout_s
        self._target = target
        self._api_key = api_key or None
        self._index_path = "/" + quote(target.index, safe="")
        self._http: httpx.AsyncClient | None = None
        self._lock = asyncio.Lock()
        self._index_ready = False
        self._vendor_types = True
        self._pit_supported: bool | None = None
        self._unrefreshed = False
        self._closed = False

    # --- the LogStore protocol ---

    async def add(self, records: Sequence[LogRecord]) -> int:
        """Index ``records`` with one ``_bulk`` call; return how many were stored.

        Only the five fields of the blueprint's schema are written (its strict mapping refuses
        any other), the timestamp as ISO 8601 UTC. A bulk call is not all-or-none: when some
        documents fail, RemoteCallError says how many and why; the others stay stored.
        """
        if not records:
            return 0
        await self._ready()
        lines: list[bytes] = []
        for record in records:
            lines.append(b'{"index":{}}')
            lines.append(orjson.dumps(_document(record)))
        body = b"\n".join(lines) + b"\n"
        del lines
        response = await self._request(
            "bulk index", "POST", f"{self._index_path}/_bulk", ndjson=body
        )
        self._unrefreshed = True
        result = await asyncio.to_thread(_bulk_result, response.content)
        if result.failed:
            stored = len(records) - result.failed
            raise RemoteCallError(
                f"Elasticsearch bulk index to {self.url} failed for {result.failed} of "
                f"{len(records)} records ({stored} stored); first error: {result.first_error}",
                retryable=result.all_throttled and stored == 0,
                status_code=result.first_status,
            )
        return len(records)

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
        """Yield the workload's documents newest first, each as its ``_source`` JSON bytes
        (keyed by ``_id``).

        Pages come from a point in time (closed at the end, also on error or early exit) or,
        without one, a scroll (always cleared). Equal timestamps come later-indexed first.
        """
        check_page_args(limit, batch_size)
        if limit == 0:
            return
        await self._ready(reading=True)
        query = _query(workload_id, client_id, since, until)
        remaining = limit
        size = batch_size if limit is None else min(batch_size, limit)
        cursor = await self._open_cursor(query, size)
        try:
            while remaining is None or remaining > 0:
                page_size = size if remaining is None else min(size, remaining)
                docs, exhausted = await cursor.next_page(page_size)
                if remaining is not None:
                    if len(docs) > remaining:
                        docs = RawBatch(docs[:remaining], docs.keys[:remaining])
                    remaining -= len(docs)
                if docs:
                    yield docs
                if exhausted:
                    return
        finally:
            await cursor.close()

    async def fetch_raw(self, keys: Sequence[RecordKey]) -> list[RawLog]:
        """The ``_source`` JSON of the documents with ids ``keys``, in that order (an ``ids``
        query on the index, a page of ids at a time)."""
        await self._ready(reading=True)
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(str(key) for key in keys))
        for start in range(0, len(unique), _FETCH_CHUNK):
            chunk = unique[start : start + _FETCH_CHUNK]
            body = {"size": len(chunk), "query": {"ids": {"values": chunk}}}
            response = await self._request(
                "fetch by id", "POST", f"{self._index_path}/_search", body=body
            )
            page = await asyncio.to_thread(_read_page, response.content)
            self._check_shards("fetch by id", page)
            for key, doc in zip(page.docs.keys, page.docs, strict=True):
                found.setdefault(str(key), doc)
        missing = [key for key in unique if key not in found]
        if missing:
            raise FlywheelError(
                f"{len(missing)} log records disappeared from {self.url} while they were being "
                f"curated (ids {missing[:5]}); run the flywheel again"
            )
        return [found[str(key)] for key in keys]

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
        """Yield the workload's documents newest first as dicts (see :meth:`iter_raw`)."""
        pages = self.iter_raw(
            workload_id, client_id, limit=limit, batch_size=batch_size, since=since, until=until
        )
        try:
            async for raw in pages:
                yield [orjson.loads(doc) for doc in raw]
        finally:
            await pages.aclose()

    async def count(
        self,
        workload_id: str | None = None,
        client_id: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many documents match (``_count``); None matches every value."""
        await self._ready(reading=True)
        body = {"query": _query(workload_id, client_id, since, until)}
        response = await self._request("count", "POST", f"{self._index_path}/_count", body=body)
        return int(_json(response)["count"])

    async def workloads(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[WorkloadSummary]:
        """One summary per (workload_id, client_id), from a composite terms aggregation paged
        by key (so ordered by workload then client, with no bucket limit)."""
        await self._ready(reading=True)
        composite: dict[str, Any] = {
            "size": _AGG_PAGE,
            "sources": [
                {"workload_id": {"terms": {"field": "workload_id"}}},
                {"client_id": {"terms": {"field": "client_id"}}},
            ],
        }
        body = {
            "size": 0,
            "track_total_hits": False,
            "query": _query(None, None, since, until),
            "aggs": {
                "pairs": {
                    "composite": composite,
                    "aggs": {
                        "oldest": {"min": {"field": "timestamp"}},
                        "newest": {"max": {"field": "timestamp"}},
                    },
                }
            },
        }
        summaries: list[WorkloadSummary] = []
        path = f"{self._index_path}/_search"
        while True:
            response = await self._request("workload aggregation", "POST", path, body=body)
            pairs = _json(response).get("aggregations", {}).get("pairs", {})
            buckets = pairs.get("buckets") or []
            summaries.extend(_summary(bucket) for bucket in buckets)
            after = pairs.get("after_key")
            if len(buckets) < _AGG_PAGE or not after:
                return summaries
            composite["after"] = after

    async def aclose(self) -> None:
        """Make what was just indexed searchable (best effort), then close the connection pool.

        Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        http, self._http = self._http, None
        if http is None:
            return
        try:
            if self._unrefreshed:
                await self._refresh(http)
        except FlywheelError as exc:
            log.warning("could not refresh the log index %s before closing: %s", self.url, exc)
        finally:
            await http.aclose()

    # --- internals ---

    async def _ready(self, *, reading: bool = False) -> None:
        """Fail if closed; create the index with the blueprint's mapping the first time; before
        a read, make the documents this store indexed searchable (one refresh, not per batch)."""
        if self._closed:
            raise ConnectionFailed(f"the Elasticsearch log store {self.url} is closed")
        if not self._index_ready:
            async with self._lock:
                if not self._index_ready:
                    await self._create_index_if_missing()
                    self._index_ready = True
        if reading and self._unrefreshed:
            self._unrefreshed = False
            await self._refresh(self._client())

    async def _create_index_if_missing(self) -> None:
        exists = await self._request("index check", "HEAD", self._index_path, allowed=(404,))
        if exists.status_code != 404:
            return
        created = await self._request(
            "index creation", "PUT", self._index_path, body=INDEX_DEFINITION, allowed=(400,)
        )
        if (
            created.status_code == 400
            and _error_type(created) != "resource_already_exists_exception"
        ):
            raise self._error("index creation", created)
        log.info("created the log index %s with the blueprint's mapping", self.url)

    async def _refresh(self, http: httpx.AsyncClient) -> None:
        """Best effort: a user without the refresh privilege sees new documents within the
        index's refresh interval anyway."""
        await self._request(
            "refresh",
            "POST",
            f"{self._index_path}/_refresh",
            allowed=(401, 403, 404, 405),
            http=http,
        )

    async def _open_cursor(self, query: dict[str, Any], size: int) -> _Cursor:
        """A point-in-time cursor, or a scroll cursor when the server has no ``_pit``."""
        if self._pit_supported is not False:
            response = await self._request(
                "point-in-time open",
                "POST",
                f"{self._index_path}/_pit",
                params={"keep_alive": KEEP_ALIVE},
                allowed=(400, 404, 405),
            )
            pit_id = _json(response).get("id") if response.status_code == 200 else None
            if isinstance(pit_id, str) and pit_id:
                self._pit_supported = True
                return _PitCursor(self, pit_id, query)
            if _error_type(response) == "index_not_found_exception":
                raise self._error("point-in-time open", response)
            self._pit_supported = False
            log.info("%s has no point-in-time API; paging with scroll", self.url)
        return _ScrollCursor(self, query, size)

    def _client(self) -> httpx.AsyncClient:
        if self._closed:
            raise ConnectionFailed(f"the Elasticsearch log store {self.url} is closed")
        if self._http is None:
            headers = {"User-Agent": "data-flywheel"}
            auth: httpx.Auth | None = None
            if self._api_key:
                headers["Authorization"] = f"ApiKey {self._api_key}"
            elif self._target.username is not None:
                auth = httpx.BasicAuth(self._target.username, self._target.password or "")
            self._http = httpx.AsyncClient(
                base_url=self._target.base_url,
                headers=headers,
                auth=auth,
                timeout=httpx.Timeout(self.timeout_s),
            )
        return self._http

    async def _request(
        self,
        what: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        ndjson: bytes | None = None,
        params: dict[str, str] | None = None,
        allowed: Collection[int] = (),
        http: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        """One REST call; statuses >= 400 not in ``allowed`` raise an error naming ``what``.

        Sends the official client's versioned media types; after a 406 (a server that only
        takes plain JSON, such as OpenSearch) it sends plain JSON from then on.
        """
        client = http or self._client()
        content = orjson.dumps(body) if body is not None else ndjson
        while True:
            vendor = self._vendor_types
            headers = {"Accept": ES_JSON if vendor else "application/json"}
            if body is not None:
                headers["Content-Type"] = ES_JSON if vendor else "application/json"
            elif ndjson is not None:
                headers["Content-Type"] = ES_NDJSON if vendor else "application/x-ndjson"
            try:
                response = await client.request(
                    method, path, content=content, params=params, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise ConnectionFailed(
                    f"cannot reach Elasticsearch at {self.url} for the {what} "
                    f"({_transport_reason(exc)}): check log_store_url and that the server is up"
                ) from None
            except httpx.TimeoutException:
                raise RemoteCallError(
                    f"Elasticsearch {what} to {self.url} timed out after {self.timeout_s:g}s; "
                    "the server is overloaded or the batch is too large",
                    retryable=True,
                ) from None
            except httpx.HTTPError as exc:
                raise RemoteCallError(
                    f"Elasticsearch {what} to {self.url} failed: {_transport_reason(exc)}",
                    retryable=True,
                ) from None
            if response.status_code == 406 and vendor:
                self._vendor_types = False
                log.info("%s refuses versioned media types; sending plain JSON", self.url)
                continue
            if response.status_code >= 400 and response.status_code not in allowed:
                raise self._error(what, response)
            return response

    def _check_shards(self, what: str, page: _Page) -> None:
        """A page that some shards failed to answer would silently miss records: raise."""
        if page.failed_shards:
            raise RemoteCallError(
                f"Elasticsearch {what} to {self.url} failed on {page.failed_shards} shard(s): "
                f"{page.shard_failure}; the results would be incomplete, retry later",
                retryable=True,
            )

    def _error(self, what: str, response: httpx.Response) -> RemoteCallError:
        status = response.status_code
        return RemoteCallError(
            f"Elasticsearch {what} to {self.url} failed: {status} {_reason(response)}"
            f"{_hint(status)}",
            retryable=status in (408, 429) or status >= 500,
            status_code=status,
        )


class _Cursor(Protocol):
    async def next_page(self, size: int) -> tuple[RawBatch, bool]:
        """The next page of documents and whether the result set is exhausted."""
        ...

    async def close(self) -> None:
        """Release the server-side context (never raises)."""
        ...


class _PitCursor:
    """``search_after`` pages under a point in time, sorted by timestamp then ``_shard_doc``."""

    _SORT = ({"timestamp": {"order": "desc"}}, {"_shard_doc": "desc"})

    def __init__(self, store: ElasticsearchLogStore, pit_id: str, query: dict[str, Any]) -> None:
        self._store = store
        self._pit_id = pit_id
        self._query = query
        self._after: list[Any] | None = None

    async def next_page(self, size: int) -> tuple[RawBatch, bool]:
        body: dict[str, Any] = {
            "size": size,
            "query": self._query,
            "sort": list(self._SORT),
            "pit": {"id": self._pit_id, "keep_alive": KEEP_ALIVE},
            "track_total_hits": False,
        }
        if self._after is not None:
            body["search_after"] = self._after
        response = await self._store._request("search", "POST", "/_search", body=body)
        page = await asyncio.to_thread(_read_page, response.content)
        self._store._check_shards("search", page)
        self._pit_id = page.pit_id or self._pit_id
        self._after = page.last_sort
        return page.docs, len(page.docs) < size or page.last_sort is None

    async def close(self) -> None:
        try:
            await self._store._request(
                "point-in-time close", "DELETE", "/_pit", body={"id": self._pit_id}, allowed=(404,)
            )
        except FlywheelError as exc:
            log.warning("could not close a point in time on %s: %s", self._store.url, exc)


class _ScrollCursor:
    """Scroll pages (for servers without a point in time), sorted by timestamp then ``_doc``."""

    def __init__(self, store: ElasticsearchLogStore, query: dict[str, Any], size: int) -> None:
        self._store = store
        self._query = query
        self._size = size
        self._scroll_id: str | None = None
        self._started = False

    async def next_page(self, size: int) -> tuple[RawBatch, bool]:
        if not self._started:
            self._started = True
            body = {
                "size": self._size,
                "query": self._query,
                "sort": [{"timestamp": {"order": "desc"}}, {"_doc": {"order": "desc"}}],
            }
            response = await self._store._request(
                "search",
                "POST",
                f"{self._store._index_path}/_search",
                body=body,
                params={"scroll": KEEP_ALIVE},
            )
        elif self._scroll_id is None:
            return RawBatch([], []), True
        else:
            body = {"scroll": KEEP_ALIVE, "scroll_id": self._scroll_id}
            response = await self._store._request("scroll", "POST", "/_search/scroll", body=body)
        page = await asyncio.to_thread(_read_page, response.content)
        self._store._check_shards("scroll", page)
        self._scroll_id = page.scroll_id or self._scroll_id
        return page.docs, not page.docs or page.scroll_id is None

    async def close(self) -> None:
        if self._scroll_id is None:
            return
        try:
            await self._store._request(
                "scroll clear",
                "DELETE",
                "/_search/scroll",
                body={"scroll_id": self._scroll_id},
                allowed=(404,),
            )
        except FlywheelError as exc:
            log.warning("could not clear a scroll on %s: %s", self._store.url, exc)
        self._scroll_id = None


@dataclass(slots=True)
class _Page:
    docs: RawBatch
    last_sort: list[Any] | None
    pit_id: str | None
    scroll_id: str | None
    failed_shards: int
    shard_failure: str


@dataclass(slots=True)
class _BulkResult:
    failed: int
    first_error: str
    first_status: int | None
    all_throttled: bool


def _read_page(content: bytes) -> _Page:
    """Split a search response into its documents' ``_source`` bytes (runs in a thread)."""
    data = orjson.loads(content)
    hits = data.get("hits", {}).get("hits") or []
    docs = RawBatch(
        [orjson.dumps(hit["_source"]) for hit in hits], [str(hit.get("_id")) for hit in hits]
    )
    shards = data.get("_shards") or {}
    failures = shards.get("failures") or [{}]
    failure = failures[0].get("reason") if isinstance(failures[0], dict) else None
    return _Page(
        docs=docs,
        last_sort=hits[-1].get("sort") if hits else None,
        pit_id=data.get("pit_id"),
        scroll_id=data.get("_scroll_id"),
        failed_shards=int(shards.get("failed") or 0),
        shard_failure=_describe(failure) if failure else "no reason given",
    )


def _bulk_result(content: bytes) -> _BulkResult:
    """Count the failed items of a ``_bulk`` response and describe the first (in a thread)."""
    data = orjson.loads(content)
    if not data.get("errors"):
        return _BulkResult(0, "", None, False)
    failed = 0
    first_error = ""
    first_status: int | None = None
    all_throttled = True
    for item in data.get("items") or []:
        result = next(iter(item.values()), {}) if isinstance(item, dict) else {}
        status = int(result.get("status") or 0)
        if "error" not in result and status < 300:
            continue
        failed += 1
        all_throttled = all_throttled and status == 429
        if not first_error:
            first_error = _describe(result.get("error")) or f"status {status}"
            first_status = status or None
    return _BulkResult(failed, first_error, first_status, all_throttled and failed > 0)


def _document(record: LogRecord) -> dict[str, Any]:
    return {
        "workload_id": record.workload_id,
        "client_id": record.client_id,
        "timestamp": _iso_utc(record.timestamp),
        "request": record.request,
        "response": record.response,
    }


def _query(
    workload_id: str | None,
    client_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    """``term`` filters in a bool ``filter`` (exact keyword match), plus the time window."""
    filters: list[dict[str, Any]] = []
    if workload_id is not None:
        filters.append({"term": {"workload_id": workload_id}})
    if client_id is not None:
        filters.append({"term": {"client_id": client_id}})
    window = _time_window(to_utc(since), to_utc(until))
    if window is not None:
        filters.append(window)
    return {"bool": {"filter": filters}} if filters else {"match_all": {}}


def _time_window(since: datetime | None, until: datetime | None) -> dict[str, Any] | None:
    """``since <= timestamp < until`` for documents dated in ISO/epoch millis *and* for those
    written as epoch seconds (which Elasticsearch stores as millis, so below 1e11)."""
    if since is None and until is None:
        return None
    as_millis: dict[str, Any] = {"gte": _SECONDS_BOUND + 1, "format": "epoch_millis"}
    as_seconds: dict[str, Any] = {"lte": _SECONDS_BOUND, "format": "epoch_millis"}
    if since is not None:
        micros = _epoch_micros(since)
        as_millis["gte"] = max(_ceil_div(micros, 1000), _SECONDS_BOUND + 1)
        as_seconds["gte"] = _ceil_div(micros, 1_000_000)
    if until is not None:
        micros = _epoch_micros(until)
        as_millis["lt"] = _ceil_div(micros, 1000)
        del as_seconds["lte"]
        as_seconds["lt"] = min(_ceil_div(micros, 1_000_000), _SECONDS_BOUND + 1)
    return {
        "bool": {
            "should": [{"range": {"timestamp": as_millis}}, {"range": {"timestamp": as_seconds}}],
            "minimum_should_match": 1,
        }
    }


def _epoch_micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _summary(bucket: dict[str, Any]) -> WorkloadSummary:
    key = bucket["key"]
    oldest = (bucket.get("oldest") or {}).get("value")
    newest = (bucket.get("newest") or {}).get("value")
    return WorkloadSummary(
        workload_id=str(key["workload_id"]),
        client_id=str(key["client_id"]),
        records=int(bucket["doc_count"]),
        oldest=_epoch_value_to_datetime(oldest) if oldest is not None else None,
        newest=_epoch_value_to_datetime(newest) if newest is not None else None,
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise RemoteCallError(
            f"{response.request.method} {response.request.url.path} on Elasticsearch returned "
            f"{response.status_code} without a JSON object: {response.text[:200]!r}",
            retryable=False,
            status_code=response.status_code,
        )
    return data


def _error_body(response: httpx.Response) -> Any:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return data.get("error") if isinstance(data, dict) else None


def _error_type(response: httpx.Response) -> str | None:
    error = _error_body(response)
    return str(error.get("type")) if isinstance(error, dict) else None


def _describe(error: Any) -> str:
    """``type: reason`` of an Elasticsearch error object (or the text it is)."""
    if isinstance(error, dict):
        kind, reason = error.get("type"), error.get("reason")
        caused = error.get("caused_by")
        text = ": ".join(str(x) for x in (kind, reason) if x)
        if isinstance(caused, dict) and caused.get("reason"):
            text += f" (caused by {_describe(caused)})"
        return text[:500]
    return str(error)[:500] if error else ""


def _reason(response: httpx.Response) -> str:
    error = _error_body(response)
    if error:
        return _describe(error)
    text = response.text.strip()
    return text[:300] if text else (response.reason_phrase or "no details")


def _hint(status: int) -> str:
    if status == 401:
        return (
            "; check the user and password in log_store_url, or the API key in the variable "
            "named by log_store_api_key_env"
        )
    if status == 403:
        return "; the user or API key lacks privileges on the index"
    if status == 413:
        return "; the request is too large: send smaller batches (--batch-size)"
    if status == 429 or status >= 500:
        return "; the server is overloaded or failing, retry later"
    return ""


def _transport_reason(exc: httpx.HTTPError) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
