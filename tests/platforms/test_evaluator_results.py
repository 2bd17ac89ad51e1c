"""What the built-in evaluator adds for decisions: intervals, the latency distribution,
throughput, tokens/s and the divergent examples (against the real scripted server)."""

from __future__ import annotations

from typing import Any

import pytest

from flywheel.clients.artifacts import ArtifactStore
from flywheel.platforms.evaluator import EXAMPLES_FILE, EvalCheckpoint
from flywheel.schemas import WorkloadType
from flywheel.scoring.confidence import mean_interval
from tests.platforms.test_evaluator import (
    TOOL_RECORDS,
    config,
    evaluate,
    server,  # noqa: F401 - fixture
    store,  # noqa: F401 - fixture
    text_record,
)
from tests.support.openai_server import ScriptedOpenAIServer

PREFIX = "runs/r1/small/base/replies"


async def test_every_score_has_its_interval_and_sample_size(
    server: ScriptedOpenAIServer,  # noqa: F811
    store: ArtifactStore,  # noqa: F811
) -> None:
    result = await evaluate(server, store, TOOL_RECORDS, settings=config(bootstrap_seed=5))
    assert result.n_scored == 10
    for metric in ("function_name_accuracy", "function_name_and_args_accuracy"):
        interval = result.intervals[metric]
        assert interval.n == 10 and interval.level == 0.95
        assert interval.low <= result.metrics[metric] <= interval.high
    # The same per-record scores and seed give the same interval as the pure function.
    rows = [1.0] * 6 + [0.0] * 4  # six records with the right name and arguments
    expected = mean_interval(rows, seed=5)
    assert result.intervals["function_name_and_args_accuracy"] == expected


async def test_latency_distribution_tokens_and_throughput(
    store: ArtifactStore,  # noqa: F811
) -> None:
    script = {f"order {i}": {"content": "ok"} for i in range(10)}
    with ScriptedOpenAIServer(script, delay_s=0.05) as slow:
        result = await evaluate(slow, store, TOOL_RECORDS, settings=config(concurrency=2))
    latency = result.latency
    assert latency is not None and latency.n == 10
    assert 0.05 <= latency.min_s <= latency.p50_s <= latency.p95_s <= latency.max_s
    assert sum(latency.histogram_counts) == 10
    assert result.concurrency == 2
    assert result.throughput_rps is not None and 5 < result.throughput_rps <= 40  # ≈ 2 / 0.05 s
    assert result.tokens_out == 10  # the scripted server counts one token for "ok"
    assert result.tokens_per_s is not None and result.tokens_per_s > 0
    assert result.ttft_p50_s is None  # nothing was streamed


async def test_divergent_examples_are_saved_next_to_the_checkpoint(
    server: ScriptedOpenAIServer,  # noqa: F811
    store: ArtifactStore,  # noqa: F811
) -> None:
    result = await evaluate(server, store, TOOL_RECORDS, settings=config(divergent_examples=3))
    ref = result.examples
    assert ref is not None and ref.n_records == 3
    assert ref.uri == store.uri_for(f"runs/r1/small/base/{EXAMPLES_FILE}")
    lines = await store.read_jsonl(ref.uri)
    # Records 7 (wrong tool), 8 and 9 (text instead of a call) diverge most; 6 (wrong argument)
    # comes after them and is cut off at three.
    assert [line["index"] for line in lines] == [7, 8, 9]
    assert (
        lines[0]["reason"] == "wrong tool: production called get_order, candidate called "
        "cancel_order"
    )
    assert lines[1]["reason"] == "production called get_order; candidate answered in text"
    assert lines[0]["prompt"] == "order 7"
    assert lines[0]["expected"]["tool_calls"][0]["name"] == "get_order"
    # The file is not a reply chunk: resuming reads only the checkpoint's replies.
    assert len(await EvalCheckpoint(store, PREFIX).load()) == 10
    all_of_them = await evaluate(
        server, store, TOOL_RECORDS, settings=config(divergent_examples=10), prefix="other/replies"
    )
    assert all_of_them.examples is not None and all_of_them.examples.n_records == 4
    none = await evaluate(
        server, store, TOOL_RECORDS, settings=config(divergent_examples=0), prefix="x/replies"
    )
    assert none.examples is None


async def test_generic_examples_rank_by_text_similarity(store: ArtifactStore) -> None:  # noqa: F811
    records = [
        text_record("q0", "We open at nine."),
        text_record("q1", "Shipping is free over fifty euros."),
        text_record("q2", "Returns take two weeks."),
    ]
    script: dict[str, Any] = {
        "q0": {"content": "We open at nine."},
        "q1": {"content": "Shipping is free above fifty."},
        "q2": {"content": "Bananas."},
    }
    with ScriptedOpenAIServer(script) as answers:
        result = await evaluate(
            answers, store, records, workload_type=WorkloadType.GENERIC, settings=config()
        )
    assert result.examples is not None
    lines = await store.read_jsonl(result.examples.uri)
    assert [line["index"] for line in lines] == [2, 1]  # the exact answer does not diverge
    assert lines[0]["reason"].startswith("ROUGE-L 0.00")
    assert lines[0]["divergence"] == pytest.approx(1.0)
    assert set(result.intervals) >= {"rouge_l", "token_f1"}


async def test_a_fully_resumed_evaluation_measures_no_throughput(
    server: ScriptedOpenAIServer,  # noqa: F811
    store: ArtifactStore,  # noqa: F811
) -> None:
    first = await evaluate(server, store, TOOL_RECORDS)
    again = await evaluate(server, store, TOOL_RECORDS)  # every reply is in the checkpoint
    assert first.throughput_rps is not None and again.throughput_rps is None
    assert again.intervals == first.intervals
    assert again.examples == first.examples
