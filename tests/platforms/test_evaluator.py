"""The built-in evaluator against a real scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.llm import ChatClient
from flywheel.config import EvaluationConfig
from flywheel.platforms.base import StepContext
from flywheel.platforms.evaluator import (
    EvalCheckpoint,
    HttpResponder,
    Reply,
    build_chat_request,
    checkpoint_prefix,
    collector_paused,
    release_in_background,
    run_evaluation,
)
from flywheel.schemas import EvalKind, EvalResult, StepStatus, WorkloadType
from tests.support.openai_server import ScriptedOpenAIServer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "user_id": {"type": "string"}},
            },
        },
    },
    {"type": "function", "function": {"name": "cancel_order", "parameters": {"type": "object"}}},
]


def tool_record(prompt: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """An eval record in the log shape whose production answer is one tool call."""
    return {
        "workload_id": "orders",
        "client_id": "tests",
        "timestamp": 1_700_000_000,
        "request": {
            "model": "prod-model",
            "messages": [
                {"role": "system", "content": "You handle orders."},
                {"role": "user", "content": prompt},
            ],
            "tools": TOOLS,
        },
        "response": {
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": name, "arguments": arguments},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        },
    }


def text_record(prompt: str, answer: str) -> dict[str, Any]:
    """An eval record in the log shape whose production answer is text."""
    return {
        "workload_id": "chat",
        "client_id": "tests",
        "timestamp": 1_700_000_000,
        "request": {"messages": [{"role": "user", "content": prompt}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": answer}}]},
    }


ARGS = {"order_id": "A1", "user_id": "u7"}

# Ten tool-calling records: 7 right names, 6 right names and arguments.
TOOL_RECORDS = [tool_record(f"order {i}", "get_order", ARGS) for i in range(10)]
TOOL_SCRIPT: dict[str, dict[str, Any]] = {
    **{f"order {i}": {"tool_calls": [{"name": "get_order", "arguments": ARGS}]} for i in range(4)},
    # same arguments, other key order
    "order 4": {
        "tool_calls": [{"name": "get_order", "arguments": {"user_id": "u7", "order_id": "A1"}}]
    },
    # same arguments, given verbatim as a differently spaced JSON string
    "order 5": {
        "tool_calls": [{"name": "get_order", "arguments": '{ "user_id" : "u7","order_id":"A1" }'}]
    },
    # right function, wrong argument
    "order 6": {
        "tool_calls": [{"name": "get_order", "arguments": {"order_id": "B2", "user_id": "u7"}}]
    },
    # wrong function
    "order 7": {"tool_calls": [{"name": "cancel_order", "arguments": ARGS}]},
    # no tool call at all
    "order 8": {"content": "Sure, let me look."},
    # "order 9" is not scripted: the default text reply
}


def config(**overrides: Any) -> EvaluationConfig:
    options: dict[str, Any] = {"concurrency": 4, "retry_backoff_s": 0.005, "max_retries": 1}
    return EvaluationConfig(**{**options, **overrides})


@pytest.fixture
def server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(TOOL_SCRIPT) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path.as_uri())


async def evaluate(
    server: ScriptedOpenAIServer,
    store: ArtifactStore,
    records: list[dict[str, Any]],
    *,
    settings: EvaluationConfig | None = None,
    workload_type: WorkloadType = WorkloadType.TOOL_CALLING,
    ctx: StepContext | None = None,
    prefix: str = "runs/r1/small/base/replies",
) -> EvalResult:
    settings = settings or config()
    async with ChatClient(
        server.base_url,
        max_retries=settings.max_retries,
        retry_backoff_s=settings.retry_backoff_s,
        timeout_s=settings.request_timeout_s,
        max_connections=settings.concurrency,
    ) as client:
        return await run_evaluation(
            records=records,
            responder=HttpResponder(client, settings.concurrency),
            checkpoint=EvalCheckpoint(store, prefix),
            kind=EvalKind.BASE,
            workload_type=workload_type,
            model="small-model",
            config=settings,
            ctx=ctx or StepContext(),
        )


CORE_METRICS = ("function_name_accuracy", "function_name_and_args_accuracy", "rouge_l", "token_f1")


def core(metrics: dict[str, float]) -> dict[str, float]:
    """The per-record accuracy metrics (tool-calling runs add per-tool ones, tested apart)."""
    return {name: value for name, value in metrics.items() if name in CORE_METRICS}


def comparable(result: EvalResult) -> dict[str, Any]:
    """The parts of a result that must not depend on timing, order or resumption."""
    return result.model_dump(
        exclude={
            "latency_p50_s": True,
            "latency_p95_s": True,
            "latency": True,
            "tokens_per_s": True,
            "throughput_rps": True,
            "concurrency": True,
            "started_at": True,
            "finished_at": True,
            "examples": {"uri"},
        }
    )


# --- scoring -------------------------------------------------------------------------------


async def test_tool_calling_metrics(server: ScriptedOpenAIServer, store: ArtifactStore) -> None:
    result = await evaluate(server, store, TOOL_RECORDS)
    assert result.status == StepStatus.COMPLETED
    assert result.error is None
    assert core(result.metrics) == {
        "function_name_accuracy": pytest.approx(0.7),
        "function_name_and_args_accuracy": pytest.approx(0.6),
    }
    # One call per record: the first-call label agrees exactly when the name does.
    assert result.metrics["tool_label_accuracy"] == pytest.approx(0.7)
    assert sum(row["support"] for row in result.per_tool.values()) == 10
    assert sum(row["predicted"] for row in result.per_tool.values()) == 10
    f1s = [row["f1"] for row in result.per_tool.values() if row["f1"] is not None]
    assert result.metrics["tool_macro_f1"] == pytest.approx(sum(f1s) / len(f1s))
    assert (result.n_total, result.n_scored, result.n_failed) == (10, 10, 0)
    assert result.model == "small-model"
    assert result.kind == EvalKind.BASE
    assert result.latency_p50_s is not None and result.latency_p95_s is not None
    assert 0 < result.latency_p50_s <= result.latency_p95_s
    assert result.started_at is not None and result.finished_at is not None
    assert result.started_at <= result.finished_at
    # Server tokens are words: "You handle orders." + "order N" = 5 per request.
    assert result.tokens_in == 50
    assert result.tokens_out > 0
    # Every request replays the logged conversation and tools against the candidate model.
    bodies = [r.body for r in server.requests]
    assert {b["model"] for b in bodies} == {"small-model"}
    assert all(b["tools"] == TOOLS and "tool_choice" not in b for b in bodies)
    assert sorted(server.keys()) == sorted(f"order {i}" for i in range(10))


async def test_generic_workload_text_similarity(store: ArtifactStore) -> None:
    records = [
        text_record("q0", "the parcel ships on monday"),
        text_record("q1", "refunds take five days"),
        text_record("q2", "we open at nine"),
        text_record("q3", "alpha beta gamma"),
    ]
    script = {
        "q0": {"content": "the parcel ships on monday"},
        "q1": {"content": "refunds take five days"},
        "q2": {"content": "we open at nine"},
        "q3": {"content": "zulu yankee"},
    }
    with ScriptedOpenAIServer(script) as server:
        result = await evaluate(server, store, records, workload_type=WorkloadType.GENERIC)
        bodies = [r.body for r in server.requests]
    assert result.status == StepStatus.COMPLETED
    assert result.metrics == {"rouge_l": pytest.approx(0.75), "token_f1": pytest.approx(0.75)}
    assert all("tools" not in b for b in bodies)


async def test_failures_are_counted_separately_and_not_scored(
    server: ScriptedOpenAIServer, store: ArtifactStore
) -> None:
    # Two of the right answers fail for good: the 8 scored replies hold 5 right names+args.
    server.fail_key("order 0", n=100, status=500)
    server.fail_key("order 1", n=100, status=400)
    result = await evaluate(server, store, TOOL_RECORDS)
    assert result.status == StepStatus.COMPLETED
    assert (result.n_total, result.n_scored, result.n_failed) == (10, 8, 2)
    assert core(result.metrics) == {
        "function_name_accuracy": pytest.approx(5 / 8),
        "function_name_and_args_accuracy": pytest.approx(4 / 8),
    }
    assert server.count("order 0") == 2, "500 is retried (max_retries=1)"
    assert server.count("order 1") == 1, "400 is not retried"


async def test_max_failure_rate_fails_the_evaluation(
    server: ScriptedOpenAIServer, store: ArtifactStore
) -> None:
    for i in range(3):
        server.fail_key(f"order {i}", n=100, status=500)
    result = await evaluate(server, store, TOOL_RECORDS, settings=config(max_failure_rate=0.2))
    assert result.status == StepStatus.FAILED
    assert (result.n_failed, result.n_scored) == (3, 7)
    assert result.error is not None
    assert result.error.startswith(
        f"3 of 10 requests failed (first error: POST {server.base_url}/chat/completions"
    )
    assert result.metrics, "the scores of the answered records are still reported"


async def test_all_requests_failing_is_a_failure_even_at_rate_1(
    server: ScriptedOpenAIServer, store: ArtifactStore
) -> None:
    server.fail_next(100, status=400)
    result = await evaluate(server, store, TOOL_RECORDS[:3], settings=config(max_failure_rate=1.0))
    assert result.status == StepStatus.FAILED
    assert result.n_scored == 0 and result.metrics == {}
    assert result.latency_p50_s is None


async def test_empty_dataset_fails(server: ScriptedOpenAIServer, store: ArtifactStore) -> None:
    result = await evaluate(server, store, [])
    assert result.status == StepStatus.FAILED
    assert result.error == "the eval dataset has no records"


# --- concurrency ---------------------------------------------------------------------------


async def test_requests_run_in_parallel(store: ArtifactStore) -> None:
    records = [text_record(f"p{i}", "ok") for i in range(16)]
    with ScriptedOpenAIServer({}, delay_s=0.2) as server:
        started = time.perf_counter()
        result = await evaluate(server, store, records, settings=config(concurrency=8))
        elapsed = time.perf_counter() - started
    assert result.n_scored == 16
    assert elapsed < 1.2, f"16 × 0.2 s at concurrency 8 should take ~0.4 s, took {elapsed:.2f}"


async def test_one_slow_request_does_not_stall_the_others(store: ArtifactStore) -> None:
    records = [text_record("slow", "ok")] + [text_record(f"p{i}", "ok") for i in range(20)]
    with ScriptedOpenAIServer({}, delay_s=0.1, delays={"slow": 1.0}) as server:
        started = time.perf_counter()
        await evaluate(server, store, records, settings=config(concurrency=5))
        elapsed = time.perf_counter() - started
    # A queue: 4 workers share the 20 fast ones while one waits on the slow one (~1.0 s);
    # waves of 5 would take 1.0 + 4 × 0.1 s.
    assert elapsed < 1.3, f"took {elapsed:.2f} s"


class _BatchResponder:
    """A local-model-like responder: answers batches of 4 with the logged message."""

    batch_size = 4
    concurrency = 1

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.batches: list[list[int]] = []

    async def answer(self, requests: list[tuple[int, dict[str, Any]]]) -> list[Reply]:
        self.batches.append([i for i, _ in requests])
        await asyncio.sleep(0)
        return [
            Reply(
                i,
                True,
                self.records[i]["response"]["choices"][0]["message"],
                "stop",
                1,
                2,
                0.01,
                None,
            )
            for i, _ in requests
        ]


async def test_batched_responder(store: ArtifactStore) -> None:
    responder = _BatchResponder(TOOL_RECORDS)
    result = await run_evaluation(
        records=TOOL_RECORDS,
        responder=responder,
        checkpoint=EvalCheckpoint(store, "runs/r/c/base/replies"),
        kind=EvalKind.BASE,
        workload_type=WorkloadType.TOOL_CALLING,
        model="local",
        config=config(),
        ctx=StepContext(),
    )
    assert responder.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert core(result.metrics) == {
        "function_name_accuracy": 1.0,
        "function_name_and_args_accuracy": 1.0,
    }
    assert (result.tokens_in, result.tokens_out) == (10, 20)


# --- checkpoints, resume, heartbeats -------------------------------------------------------


async def test_checkpoint_chunks_every_n_replies(
    server: ScriptedOpenAIServer, store: ArtifactStore
) -> None:
    prefix = "runs/r1/small/base/replies"
    await evaluate(server, store, TOOL_RECORDS, settings=config(checkpoint_every=4), prefix=prefix)
    paths = await store.list(prefix)
    assert paths == [f"{prefix}/chunk-{n:06d}.jsonl" for n in range(3)]
    sizes = [len(await store.read_jsonl(p)) for p in paths]
    assert sizes == [4, 4, 2]
    loaded = await EvalCheckpoint(store, prefix).load()
    assert sorted(loaded) == list(range(10))
    assert all(r.ok and r.message for r in loaded.values())


async def test_resume_requests_only_missing_records(
    server: ScriptedOpenAIServer, store: ArtifactStore, tmp_path: Path
) -> None:
    uninterrupted = await evaluate(server, store, TOOL_RECORDS, prefix="full")
    full = await EvalCheckpoint(store, "full").load()

    # A previous attempt checkpointed records 0, 2, 5 and 7 (and a failure for 3).
    other = ArtifactStore((tmp_path / "other").as_uri())
    previous = EvalCheckpoint(other, "runs/r1/small/base/replies")
    await previous.append([full[5], full[0]])
    await previous.append([full[7], full[2], Reply.failed(3, "POST … failed: HTTP 503")])
    server.clear()

    heartbeats: list[dict[str, Any]] = []
    resumed = await evaluate(
        server, other, TOOL_RECORDS, ctx=StepContext(heartbeat=heartbeats.append)
    )

    assert sorted(server.keys()) == sorted(f"order {i}" for i in (1, 3, 4, 6, 8, 9))
    assert comparable(resumed) == comparable(uninterrupted)
    assert heartbeats[0] == {"done": 4, "total": 10, "failed": 0, "checkpointed": 4}
    assert heartbeats[-1] == {"done": 10, "total": 10, "failed": 0, "checkpointed": 10}
    # A third attempt has nothing left to ask.
    server.clear()
    again = await evaluate(server, other, TOOL_RECORDS)
    assert server.count() == 0
    assert comparable(again) == comparable(uninterrupted)


async def test_result_does_not_depend_on_completion_order(store: ArtifactStore) -> None:
    # Reverse the completion order with per-prompt delays; the result must not change.
    delays = {f"order {i}": 0.02 * (10 - i) for i in range(10)}
    with (
        ScriptedOpenAIServer(TOOL_SCRIPT) as fast,
        ScriptedOpenAIServer(TOOL_SCRIPT, delays=delays) as reordered,
    ):
        a = await evaluate(fast, store, TOOL_RECORDS, settings=config(concurrency=1), prefix="a")
        b = await evaluate(
            reordered, store, TOOL_RECORDS, settings=config(concurrency=10), prefix="b"
        )
    assert comparable(a) == comparable(b)


async def test_heartbeat_details(server: ScriptedOpenAIServer, store: ArtifactStore) -> None:
    server.fail_key("order 9", n=100, status=400)
    heartbeats: list[dict[str, Any]] = []
    await evaluate(
        server,
        store,
        TOOL_RECORDS,
        settings=config(checkpoint_every=3),
        ctx=StepContext(heartbeat=heartbeats.append),
    )
    assert len(heartbeats) == 12, "one at start, one per reply, one after the last checkpoint"
    assert heartbeats[0] == {"done": 0, "total": 10, "failed": 0, "checkpointed": 0}
    done = [h["done"] for h in heartbeats]
    assert done == sorted(done), "progress never goes backwards"
    assert done[1] >= 1 and done[-2] == 10
    assert all(h["total"] == 10 for h in heartbeats)
    assert all(
        h["checkpointed"] % 3 == 0 and h["checkpointed"] <= h["done"] for h in heartbeats[:11]
    )
    assert heartbeats[-1] == {"done": 10, "total": 10, "failed": 1, "checkpointed": 10}


async def test_heartbeat_error_stops_workers_and_keeps_the_checkpoint(
    store: ArtifactStore,
) -> None:
    class Cancelled(Exception):
        pass

    def heartbeat(details: dict[str, Any]) -> None:
        if details["done"] >= 5:
            raise Cancelled

    prefix = "runs/r1/small/base/replies"
    settings = config(concurrency=2, checkpoint_every=100)
    with ScriptedOpenAIServer(TOOL_SCRIPT, delay_s=0.05) as server:
        with pytest.raises(Cancelled):
            await evaluate(
                server,
                store,
                TOOL_RECORDS,
                settings=settings,
                ctx=StepContext(heartbeat),
                prefix=prefix,
            )
        await asyncio.sleep(0.15)  # let an abandoned in-flight request reach the log
        kept = await EvalCheckpoint(store, prefix).load()
        assert len(kept) >= 5, "the replies so far are flushed before re-raising"
        assert server.count() <= 5 + settings.concurrency, "workers stop taking new records"

        server.clear()
        resumed = await evaluate(server, store, TOOL_RECORDS, settings=settings, prefix=prefix)
        assert sorted(server.keys()) == sorted(f"order {i}" for i in range(10) if i not in kept)
    assert resumed.metrics["function_name_accuracy"] == pytest.approx(0.7)


async def test_task_cancellation_flushes_the_checkpoint(store: ArtifactStore) -> None:
    prefix = "runs/r1/small/base/replies"
    four_done = asyncio.Event()

    def heartbeat(details: dict[str, Any]) -> None:
        if details["done"] >= 4:
            four_done.set()

    with ScriptedOpenAIServer(TOOL_SCRIPT, delay_s=0.05) as server:
        task = asyncio.create_task(
            evaluate(
                server,
                store,
                TOOL_RECORDS,
                settings=config(concurrency=2, checkpoint_every=100),
                ctx=StepContext(heartbeat),
                prefix=prefix,
            )
        )
        await asyncio.wait_for(four_done.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    kept = await EvalCheckpoint(store, prefix).load()
    assert 4 <= len(kept) < 10


# --- pieces --------------------------------------------------------------------------------


def test_build_chat_request_replays_the_logged_request() -> None:
    record = tool_record("order 1", "get_order", ARGS)
    payload = build_chat_request(record, "small-model", EvaluationConfig())
    assert payload == {
        "model": "small-model",
        "messages": record["request"]["messages"],
        "tools": TOOLS,
        "temperature": 0.0,
        "max_tokens": 1024,
    }


def test_build_chat_request_options() -> None:
    record = tool_record("order 1", "get_order", ARGS)
    record["request"].update(tool_choice="auto", max_tokens=77, temperature=0.9)
    payload = build_chat_request(record, "m", EvaluationConfig(temperature=None))
    assert payload["tool_choice"] == "auto"
    assert payload["max_tokens"] == 77
    assert payload["temperature"] == 0.9, "no configured temperature: the logged one"
    payload = build_chat_request(record, "m", EvaluationConfig(temperature=0.3, max_tokens=9))
    assert (payload["temperature"], payload["max_tokens"]) == (0.3, 9)

    plain = text_record("hi", "hello")
    plain["request"]["tools"] = []
    payload = build_chat_request(plain, "m", EvaluationConfig(temperature=None))
    assert "tools" not in payload and "tool_choice" not in payload and "temperature" not in payload


def test_reply_json_round_trip() -> None:
    reply = Reply(3, True, {"role": "assistant", "content": "x"}, "stop", 5, 1, 0.25, None)
    assert Reply.from_json(reply.to_json()) == reply
    failed = Reply.failed(4, "boom")
    assert Reply.from_json(failed.to_json()) == failed


def test_checkpoint_prefix_is_path_safe() -> None:
    assert checkpoint_prefix("flywheel-w/1-2024:01", "small.v1", EvalKind.ICL) == (
        "runs/flywheel-w_1-2024_01/small.v1/icl/replies"
    )


def test_reply_to_json_has_every_field() -> None:
    reply = Reply(3, True, {"role": "assistant", "content": "x"}, "stop", 5, 1, 0.25, None)
    assert list(reply.to_json()) == [f.name for f in dataclasses.fields(Reply)]


def test_collector_pause_nests_and_restores() -> None:
    assert gc.isenabled()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_release_in_background_frees_the_dataset_on_another_thread() -> None:
    import threading
    import weakref

    class Record(dict):  # weak-referenceable, unlike a plain dict
        pass

    records: list[Any] = [Record(index=i) for i in range(1000)]
    first = weakref.ref(records[0])
    freed_on: list[str] = []
    weakref.finalize(records[-1], lambda: freed_on.append(threading.current_thread().name))
    release_in_background(records)
    for thread in threading.enumerate():
        if thread.name == "release-eval-dataset":
            thread.join(5)
    assert records == [] and first() is None
    assert freed_on == ["release-eval-dataset"]
