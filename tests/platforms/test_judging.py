"""LLM-as-judge similarity against a real scripted judge server on loopback."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.llm import ChatClient
from flywheel.config import Candidate, EvaluationConfig, LLMJudgeConfig, RunConfig
from flywheel.errors import ConfigError, UnsupportedOperation
from flywheel.platforms.base import StepContext
from flywheel.platforms.endpoints import EndpointsPlatform
from flywheel.platforms.evaluator import EvalCheckpoint, HttpResponder, run_evaluation
from flywheel.platforms.judging import (
    Judge,
    JudgeCounts,
    JudgePair,
    judge_base_url,
    last_user_text,
)
from flywheel.schemas import (
    DatasetFormat,
    Deployment,
    EvalKind,
    EvalResult,
    EvaluateInput,
    Platform,
    StepStatus,
    WorkloadType,
)
from flywheel.scoring.judge import JUDGE_SYSTEM_PROMPT, judge_messages
from tests.platforms.test_evaluator import TOOL_RECORDS, TOOL_SCRIPT, text_record
from tests.support.openai_server import ScriptedOpenAIServer

SECRET = "sk-judge-SECRET-7731"
KEY_ENV = "FLYWHEEL_TEST_JUDGE_KEY"
_CANDIDATE = re.compile(r"<candidate>\n(.*)\n</candidate>", re.DOTALL)

# What the judge answers, by the candidate answer it is shown.
JUDGE_ANSWERS = {
    "the parcel ships on monday": "Same facts, same conclusion.\nRATING: 10",
    "refunds take about five days": "Rating: 7/10",
    "we are open from nine": "Both answers look fine to me, hard to say.",
}
FAILING = "zulu yankee"  # the judge answers HTTP 500 whenever it is shown this candidate

# Four generic records; their candidate answers are JUDGE_ANSWERS' keys, then FAILING.
RECORDS = [
    text_record("q0", "the parcel ships on monday"),
    text_record("q1", "refunds take five days"),
    text_record("q2", "we open at nine"),
    text_record("q3", "alpha beta gamma"),
]
CANDIDATE_SCRIPT = {
    "q0": {"content": "the parcel ships on monday"},
    "q1": {"content": "refunds take about five days"},
    "q2": {"content": "we are open from nine"},
    "q3": {"content": FAILING},
}


def judge_script(key: str) -> dict[str, Any] | None:
    """The judge's reply for a judge request (its last user message is ``key``)."""
    found = _CANDIDATE.search(key)
    candidate = found.group(1) if found else ""
    return {"content": JUDGE_ANSWERS.get(candidate, "no idea")}


class FailingJudgeServer(ScriptedOpenAIServer):
    """A judge that answers HTTP 500 (echoing the API key) for the FAILING candidate."""

    def _take_fault(self, key: str) -> Any:
        if f"<candidate>\n{FAILING}\n</candidate>" in key:
            self.fail_key(key, n=1, status=500, message=f"boom, your key is {SECRET}")
        return super()._take_fault(key)


@pytest.fixture
def judge_server() -> Iterator[ScriptedOpenAIServer]:
    with FailingJudgeServer(judge_script, required_api_key=SECRET) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path.as_uri())


def settings(**overrides: Any) -> EvaluationConfig:
    options: dict[str, Any] = {"concurrency": 3, "retry_backoff_s": 0.005, "max_retries": 1}
    return EvaluationConfig(**{**options, **overrides})


def judge_config(base_url: str, **overrides: Any) -> LLMJudgeConfig:
    """A remote judge at ``base_url`` given as the full chat-completions URL, as the blueprint."""
    options: dict[str, Any] = {
        "deployment_type": "remote",
        "model_name": "judge-model",
        "url": f"{base_url}/chat/completions",
        "api_key_env": KEY_ENV,
    }
    return LLMJudgeConfig(**{**options, **overrides})


def make_judge(server: ScriptedOpenAIServer, **overrides: Any) -> Judge:
    return Judge(
        judge_config(server.base_url, **overrides),
        api_key=SECRET,
        max_retries=1,
        retry_backoff_s=0.005,
    )


# --- the judge on its own --------------------------------------------------------------------


async def test_ratings_are_parsed_and_failures_counted(judge_server: ScriptedOpenAIServer) -> None:
    pairs = [
        JudgePair("ref", "the parcel ships on monday", conversation="when does it ship?"),
        JudgePair("ref", "refunds take about five days"),
        JudgePair("ref", "we are open from nine"),
        JudgePair("ref", FAILING),
    ]
    async with make_judge(judge_server) as judge:
        scores = await judge.judge(pairs, concurrency=2)
    assert scores == [10, 7, None, None]  # "RATING: 10" reads as ten, not one
    assert judge.counts == JudgeCounts(judged=4, failed=1, unparsed=1)
    chats = [r for r in judge_server.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 5  # the failing pair was retried once (max_retries=1)
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in chats)
    first = next(r.body for r in chats if "parcel" in (r.key or ""))
    assert first == {
        "model": "judge-model",
        "messages": judge_messages(
            "ref", "the parcel ships on monday", conversation="when does it ship?"
        ),
        "temperature": 0,
    }
    assert first["messages"][0]["content"] == JUDGE_SYSTEM_PROMPT


async def test_every_call_failing_gives_none_without_raising(
    judge_server: ScriptedOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    judge_server.fail_next(10, status=500, message=f"echo {SECRET}")
    caplog.set_level(logging.DEBUG)
    async with make_judge(judge_server) as judge:
        scores = await judge.judge([JudgePair("a", "b"), JudgePair("c", "d")], concurrency=4)
    assert scores == [None, None]
    assert judge.counts == JudgeCounts(judged=2, failed=2, unparsed=0)
    assert SECRET not in caplog.text


async def test_no_pairs_no_calls(judge_server: ScriptedOpenAIServer) -> None:
    async with make_judge(judge_server) as judge:
        assert await judge.judge([], concurrency=4) == []
    assert judge_server.count() == 0


async def test_a_v1_base_url_is_accepted(judge_server: ScriptedOpenAIServer) -> None:
    async with make_judge(judge_server, url=judge_server.base_url) as judge:
        assert await judge.judge([JudgePair("r", "the parcel ships on monday")], concurrency=1) == [
            10
        ]


def test_judge_base_url() -> None:
    assert judge_base_url("https://h/v1/chat/completions") == "https://h/v1"
    assert judge_base_url("https://h/v1/chat/completions/") == "https://h/v1"
    assert judge_base_url("https://h/v1") == "https://h/v1"
    assert judge_base_url("https://h/v1/") == "https://h/v1"


def test_last_user_text() -> None:
    request = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ]
    }
    assert last_user_text(request) == "second"
    assert last_user_text({"messages": [{"role": "system", "content": "x"}]}) is None
    assert last_user_text(None) is None


def test_local_judge_is_refused_clearly() -> None:
    config = LLMJudgeConfig(deployment_type="local", model_name="meta/llama-3.3-70b-instruct")
    with pytest.raises(UnsupportedOperation) as raised:
        Judge.from_config(config, settings())
    message = str(raised.value)
    assert "nemo platform" in message
    assert "deployment_type: remote" in message and "url" in message
    with pytest.raises(UnsupportedOperation):
        Judge(config, api_key=SECRET)


def test_from_config_reads_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = judge_config("http://127.0.0.1:9/v1")
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=KEY_ENV):
        Judge.from_config(config, settings())
    monkeypatch.setenv(KEY_ENV, SECRET)
    judge = Judge.from_config(config, settings())
    assert judge.model == "judge-model"


# --- the judge in the evaluator --------------------------------------------------------------


async def evaluate(
    server: ScriptedOpenAIServer,
    store: ArtifactStore,
    records: list[dict[str, Any]],
    judge: Judge | None,
    *,
    workload_type: WorkloadType = WorkloadType.GENERIC,
    concurrency: int = 3,
    prefix: str = "runs/r1/small/base/replies",
) -> EvalResult:
    options = settings(concurrency=concurrency)
    async with ChatClient(
        server.base_url, max_retries=1, retry_backoff_s=0.005, max_connections=concurrency
    ) as client:
        return await run_evaluation(
            records=records,
            responder=HttpResponder(client, concurrency),
            checkpoint=EvalCheckpoint(store, prefix),
            kind=EvalKind.BASE,
            workload_type=workload_type,
            model="small-model",
            config=options,
            ctx=StepContext(),
            judge=judge,
        )


def comparable(result: EvalResult) -> dict[str, Any]:
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


async def test_generic_evaluation_gets_judge_metrics(
    judge_server: ScriptedOpenAIServer, store: ArtifactStore
) -> None:
    with ScriptedOpenAIServer(CANDIDATE_SCRIPT) as server:
        plain = await evaluate(server, store, RECORDS, None, prefix="plain")
        async with make_judge(judge_server) as judge:
            judged = await evaluate(server, store, RECORDS, judge, prefix="judged")
    assert judged.status == StepStatus.COMPLETED
    assert (judged.n_total, judged.n_scored, judged.n_failed) == (4, 4, 0)
    # Ratings 10, 7, unreadable, call failed: means over the two readable ones.
    assert judged.metrics["llm_judge_score"] == pytest.approx(8.5)
    assert judged.metrics["llm_judge_similarity"] == pytest.approx((1.0 + 6 / 9) / 2)
    assert judged.metrics["llm_judge_unparsed"] == pytest.approx(0.5)
    assert judge.counts == JudgeCounts(judged=4, failed=1, unparsed=1)
    # The other metrics are exactly those of an evaluation without a judge.
    assert {k: v for k, v in judged.metrics.items() if not k.startswith("llm_judge")} == (
        plain.metrics
    )
    assert not any(k.startswith("llm_judge") for k in plain.metrics)
    # The judge saw each record's user turn, the logged answer and the candidate's answer.
    q0 = next(r.key for r in judge_server.requests if r.key and "parcel" in r.key)
    assert (
        q0
        == judge_messages(
            "the parcel ships on monday", "the parcel ships on monday", conversation="q0"
        )[1]["content"]
    )
    assert SECRET not in judged.model_dump_json()


async def test_judge_metrics_do_not_depend_on_reply_order(
    judge_server: ScriptedOpenAIServer, store: ArtifactStore
) -> None:
    results = []
    for concurrency, delays in ((1, {}), (4, {"q0": 0.05, "q1": 0.02})):
        with ScriptedOpenAIServer(CANDIDATE_SCRIPT, delays=delays) as server:
            async with make_judge(judge_server) as judge:
                results.append(
                    await evaluate(
                        server,
                        store,
                        RECORDS,
                        judge,
                        concurrency=concurrency,
                        prefix=f"c{concurrency}",
                    )
                )
    assert comparable(results[0]) == comparable(results[1])


async def test_tool_calling_evaluation_is_not_judged(
    judge_server: ScriptedOpenAIServer, store: ArtifactStore
) -> None:
    with ScriptedOpenAIServer(TOOL_SCRIPT) as server:
        async with make_judge(judge_server) as judge:
            result = await evaluate(
                server, store, TOOL_RECORDS, judge, workload_type=WorkloadType.TOOL_CALLING
            )
    assert result.status == StepStatus.COMPLETED
    assert judge_server.count() == 0
    assert not any(k.startswith("llm_judge") for k in result.metrics)


async def test_endpoints_platform_passes_the_judge(
    judge_server: ScriptedOpenAIServer,
    store: ArtifactStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    with ScriptedOpenAIServer(CANDIDATE_SCRIPT) as server:
        candidate = Candidate(name="small", model="small-model", base_url=server.base_url)
        config = RunConfig(
            candidates=[candidate],
            evaluation=settings(),
            llm_judge_config=judge_config(judge_server.base_url),
        )
        request = EvaluateInput(
            run_id="run-1",
            candidate=candidate,
            config=config,
            deployment=Deployment(
                candidate="small",
                platform=Platform.ENDPOINTS,
                model="small-model",
                base_url=server.base_url,
            ),
            kind=EvalKind.BASE,
            dataset=await store.put_jsonl(RECORDS, DatasetFormat.EVAL),
            workload_type=WorkloadType.GENERIC,
        )
        result = await EndpointsPlatform(store).evaluate(request, StepContext())
    assert result.metrics["llm_judge_score"] == pytest.approx(8.5)
    assert result.metrics["llm_judge_unparsed"] == pytest.approx(0.5)
    assert SECRET not in result.model_dump_json()
    assert SECRET not in config.model_dump_json()

    local = config.model_copy(
        update={"llm_judge_config": LLMJudgeConfig(deployment_type="local", model_name="j")}
    )
    # A blueprint config's local judge NIM cannot be deployed here yet: not judged, with a
    # warning, instead of failing the evaluation (the replies come from the checkpoint).
    with caplog.at_level(logging.WARNING, logger="flywheel.platforms.judging"):
        unjudged = await EndpointsPlatform(store).evaluate(
            request.model_copy(update={"config": local}), StepContext()
        )
    assert unjudged.status == result.status
    assert "llm_judge_score" not in unjudged.metrics
    assert unjudged.metrics["rouge_l"] == pytest.approx(result.metrics["rouge_l"])
    assert "needs the nemo platform" in caplog.text


async def test_a_heartbeat_that_raises_while_judging_stops_the_evaluation(
    judge_server: ScriptedOpenAIServer, store: ArtifactStore
) -> None:
    class Cancelled(Exception):
        pass

    def heartbeat(details: dict[str, Any]) -> None:
        if "judge" in details:
            raise Cancelled

    with ScriptedOpenAIServer(CANDIDATE_SCRIPT) as server:
        async with (
            ChatClient(server.base_url, max_retries=0) as client,
            make_judge(judge_server) as judge,
        ):
            with pytest.raises(Cancelled):
                await run_evaluation(
                    records=RECORDS,
                    responder=HttpResponder(client, 2),
                    checkpoint=EvalCheckpoint(store, "cancelled"),
                    kind=EvalKind.BASE,
                    workload_type=WorkloadType.GENERIC,
                    model="small-model",
                    config=settings(concurrency=2),
                    ctx=StepContext(heartbeat=heartbeat),
                    judge=judge,
                )
    assert judge.counts.judged <= 2  # stopped after the first rating, before the rest


async def test_a_retried_evaluation_asks_the_judge_only_what_it_had_not_rated(
    judge_server: ScriptedOpenAIServer, store: ArtifactStore
) -> None:
    class Cancelled(Exception):
        pass

    def cancel_after_two_ratings(details: dict[str, Any]) -> None:
        if details.get("judge", {}).get("judged") == 2:
            raise Cancelled

    async def attempt(heartbeat: Any, prefix: str) -> EvalResult:
        with ScriptedOpenAIServer(CANDIDATE_SCRIPT) as server:
            async with (
                ChatClient(server.base_url, max_retries=0) as client,
                make_judge(judge_server) as judge,
            ):
                return await run_evaluation(
                    records=RECORDS,
                    responder=HttpResponder(client, 1),
                    checkpoint=EvalCheckpoint(store, prefix),
                    kind=EvalKind.BASE,
                    workload_type=WorkloadType.GENERIC,
                    model="small-model",
                    config=settings(concurrency=1, checkpoint_every=1),
                    ctx=StepContext(heartbeat=heartbeat),
                    judge=judge,
                )

    uninterrupted = await attempt(lambda _details: None, "uninterrupted")
    with pytest.raises(Cancelled):
        await attempt(cancel_after_two_ratings, "retried")
    asked_before = {r.key for r in judge_server.requests if r.key}
    judge_server.clear()
    resumed = await attempt(lambda _details: None, "retried")

    asked_again = [_CANDIDATE.search(r.key).group(1) for r in judge_server.requests if r.key]
    # q0 and q1 were rated and checkpointed before the stop; only q2 and q3 are asked.
    assert sorted(set(asked_again)) == ["we are open from nine", FAILING]
    assert len(asked_before) == 4
    assert comparable(resumed) == comparable(uninterrupted)
    # Once more: an unreadable rating is an answer (kept); only the failed call is retried.
    judge_server.clear()
    again = await attempt(lambda _details: None, "retried")
    assert {_CANDIDATE.search(r.key).group(1) for r in judge_server.requests if r.key} == {
        FAILING
    }
    assert comparable(again) == comparable(uninterrupted)
