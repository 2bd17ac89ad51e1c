"""ElasticsearchLogStore against a real engine (osmem-server) and recorded Elasticsearch answers.

The store talks to osmem through :class:`MediaTypeProxy`, exactly as it would talk to
Elasticsearch 8/9 (versioned media types and all). The point-in-time path, which osmem does not
have, runs against recorded Elasticsearch 8.x responses (``tests/fixtures/elasticsearch``).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from flywheel.clients.logstore import WorkloadSummary, open_log_store
from flywheel.clients.logstore.elasticsearch import (
    ES_JSON,
    ES_NDJSON,
    INDEX_DEFINITION,
    ElasticsearchLogStore,
    parse_elasticsearch_url,
)
from flywheel.clients.logstore.loader import load_jsonl
from flywheel.devserver import free_port
from flywheel.errors import ConfigError, ConnectionFailed, FlywheelError, RemoteCallError
from flywheel.sample_data import generate_customer_service_logs, write_jsonl
from flywheel.schemas import LogRecord
from tests.support.elasticsearch import (
    MediaTypeProxy,
    OsmemServer,
    Reply,
    ScriptedElasticsearch,
    fixture,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_S = int(T0.timestamp())


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


def raw_doc(n: int, ts: Any, *, workload: str = "w1", client: str = "c1") -> dict[str, Any]:
    """A document as another application might have indexed it (any timestamp form)."""
    return {
        "workload_id": workload,
        "client_id": client,
        "timestamp": ts,
        "request": {"messages": [{"role": "user", "content": f"q{n}"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": f"a{n}"}}]},
    }


def ids(batch: list[dict[str, Any]]) -> list[str]:
    return [r["request"]["messages"][0]["content"] for r in batch]


async def collect(store: ElasticsearchLogStore, *args: Any, **kwargs: Any) -> list[list[str]]:
    return [ids(batch) async for batch in store.iter_batches(*args, **kwargs)]


# --- osmem-server behind the media-type proxy ---


@pytest.fixture(scope="session")
def osmem(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OsmemServer]:
    with OsmemServer(tmp_path_factory.mktemp("osmem")) as server:
        yield server


@pytest_asyncio.fixture(scope="session")
async def proxy(osmem: OsmemServer) -> AsyncIterator[MediaTypeProxy]:
    started = await MediaTypeProxy(osmem.url).start()
    yield started
    await started.stop()


@pytest.fixture
def index() -> str:
    """A fresh index name per test (the engine is shared by the session)."""
    return f"logs-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(proxy: MediaTypeProxy, index: str) -> AsyncIterator[ElasticsearchLogStore]:
    proxy.requests.clear()
    async with ElasticsearchLogStore(f"{proxy.url}/{index}") as opened:
        yield opened


def bulk_raw(osmem: OsmemServer, index: str, docs: list[dict[str, Any]]) -> None:
    lines = b"".join(b'{"index":{}}\n' + orjson.dumps(doc) + b"\n" for doc in docs)
    result = osmem.request("POST", f"/{index}/_bulk?refresh=true", ndjson=lines)
    assert not result["errors"], result


def create_blueprint_index(osmem: OsmemServer, index: str) -> None:
    osmem.request("PUT", f"/{index}", INDEX_DEFINITION)


def paths(proxy: MediaTypeProxy) -> list[str]:
    return [f"{r.method} {r.path}" for r in proxy.requests]


async def test_first_use_creates_the_blueprint_index(
    osmem: OsmemServer, proxy: MediaTypeProxy, store: ElasticsearchLogStore, index: str
) -> None:
    assert await store.count() == 0
    [put] = [r for r in proxy.requests if r.method == "PUT"]
    assert put.path == f"/{index}"
    assert put.json() == INDEX_DEFINITION
    described = osmem.request("GET", f"/{index}")[index]
    mappings = described["mappings"]
    assert mappings["dynamic"] == "strict"
    assert {k: v["type"] for k, v in mappings["properties"].items()} == {
        "workload_id": "keyword",
        "client_id": "keyword",
        "timestamp": "date",
        "request": "object",
        "response": "object",
    }
    assert str(mappings["properties"]["request"]["dynamic"]).lower() == "false"
    settings = described["settings"]["index"]
    assert str(settings["mapping"]["ignore_malformed"]).lower() == "true"
    assert str(settings["mapping"]["total_fields"]["limit"]) == "1000"
    await store.count()
    assert paths(proxy).count(f"HEAD /{index}") == 1, "the index is checked once per store"


async def test_an_existing_index_is_used_as_is(
    osmem: OsmemServer, proxy: MediaTypeProxy, index: str
) -> None:
    create_blueprint_index(osmem, index)
    bulk_raw(osmem, index, [raw_doc(0, T0_S)])  # an app that logs epoch seconds
    proxy.requests.clear()
    async with ElasticsearchLogStore(f"{proxy.url}/{index}") as store:
        assert await store.add([record(5)]) == 1
        assert await store.count("w1") == 2
        assert await collect(store, "w1") == [["q5", "q0"]]
    assert not [r for r in proxy.requests if r.method == "PUT"]


async def test_load_jsonl_then_read_newest_first(
    tmp_path: Path, proxy: MediaTypeProxy, store: ElasticsearchLogStore, index: str
) -> None:
    logs = generate_customer_service_logs(60, seed=3)
    path = tmp_path / "logs.jsonl"
    write_jsonl(path, logs)
    report = await load_jsonl(path, store, batch_size=25)
    assert (report.accepted, report.rejected) == (60, 0)
    bulks = [r for r in proxy.requests if r.path == f"/{index}/_bulk"]
    assert len(bulks) == 3
    assert {r.headers["content-type"] for r in bulks} == {ES_NDJSON}
    assert not [r for r in proxy.requests if r.path.endswith("/_refresh")], "no refresh per batch"
    batches = [batch async for batch in store.iter_batches(logs[0]["workload_id"], batch_size=7)]
    assert [len(b) for b in batches] == [7] * 8 + [4]
    assert [doc for batch in batches for doc in batch] == logs[::-1]
    assert paths(proxy).count(f"POST /{index}/_refresh") == 1, "one refresh before reading"


async def test_more_than_10000_records_page_through_a_scroll(
    proxy: MediaTypeProxy, store: ElasticsearchLogStore, index: str
) -> None:
    total = 10_050
    for start in range(0, total, 5025):
        await store.add([record(n) for n in range(start, start + 5025)])
    proxy.requests.clear()
    sizes: list[int] = []
    newest_first: list[int] = []
    async for raw in store.iter_raw("w1", batch_size=1000):
        sizes.append(len(raw))
        newest_first.extend(
            int(orjson.loads(doc)["request"]["messages"][0]["content"][1:]) for doc in raw
        )
    assert sizes == [1000] * 10 + [50]
    assert newest_first == list(range(total - 1, -1, -1))
    seen = paths(proxy)
    assert seen.count(f"POST /{index}/_pit") == 1, "asked once for a point in time"
    assert seen.count(f"POST /{index}/_search") == 1
    assert seen.count("POST /_search/scroll") == 11
    assert seen[-1] == "DELETE /_search/scroll", "the scroll is cleared"
    assert await store.count("w1") == total
    proxy.requests.clear()
    assert sum([len(b) async for b in store.iter_raw("w1", limit=2500, batch_size=1000)]) == 2500
    assert f"POST /{index}/_pit" not in paths(proxy), "no second try on a server without PIT"


async def test_iter_raw_is_the_documents_as_json_bytes(store: ElasticsearchLogStore) -> None:
    await store.add([record(n) for n in range(5)])
    raw = [batch async for batch in store.iter_raw("w1", batch_size=2)]
    parsed = [batch async for batch in store.iter_batches("w1", batch_size=2)]
    assert all(isinstance(doc, bytes) for batch in raw for doc in batch)
    assert [[orjson.loads(doc) for doc in batch] for batch in raw] == parsed
    assert orjson.loads(raw[0][0]) == {
        "workload_id": "w1",
        "client_id": "c1",
        "timestamp": "2024-01-01T00:00:04Z",
        "request": {"messages": [{"role": "user", "content": "q4"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": "a4"}}]},
    }


async def test_fetch_raw_returns_documents_by_their_batch_keys(
    store: ElasticsearchLogStore,
) -> None:
    await store.add([record(n) for n in range(7)])
    batches = [batch async for batch in store.iter_raw("w1", batch_size=3)]
    keys = [key for batch in batches for key in batch.keys]
    docs = [doc for batch in batches for doc in batch]
    assert len(set(keys)) == 7
    wanted = [keys[6], keys[0], keys[3], keys[0]]
    fetched = await store.fetch_raw(wanted)
    assert [orjson.loads(doc) for doc in fetched] == [
        orjson.loads(docs[i]) for i in (6, 0, 3, 0)
    ]
    with pytest.raises(FlywheelError, match=r"1 log records disappeared .*no-such-id"):
        await store.fetch_raw([keys[1], "no-such-id"])


async def test_timestamps_are_written_as_iso_utc(store: ElasticsearchLogStore) -> None:
    await store.add(
        [
            record(1, ts=1_700_000_000),
            record(2, ts="2023-11-14T23:13:19+01:00"),
            record(3, ts=1_700_000_000_250),  # epoch millis
        ]
    )
    [batch] = [b async for b in store.iter_batches("w1")]
    assert [r["timestamp"] for r in batch] == [
        "2023-11-14T22:13:20.250000Z",
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:19Z",
    ]


async def test_equal_timestamps_come_later_indexed_first(store: ElasticsearchLogStore) -> None:
    same = T0.isoformat()
    await store.add([record(n, ts=same) for n in range(5)])
    await store.add([record(9)])
    assert await collect(store, "w1", batch_size=2) == [["q9", "q4"], ["q3", "q2"], ["q1", "q0"]]


async def test_client_filter_limit_and_batch_size(store: ElasticsearchLogStore) -> None:
    await store.add([record(n, client="a" if n % 2 else "b") for n in range(7)])
    await store.add([record(50, workload="w2", client="a")])
    assert await collect(store, "w1", "a") == [["q5", "q3", "q1"]]
    assert await collect(store, "w1", "b", batch_size=2) == [["q6", "q4"], ["q2", "q0"]]
    assert await collect(store, "w1", batch_size=3, limit=5) == [["q6", "q5", "q4"], ["q3", "q2"]]
    assert await collect(store, "w1", batch_size=100, limit=50) == [
        ["q6", "q5", "q4", "q3", "q2", "q1", "q0"]
    ]
    assert await collect(store, "w1", limit=0) == []
    assert await collect(store, "nobody") == []
    assert await collect(store, "w1", "nobody") == []
    with pytest.raises(ValueError, match="batch_size"):
        await collect(store, "w1", batch_size=0)


async def test_time_window(osmem: OsmemServer, store: ElasticsearchLogStore, index: str) -> None:
    await store.add([record(n) for n in range(10)])
    # Other applications' documents, dated in epoch seconds (the blueprint docs' form, which
    # Elasticsearch stores as millis) and in epoch millis.
    bulk_raw(osmem, index, [raw_doc(103, T0_S + 3), raw_doc(108, T0_S + 8)])
    bulk_raw(osmem, index, [raw_doc(204, (T0_S + 4) * 1000 + 500)])
    since, until = T0 + timedelta(seconds=3), T0 + timedelta(seconds=7)
    window = await collect(store, "w1", since=since, until=until)
    assert sorted(window[0]) == sorted(["q3", "q4", "q5", "q6", "q103", "q204"])
    assert await store.count("w1", since=since, until=until) == 6
    naive = since.replace(tzinfo=None), until.replace(tzinfo=None)
    assert await store.count("w1", since=naive[0], until=naive[1]) == 6
    assert await store.count("w1", since=T0 + timedelta(seconds=8)) == 3  # q8, q9, q108
    assert await store.count("w1", until=T0 + timedelta(seconds=1)) == 1  # q0
    assert await collect(store, "w1", since=until, until=since) == []
    [summary] = await store.workloads(since=since, until=until)
    assert (summary.records, summary.oldest, summary.newest) == (
        6,
        since,
        T0 + timedelta(seconds=6),
    )


async def test_workloads_read_every_timestamp_form(
    osmem: OsmemServer, store: ElasticsearchLogStore, index: str
) -> None:
    assert await store.workloads() == []
    await store.add([record(n, client="b") for n in (5, 1, 3)])
    bulk_raw(
        osmem,
        index,
        [
            raw_doc(0, T0_S + 7, client="a"),  # epoch seconds
            raw_doc(1, (T0_S + 2) * 1000, workload="w0", client="z"),  # epoch millis
            raw_doc(2, "2024-01-01T01:00:00+01:00", workload="w0", client="z"),  # ISO, offset
        ],
    )
    assert await store.workloads() == [
        WorkloadSummary("w0", "z", 2, T0, T0 + timedelta(seconds=2)),
        WorkloadSummary("w1", "a", 1, T0 + timedelta(seconds=7), T0 + timedelta(seconds=7)),
        WorkloadSummary("w1", "b", 3, T0 + timedelta(seconds=1), T0 + timedelta(seconds=5)),
    ]
    assert await store.count() == 6
    assert await store.count(client_id="z") == 2


async def test_bulk_item_errors_name_how_many_and_why(
    osmem: OsmemServer, proxy: MediaTypeProxy, index: str
) -> None:
    # An index made by someone else, where client_id is a number: one of two documents fails.
    osmem.request(
        "PUT",
        f"/{index}",
        {
            "mappings": {
                "properties": {"client_id": {"type": "long"}, "timestamp": {"type": "date"}}
            }
        },
    )
    url = f"http://user:s3cret@{proxy.url.removeprefix('http://')}/{index}"
    async with ElasticsearchLogStore(url) as store:
        with pytest.raises(RemoteCallError) as info:
            await store.add([record(1, client="7"), record(2, client="x")])
        assert await store.count() == 1
    message = str(info.value)
    assert message.startswith(f"Elasticsearch bulk index to {proxy.url}/{index} failed for 1 of 2")
    assert "(1 stored)" in message and "client_id" in message
    assert "s3cret" not in message
    assert not info.value.retryable


async def test_server_down_is_a_clear_connection_error() -> None:
    port = free_port()
    async with open_log_store(f"http://elastic:s3cret@127.0.0.1:{port}/logs") as store:
        with pytest.raises(ConnectionFailed) as info:
            await store.add([record(1)])
    message = str(info.value)
    assert f"cannot reach Elasticsearch at http://127.0.0.1:{port}/logs" in message
    assert "check log_store_url" in message
    assert "s3cret" not in message and "elastic" not in message


async def test_credentials_are_sent_as_headers(proxy: MediaTypeProxy, index: str) -> None:
    host = proxy.url.removeprefix("http://")
    proxy.requests.clear()
    async with open_log_store(f"http://elastic:p%40ss@{host}/{index}") as store:
        await store.count()
    expected = "Basic " + base64.b64encode(b"elastic:p@ss").decode()
    assert {r.headers["authorization"] for r in proxy.requests} == {expected}
    proxy.requests.clear()
    async with open_log_store(f"http://{host}/{index}", api_key="a2V5OnNlY3JldA==") as store:
        await store.count()
    assert {r.headers["authorization"] for r in proxy.requests} == {"ApiKey a2V5OnNlY3JldA=="}


async def test_versioned_media_types_on_every_request(
    proxy: MediaTypeProxy, store: ElasticsearchLogStore
) -> None:
    await store.add([record(1)])
    await store.count()
    await collect(store, "w1")
    await store.workloads()
    assert len(proxy.requests) >= 6
    for request in proxy.requests:
        assert request.headers["accept"] == ES_JSON
        if request.body:
            expected = ES_NDJSON if request.path.endswith("/_bulk") else ES_JSON
            assert request.headers["content-type"] == expected


async def test_plain_json_after_a_406(osmem: OsmemServer, index: str) -> None:
    """Straight to osmem (no proxy): it refuses the versioned types, the store switches."""
    async with ElasticsearchLogStore(f"{osmem.url}/{index}") as store:
        assert await store.add([record(1), record(2)]) == 2
        assert await collect(store, "w1") == [["q2", "q1"]]


async def test_early_exit_clears_the_scroll(
    proxy: MediaTypeProxy, store: ElasticsearchLogStore
) -> None:
    await store.add([record(n) for n in range(6)])
    proxy.requests.clear()
    batches = store.iter_batches("w1", batch_size=2)
    assert ids(await anext(batches)) == ["q5", "q4"]
    await batches.aclose()
    assert paths(proxy)[-1] == "DELETE /_search/scroll"


async def test_closed_store_refuses_work(proxy: MediaTypeProxy, index: str) -> None:
    store = ElasticsearchLogStore(f"{proxy.url}/{index}")
    await store.add([record(1)])
    await store.aclose()
    await store.aclose()  # idempotent
    with pytest.raises(ConnectionFailed, match="closed"):
        await store.count()


async def test_closing_makes_new_documents_searchable(proxy: MediaTypeProxy, index: str) -> None:
    async with ElasticsearchLogStore(f"{proxy.url}/{index}") as store:
        await store.add([record(1)])
        proxy.requests.clear()
    assert paths(proxy) == [f"POST /{index}/_refresh"]


# --- URLs ---


@pytest.mark.parametrize(
    ("url", "base", "index", "user", "password"),
    [
        ("http://localhost:9200", "http://localhost:9200", "flywheel", None, None),
        ("https://es.example:9243/", "https://es.example:9243", "flywheel", None, None),
        ("HTTP://es:9200/my-logs", "http://es:9200", "my-logs", None, None),
        ("http://elastic:s%3Acret@es:9200/logs", "http://es:9200", "logs", "elastic", "s:cret"),
        ("http://[::1]:9200/logs", "http://[::1]:9200", "logs", None, None),
    ],
)
def test_elasticsearch_urls(
    url: str, base: str, index: str, user: str | None, password: str | None
) -> None:
    target = parse_elasticsearch_url(url)
    assert (target.base_url, target.index, target.username, target.password) == (
        base,
        index,
        user,
        password,
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://es:9200/Logs", "not a valid index name"),
        ("http://es:9200/_logs", "not a valid index name"),
        ("http://es:9200/a/b", "the path must be just the index name"),
        ("http://elastic:s3cret@es:9200/?api_key=s3cret", "no query"),
        ("http://elastic:s3cret@es:port/logs", "invalid log_store_url"),
        ("http:///logs", r"expected http\(s\)://"),
    ],
)
def test_bad_elasticsearch_urls(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as info:
        open_log_store(url)
    assert "s3cret" not in str(info.value)


def test_open_log_store_picks_elasticsearch_without_io() -> None:
    port = free_port()  # nothing listens there: opening must not connect
    store = open_log_store(f"http://127.0.0.1:{port}/my-logs", api_key="k")
    assert isinstance(store, ElasticsearchLogStore)
    assert (store.url, store.index) == (f"http://127.0.0.1:{port}/my-logs", "my-logs")


# --- recorded Elasticsearch 8.x answers (point in time, bulk errors, security) ---


PIT_1 = orjson.loads(fixture("pit_open.json"))["id"]
PIT_2 = orjson.loads(fixture("search_pit_page2.json"))["pit_id"]
READY = {("HEAD", "/flywheel"): [Reply(200)]}


def pit_script(*pages: Reply) -> dict[tuple[str, str], list[Reply]]:
    return {
        **READY,
        ("POST", "/flywheel/_pit"): [Reply(200, "pit_open.json")],
        ("POST", "/_search"): list(pages),
        ("DELETE", "/_pit"): [Reply(200, "pit_close.json")],
    }


PAGES = (
    Reply(200, "search_pit_page1.json"),
    Reply(200, "search_pit_page2.json"),
    Reply(200, "search_pit_end.json"),
)


async def test_point_in_time_pages_with_search_after() -> None:
    async with ScriptedElasticsearch(pit_script(*PAGES)) as es:
        async with ElasticsearchLogStore(f"{es.url}/flywheel") as store:
            batches = [b async for b in store.iter_raw("aiva", "dev", batch_size=2)]
        [opened] = es.calls("POST", "/flywheel/_pit")
        searches = [r.json() for r in es.calls("POST", "/_search")]
        [closed] = es.calls("DELETE", "/_pit")
    docs = [orjson.loads(doc) for batch in batches for doc in batch]
    assert [len(b) for b in batches] == [2, 2]
    assert [d["timestamp"] for d in docs] == [
        "2024-05-02T10:15:07Z",
        "2024-05-02T10:15:01Z",
        "2024-05-02T10:14:00.250Z",
        1714644000,  # as the application wrote it; LogRecord reads it as epoch seconds
    ]
    assert opened.query == {"keep_alive": "1m"}
    assert len(searches) == 3
    for body in searches:
        assert body["size"] == 2
        assert body["sort"] == [{"timestamp": {"order": "desc"}}, {"_shard_doc": "desc"}]
        assert body["query"] == {
            "bool": {"filter": [{"term": {"workload_id": "aiva"}}, {"term": {"client_id": "dev"}}]}
        }
        assert body["pit"]["keep_alive"] == "1m"
    assert [b["pit"]["id"] for b in searches] == [PIT_1, PIT_1, PIT_2], "the newest pit_id is used"
    assert "search_after" not in searches[0]
    assert searches[1]["search_after"] == [1714644901000, 17]
    assert searches[2]["search_after"] == [1714644000, 3]
    assert closed.json() == {"id": PIT_2}
    assert all(r.headers["accept"] == ES_JSON for r in es.requests)
    assert LogRecord.model_validate(docs[3]).timestamp == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)


async def test_point_in_time_closed_on_early_exit_and_limit() -> None:
    pages = (Reply(200, "search_pit_page1.json"),) * 2 + (Reply(200, "search_pit_page2.json"),)
    async with ScriptedElasticsearch(pit_script(*pages)) as es:
        async with ElasticsearchLogStore(f"{es.url}/flywheel") as store:
            batches = store.iter_batches("aiva", batch_size=2)
            assert len(await anext(batches)) == 2
            await batches.aclose()
            assert len(es.calls("DELETE", "/_pit")) == 1
            limited = [b async for b in store.iter_raw("aiva", limit=3, batch_size=2)]
        assert [len(b) for b in limited] == [2, 1]
        sizes = [r.json()["size"] for r in es.calls("POST", "/_search")]
        assert sizes == [2, 2, 1], "the last page asks only for what the limit leaves"
        assert len(es.calls("DELETE", "/_pit")) == 2


async def test_point_in_time_closed_when_a_page_fails() -> None:
    script = pit_script(Reply(200, "search_pit_page1.json"), Reply(503, "search_unavailable.json"))
    async with ScriptedElasticsearch(script) as es:
        async with ElasticsearchLogStore(f"{es.url}/flywheel") as store:
            with pytest.raises(RemoteCallError) as info:
                _ = [b async for b in store.iter_raw("aiva", batch_size=2)]
        assert len(es.calls("DELETE", "/_pit")) == 1
    assert str(info.value).startswith(
        f"Elasticsearch search to {es.url}/flywheel failed: 503 "
        "search_phase_execution_exception: all shards failed"
    )
    assert info.value.retryable and info.value.status_code == 503


async def test_a_partial_shard_failure_is_an_error() -> None:
    async with ScriptedElasticsearch(pit_script(Reply(200, "search_shard_failure.json"))) as es:
        async with ElasticsearchLogStore(f"{es.url}/flywheel") as store:
            with pytest.raises(RemoteCallError, match=r"failed on 1 shard\(s\): node_not_conn"):
                _ = [b async for b in store.iter_raw("aiva")]
        assert len(es.calls("DELETE", "/_pit")) == 1


async def test_recorded_bulk_item_errors() -> None:
    script = {**READY, ("POST", "/flywheel/_bulk"): [Reply(200, "bulk_item_errors.json")]}
    async with ScriptedElasticsearch(script) as es:
        async with ElasticsearchLogStore(f"{es.url}/flywheel") as store:
            with pytest.raises(RemoteCallError) as info:
                await store.add([record(1), record(2), record(3)])
        [bulk] = es.calls("POST", "/flywheel/_bulk")
    assert str(info.value) == (
        f"Elasticsearch bulk index to {es.url}/flywheel failed for 2 of 3 records (1 stored); "
        "first error: strict_dynamic_mapping_exception: [1:187] mapping set to strict, dynamic "
        "introduction of [description] within [_doc] is not allowed"
    )
    assert not info.value.retryable
    assert bulk.headers["content-type"] == ES_NDJSON
    lines = bulk.body.splitlines()
    assert bulk.body.endswith(b"\n") and len(lines) == 6
    assert [orjson.loads(line) for line in lines[::2]] == [{"index": {}}] * 3
    assert orjson.loads(lines[1]) == {
        "workload_id": "w1",
        "client_id": "c1",
        "timestamp": "2024-01-01T00:00:01Z",
        "request": {"messages": [{"role": "user", "content": "q1"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": "a1"}}]},
    }


async def test_recorded_count_with_filters_and_window() -> None:
    script = {**READY, ("POST", "/flywheel/_count"): [Reply(200, "count.json")]}
    since, until = datetime(2024, 5, 1), datetime(2024, 5, 2, tzinfo=UTC)  # naive means UTC
    async with ScriptedElasticsearch(script) as es:
        async with ElasticsearchLogStore(f"{es.url}/flywheel") as store:
            assert await store.count("aiva", "dev", since=since, until=until) == 1234
            assert await store.count() == 1234
        first, second = (r.json() for r in es.calls("POST", "/flywheel/_count"))
    since_ms, until_ms = 1714521600000, 1714608000000
    assert first == {
        "query": {
            "bool": {
                "filter": [
                    {"term": {"workload_id": "aiva"}},
                    {"term": {"client_id": "dev"}},
                    {
                        "bool": {
                            "should": [
                                {
                                    "range": {
                                        "timestamp": {
                                            "gte": since_ms,
                                            "lt": until_ms,
                                            "format": "epoch_millis",
                                        }
                                    }
                                },
                                {
                                    "range": {
                                        "timestamp": {
                                            "gte": since_ms // 1000,
                                            "lt": until_ms // 1000,
                                            "format": "epoch_millis",
                                        }
                                    }
                                },
                            ],
                            "minimum_should_match": 1,
                        }
                    },
                ]
            }
        }
    }
    assert second == {"query": {"match_all": {}}}


async def test_recorded_index_creation_uses_the_blueprint_mapping() -> None:
    script = {
        ("HEAD", "/flywheel"): [Reply(404)],
        ("PUT", "/flywheel"): [Reply(200, "index_created.json")],
        ("POST", "/flywheel/_count"): [Reply(200, "count.json")],
    }
    async with ScriptedElasticsearch(script) as es:
        async with ElasticsearchLogStore(f"{es.url}/flywheel") as store:
            await store.count()
        [put] = es.calls("PUT", "/flywheel")
    assert put.json() == INDEX_DEFINITION
    assert put.headers["content-type"] == ES_JSON


async def test_recorded_authentication_failure_says_what_to_do() -> None:
    script = {**READY, ("POST", "/flywheel/_count"): [Reply(401, "security_exception.json")]}
    async with ScriptedElasticsearch(script) as es:
        host = es.url.removeprefix("http://")
        async with open_log_store(f"http://elastic:s3cret@{host}/flywheel") as store:
            with pytest.raises(RemoteCallError) as basic:
                await store.count()
        async with open_log_store(f"{es.url}/flywheel", api_key="k3y-s3cret") as store:
            with pytest.raises(RemoteCallError) as api_key:
                await store.count()
    for info in (basic, api_key):
        message = str(info.value)
        assert message.startswith(f"Elasticsearch count to {es.url}/flywheel failed: 401 ")
        assert "security_exception: unable to authenticate user [elastic]" in message
        assert "log_store_api_key_env" in message
        assert "s3cret" not in message
        assert not info.value.retryable


async def test_recorded_workloads_convert_every_date_form() -> None:
    script = {**READY, ("POST", "/flywheel/_search"): [Reply(200, "workloads_composite.json")]}
    async with ScriptedElasticsearch(script) as es:
        async with ElasticsearchLogStore(f"{es.url}/flywheel") as store:
            summaries = await store.workloads()
        [search] = es.calls("POST", "/flywheel/_search")
    assert summaries == [
        WorkloadSummary(
            "aiva",
            "dev",
            4,
            datetime(2024, 5, 2, 10, 0, tzinfo=UTC),  # written in epoch seconds
            datetime(2024, 5, 2, 10, 15, 7, tzinfo=UTC),
        ),
        WorkloadSummary("aiva", "prod", 2, None, None),  # only malformed timestamps
    ]
    composite = search.json()["aggs"]["pairs"]["composite"]
    assert [next(iter(s)) for s in composite["sources"]] == ["workload_id", "client_id"]
