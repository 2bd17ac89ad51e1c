"""Evaluation on the nemo platform: the built-in evaluator against the NIM, or NeMo Evaluator
jobs; the same metric names either way, one job per step, cancelled with the step."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from flywheel.clients.nemo.names import RunNames
from flywheel.config import LLMJudgeConfig, RunConfig
from flywheel.errors import ConfigError, RemoteCallError
from flywheel.platforms.nemo import NemoPlatform
from flywheel.schemas import EvalKind, StepStatus, WorkloadType
from flywheel.scoring.metrics import FUNCTION_NAME_ACCURACY, FUNCTION_NAME_AND_ARGS_ACCURACY
from tests.platforms.nemo.support import (
    MODEL,
    NS,
    RUN_ID,
    Steps,
    deploy,
    eval_input,
    make_config,
    text_record,
)
from tests.support.nmp import wait_until
from tests.support.nmp_emulator import NMPEmulator, replay_tool_calling_scorer

NAMES = RunNames(RUN_ID)
JUDGE_ENV = "FLYWHEEL_TEST_NMP_JUDGE_KEY"
JUDGE_KEY = "judge-SECRET-key-77"
JUDGE = LLMJudgeConfig(
    deployment_type="remote",
    model_name="judge-model",
    url="http://judge.test/v1/chat/completions",
    api_key_env=JUDGE_ENV,
)


def nemo_config(emulator: NMPEmulator, **changes) -> RunConfig:
    return make_config(emulator, nmp_changes={"evaluator": "nemo"}, **changes)


@pytest.fixture(autouse=True)
def _scores(emulator: NMPEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.scorer = replay_tool_calling_scorer  # NeMo Evaluator replays through the NIM too
    monkeypatch.setenv(JUDGE_ENV, JUDGE_KEY)


async def test_builtin_evaluation_against_the_nim(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    config = make_config(emulator)
    request = await eval_input(platform.artifacts, config, await deploy(platform, config))
    steps = Steps()
    result = await platform.evaluate(request, steps.ctx)
    assert result.status == StepStatus.COMPLETED
    assert result.kind == EvalKind.BASE and result.model == MODEL
    assert result.metrics[FUNCTION_NAME_ACCURACY] == pytest.approx(0.9)
    assert result.metrics[FUNCTION_NAME_AND_ARGS_ACCURACY] == pytest.approx(0.8)
    assert result.n_total == 10 and result.n_scored == 10 and result.latency_p50_s is not None
    assert len(emulator.requests("/nim/v1/chat/completions", method="POST")) == 10
    assert emulator.evaluation_jobs_created() == 0
    assert steps.beats[-1]["done"] == 10


async def test_nemo_evaluator_gives_the_same_metrics(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    builtin_config = make_config(emulator)
    deployment = await deploy(platform, builtin_config)
    builtin = await platform.evaluate(
        await eval_input(platform.artifacts, builtin_config, deployment), Steps().ctx
    )

    config = nemo_config(emulator)
    steps = Steps()
    result = await platform.evaluate(
        await eval_input(platform.artifacts, config, deployment), steps.ctx
    )
    assert result.status == StepStatus.COMPLETED and result.model == MODEL
    assert set(result.metrics) == {FUNCTION_NAME_ACCURACY, FUNCTION_NAME_AND_ARGS_ACCURACY}
    assert set(result.metrics) <= set(builtin.metrics)
    for name in result.metrics:
        assert result.metrics[name] == pytest.approx(builtin.metrics[name])
    assert result.n_total == 10 and result.n_scored == 10

    (job,) = emulator.evaluation_jobs()
    assert steps.last("job_id")["job_id"] == job["id"]
    assert steps.last("progress")["progress"] == 100.0
    (post,) = emulator.requests("/v1/evaluation/jobs", method="POST")
    body = orjson.loads(post.body)
    assert body["target"] == {"type": "model", "model": MODEL}
    assert body["custom_fields"] == {
        "flywheel_run": NAMES.key,
        "flywheel_candidate": "llama-1b",
        "flywheel_eval": "base",
        "flywheel_model": MODEL,
    }
    task = body["config"]["tasks"]["custom-tool-calling"]
    assert task["dataset"] == {
        "files_url": f"hf://datasets/{NS}/{NAMES.dataset('eval')}/eval_data.jsonl",
        "limit": 10,
    }
    assert "tool_choice" not in task["params"]["template"]  # never forced to "required"
    assert set(task["metrics"]) == {"tool-calling-accuracy"}  # no judge configured
    assert emulator.repos() == [f"{NS}/{NAMES.dataset('eval')}"]


async def test_icl_evaluation_uses_its_own_dataset(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    config = nemo_config(emulator)
    request = await eval_input(
        platform.artifacts, config, await deploy(platform, config), kind=EvalKind.ICL
    )
    await platform.evaluate(request, Steps().ctx)
    assert emulator.repos() == [f"{NS}/{NAMES.dataset('icl-8192')}"]
    (job,) = emulator.evaluation_jobs()
    assert job["config"]["tasks"]["custom-tool-calling"]["dataset"]["files_url"].endswith(
        f"/{NAMES.dataset('icl-8192')}/eval_data.jsonl"
    )


async def test_judged_similarity_reads_ten_as_ten(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    emulator.config.scores_by_model = {MODEL: {"similarity": 10.0}}
    config = nemo_config(emulator, llm_judge_config=JUDGE)
    request = await eval_input(
        platform.artifacts,
        config,
        await deploy(platform, config),
        records=[text_record(i) for i in range(4)],
        workload_type=WorkloadType.GENERIC,
    )
    result = await platform.evaluate(request, Steps().ctx)
    assert result.metrics == {"llm_judge_score": 10.0, "llm_judge_similarity": 1.0}

    (job,) = emulator.evaluation_jobs()
    metric = job["config"]["tasks"]["llm-as-judge"]["metrics"]["llm-judge"]
    parser = metric["params"]["scores"]["similarity"]["parser"]
    assert parser == {"type": "regex", "pattern": r"RATING:\s*(\d+)"}
    # the Evaluator calls the judge, so it gets the judge's endpoint and key (nothing else does)
    assert metric["params"]["model"] == {
        "api_endpoint": {
            "url": JUDGE.url,
            "model_id": "judge-model",
            "api_key": JUDGE_KEY,
        }
    }


async def test_tool_calling_with_a_judge_adds_correctness(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    config = nemo_config(emulator, llm_judge_config=JUDGE)
    request = await eval_input(platform.artifacts, config, await deploy(platform, config))
    result = await platform.evaluate(request, Steps().ctx)
    assert result.metrics["tool_calling_correctness"] == 1.0
    assert result.metrics[FUNCTION_NAME_ACCURACY] == pytest.approx(0.9)


async def test_generic_workloads_need_a_judge_with_nemo_evaluator(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    config = nemo_config(emulator)
    request = await eval_input(
        platform.artifacts,
        config,
        await deploy(platform, config),
        records=[text_record(i) for i in range(4)],
        workload_type=WorkloadType.GENERIC,
    )
    with pytest.raises(ConfigError, match="set llm_judge_config"):
        await platform.evaluate(request, Steps().ctx)
    assert emulator.evaluation_jobs_created() == 0 and emulator.repos() == []


async def test_a_retried_evaluation_reattaches_to_its_job(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    emulator.set_durations(evaluation=1.0)
    config = nemo_config(emulator)
    request = await eval_input(platform.artifacts, config, await deploy(platform, config))
    first = Steps(final_cancel=False)
    task = asyncio.create_task(platform.evaluate(request, first.ctx))
    await wait_until(lambda: any("job_id" in b for b in first.beats))
    task.cancel()  # the worker goes away; the job goes on
    with pytest.raises(asyncio.CancelledError):
        await task
    assert emulator.cancelled_jobs() == []

    resumed = await platform.evaluate(request, Steps(resume=first.last("job_id")).ctx)
    fresh = await platform.evaluate(request, Steps().ctx)  # no details: found by its tags
    assert resumed.metrics == fresh.metrics
    assert emulator.evaluation_jobs_created() == 1


async def test_cancellation_cancels_the_evaluation_job(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    emulator.set_durations(evaluation=30.0)
    config = nemo_config(emulator)
    request = await eval_input(platform.artifacts, config, await deploy(platform, config))
    steps = Steps()
    task = asyncio.create_task(platform.evaluate(request, steps.ctx))
    await wait_until(lambda: any(b.get("status") == "running" for b in steps.beats))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    job_id = steps.last("job_id")["job_id"]
    assert emulator.cancelled_jobs() == [job_id]
    assert emulator.active_jobs() == []


async def test_a_failed_job_is_retryable_and_the_retry_starts_afresh(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    config = nemo_config(emulator)
    request = await eval_input(platform.artifacts, config, await deploy(platform, config))
    emulator.configure_faults(evaluation_failures={MODEL: "judge timed out"})
    with pytest.raises(RemoteCallError, match="judge timed out") as raised:
        await platform.evaluate(request, Steps().ctx)
    assert raised.value.retryable is True
    emulator.configure_faults(evaluation_failures={})
    result = await platform.evaluate(request, Steps().ctx)
    assert result.status == StepStatus.COMPLETED
    assert emulator.evaluation_jobs_created() == 2
