"""Whole flywheel runs on the `nemo` platform against the NMP emulator (real HTTP, real Temporal).

The emulator (tests/support/nmp_emulator) follows the NMP SDK's shapes and state machines; these
tests check what only a whole run shows: every stage through FlywheelWorkflow, a worker killed
mid-customization, cancellation, injected 5xx answers, a failing candidate, and that no secret
reaches a workflow history.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from flywheel.api import FlywheelClient
from flywheel.clients.nemo.names import deployment_name
from flywheel.config import Settings
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import EvalKind, RunStatus, StepStatus, WorkloadType
from tests.support.flywheel_env import load_records, running_worker, start_run, stored_run
from tests.support.nmp import HF_TOKEN, allow_hf_hub, start_emulator
from tests.support.nmp_emulator import NMPEmulator
from tests.support.processes import start_worker, stop_process

pytestmark = pytest.mark.slow

WORKLOAD = "nemo-agent"  # unique: other e2e tests list runs of their own workload
HF_ENV = "FLYWHEEL_E2E_NMP_HF_TOKEN"
JUDGE_ENV = "FLYWHEEL_E2E_JUDGE_KEY"
JUDGE_KEY = "sk-judge-e2e-SECRET-4411"
MODELS = ("meta/llama-3.2-1b-instruct", "meta/llama-3.2-3b-instruct")


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[NMPEmulator]:
    allow_hf_hub(monkeypatch)
    monkeypatch.setenv(HF_ENV, HF_TOKEN)
    monkeypatch.setenv(JUDGE_ENV, JUDGE_KEY)
    emulator = start_emulator(datastore_token=HF_TOKEN)
    try:
        yield emulator
    finally:
        emulator.stop()


def candidate(model: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": model.split("/")[-1],
        "model": model,
        "platform": "nemo",
        "customization_enabled": True,
        "customizer": {"target": f"{model}@2.0", "gpus": 1},
        "nim": {"tag": "1.8.3", "gpus": 1},
    }
    return values | changes


def overrides(emulator: NMPEmulator, *candidates: dict[str, Any], **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "nmp_config": {
            "nemo_base_url": emulator.base_url,
            "nim_base_url": emulator.nim_url,
            "datastore_base_url": emulator.base_url,
            "nmp_namespace": "e2e",
            "hf_token_env": HF_ENV,
            "max_retries": 8,
            "retry_backoff_s": 0.01,
        },
        "candidates": list(candidates) or [candidate(MODELS[0])],
        "data_split_config": {"eval_size": 10, "min_total_records": 20, "limit": 200},
        "icl_config": {"max_examples": 1, "max_context_length": 8192, "reserved_tokens": 512},
        "training_config": {"epochs": 1},
        "evaluation": {"concurrency": 4, "retry_backoff_s": 0.005},
        "max_parallel_candidates": 2,
        "timeouts": {
            "poll_interval_s": 0.05,
            "heartbeat_timeout_s": 3.0,
            "deploy_timeout_s": 60,
            "customization_timeout_s": 60,
            "evaluation_timeout_s": 60,
        },
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = values[key] | value
        else:
            values[key] = value
    return values


async def run_to_end(env: WorkflowEnvironment, settings: Settings) -> Any:
    async with running_worker(env.client, settings):
        handle = await start_run(env.client, settings, WORKLOAD)
        return handle, await handle.result()


async def history_bytes(client: Client, workflow_id: str) -> bytes:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return history.to_json().encode()


@pytest.mark.parametrize("evaluator", ["nemo", "builtin"])
async def test_a_tool_calling_run_goes_through_every_stage(
    time_env: WorkflowEnvironment, settings_for, emulator: NMPEmulator, evaluator: str
) -> None:
    settings = settings_for(
        "unused",
        **overrides(
            emulator,
            candidate(MODELS[0]),
            candidate(MODELS[1], customization_enabled=False, customizer=None),
            nmp_config={"evaluator": evaluator},
            llm_judge_config={
                "deployment_type": "remote",
                "model_name": "judge",
                "url": f"{emulator.nim_url}/v1/chat/completions",
                "api_key_env": JUDGE_ENV,
            },
        ),
    )
    await load_records(settings, generate_customer_service_logs(120, seed=3, workload_id=WORKLOAD))
    handle, result = await run_to_end(time_env, settings)

    assert result.status == RunStatus.COMPLETED, result.error
    assert result.datasets.workload_type == WorkloadType.TOOL_CALLING
    tuned, plain = result.candidates
    assert [e.kind for e in tuned.evals] == [EvalKind.BASE, EvalKind.ICL, EvalKind.CUSTOMIZED]
    assert [e.kind for e in plain.evals] == [EvalKind.BASE, EvalKind.ICL, EvalKind.CUSTOMIZED]
    skipped = plain.eval(EvalKind.CUSTOMIZED)
    assert skipped is not None and skipped.status == StepStatus.SKIPPED
    for result_ in (*tuned.evals, *plain.evals[:2]):
        assert result_.status == StepStatus.COMPLETED, result_.error
        assert "function_name_accuracy" in result_.metrics
    assert tuned.customization is not None and tuned.customization.job_id
    assert emulator.customization_jobs_created() == 1
    if evaluator == "nemo":
        assert emulator.evaluation_jobs_created() == 5  # base + ICL twice, customized once
    assert emulator.live_deployments() == [], "every candidate was torn down"
    # The judge's key went only to NMP's evaluation job (nemo) or nowhere (builtin, a tool-calling
    # workload is not judged): never into a workflow history.
    for workflow_id in (handle.id, f"{handle.id}/{tuned.name}", f"{handle.id}/{plain.name}"):
        assert JUDGE_KEY.encode() not in await history_bytes(time_env.client, workflow_id)
        assert HF_TOKEN.encode() not in await history_bytes(time_env.client, workflow_id)


async def test_a_generic_run_with_the_builtin_evaluator(
    time_env: WorkflowEnvironment, settings_for, emulator: NMPEmulator
) -> None:
    emulator.responder = lambda body: {"content": "thanks, your parcel ships on monday"}
    settings = settings_for(
        "unused",
        **overrides(emulator, candidate(MODELS[0], customization_enabled=False, customizer=None)),
    )
    logs = generate_customer_service_logs(80, seed=4, workload_id=WORKLOAD)
    for record in logs:  # plain answers, no tools: a generic workload
        record["request"].pop("tools", None)
        record["response"]["choices"][0]["message"] = {
            "role": "assistant",
            "content": "your parcel ships on monday",
        }
        record["request"]["messages"][-1]["content"] += f" #{id(record)}"
    await load_records(settings, logs)
    _, result = await run_to_end(time_env, settings)

    assert result.status == RunStatus.COMPLETED, result.error
    assert result.datasets.workload_type == WorkloadType.GENERIC
    (only,) = result.candidates
    base = only.eval(EvalKind.BASE)
    assert base is not None and base.status == StepStatus.COMPLETED
    assert 0.5 < base.metrics["rouge_l"] < 1.0
    assert emulator.live_deployments() == []


async def test_injected_5xx_answers_do_not_stop_the_run(
    time_env: WorkflowEnvironment, settings_for, emulator: NMPEmulator
) -> None:
    emulator.configure_faults(error_rate=0.2, seed=7)
    settings = settings_for("unused", **overrides(emulator, nmp_config={"evaluator": "nemo"}))
    await load_records(settings, generate_customer_service_logs(100, seed=5, workload_id=WORKLOAD))
    _, result = await run_to_end(time_env, settings)

    assert result.status == RunStatus.COMPLETED, result.error
    (only,) = result.candidates
    assert only.status == StepStatus.COMPLETED, only.error
    assert all(e.status == StepStatus.COMPLETED for e in only.evals)
    assert emulator.customization_jobs_created() == 1
    assert emulator.deployments_created() == 1
    assert emulator.live_deployments() == []


async def test_a_failing_candidate_is_recorded_and_the_other_completes(
    time_env: WorkflowEnvironment, settings_for, emulator: NMPEmulator
) -> None:
    emulator.configure_faults(deployment_failures={MODELS[1]: "ImagePullBackOff: no such tag"})
    broken = candidate(MODELS[1], customization_enabled=False, customizer=None)
    settings = settings_for("unused", **overrides(emulator, candidate(MODELS[0]), broken))
    await load_records(settings, generate_customer_service_logs(100, seed=6, workload_id=WORKLOAD))
    _, result = await run_to_end(time_env, settings)

    assert result.status == RunStatus.COMPLETED, result.error
    good, bad = result.candidates
    assert good.status == StepStatus.COMPLETED, good.error
    assert bad.status == StepStatus.FAILED
    assert bad.error and "ImagePullBackOff: no such tag" in bad.error
    assert emulator.live_deployments() == []


@pytest.mark.parametrize("stage", ["deploy", "evaluation", "customization"])
async def test_cancelling_a_run_cancels_its_remote_jobs_and_tears_down(
    time_env: WorkflowEnvironment, settings_for, emulator: NMPEmulator, stage: str
) -> None:
    """Cancelled while a NIM deploys, while NeMo Evaluator jobs run, or while a LoRA job runs:
    the jobs are cancelled at NMP, every deployment is deleted, the run ends cancelled."""
    emulator.set_durations(**{stage: 30.0})
    changes: dict[str, Any] = {"nmp_config": {"evaluator": "nemo"}}
    if stage == "evaluation":  # no customization: only evaluation jobs can be running
        changes["candidates"] = [candidate(MODELS[0], customization_enabled=False)]
    settings = settings_for("unused", **overrides(emulator, **changes))
    await load_records(settings, generate_customer_service_logs(100, seed=7, workload_id=WORKLOAD))

    def reached() -> bool:
        if stage == "deploy":
            return emulator.deployments_created() > 0
        return bool(emulator.active_jobs())

    async with running_worker(time_env.client, settings):
        handle = await start_run(time_env.client, settings, WORKLOAD)
        for _ in range(600):
            if reached():
                break
            await asyncio.sleep(0.05)
        assert reached(), f"the run never reached its {stage}"
        await asyncio.sleep(0.2)  # let every parallel step start
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), timeout=30)
    result = await stored_run(settings, handle.id)
    assert result is not None

    assert result.status == RunStatus.CANCELLED
    assert emulator.active_jobs() == [], "no job is left running at NMP"
    if stage != "deploy":
        assert emulator.cancelled_jobs(), f"the running {stage} job(s) were cancelled"
    if stage == "customization":
        assert emulator.customization_jobs_created() == 1
    assert emulator.live_deployments() == [], "every deployment was deleted"


async def test_worker_killed_during_customization_leaves_exactly_one_job(
    dev_env: WorkflowEnvironment, settings_for, emulator: NMPEmulator, tmp_path: Path
) -> None:
    emulator.set_durations(customization=4.0)
    settings = settings_for(dev_env.client.service_client.config.target_host, **overrides(emulator))
    await load_records(settings, generate_customer_service_logs(100, seed=8, workload_id=WORKLOAD))
    config = tmp_path / "flywheel.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True)))
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env |= {HF_ENV: HF_TOKEN, "PYTHONUNBUFFERED": "1"}

    fw = FlywheelClient(dev_env.client, settings)
    first = start_worker(config, tmp_path / "worker-1.log", env)
    second: subprocess.Popen[bytes] | None = None
    try:
        run_id = await fw.start_run(WORKLOAD)
        for _ in range(1200):
            if emulator.active_jobs():
                break
            await asyncio.sleep(0.05)
        assert emulator.active_jobs(), (tmp_path / "worker-1.log").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = start_worker(config, tmp_path / "worker-2.log", env)
        result = await asyncio.wait_for(fw.wait(run_id), timeout=180)
    finally:
        stop_process(first, 15)
        if second is not None:
            stop_process(second, 15)
        await fw.aclose()

    assert result.status == RunStatus.COMPLETED, result.error
    (only,) = result.candidates
    assert only.customization is not None
    assert only.customization.status == StepStatus.COMPLETED, only.error
    assert emulator.customization_jobs_created() == 1, "the new worker re-attached to the job"
    assert only.eval(EvalKind.CUSTOMIZED) is not None
    assert emulator.live_deployments() == []


async def test_semantic_icl_deploys_an_embedding_nim_for_the_curation_only(
    time_env: WorkflowEnvironment, settings_for, emulator: NMPEmulator
) -> None:
    embedder = "nvidia/llama-3.2-nv-embedqa-1b-v2"
    settings = settings_for(
        "unused",
        **overrides(
            emulator,
            candidate(MODELS[0], customization_enabled=False, customizer=None),
            icl_config={
                "example_selection": "semantic_similarity",
                "similarity_config": {
                    "relevance_ratio": 0.7,
                    "embedding_nim_config": {
                        "deployment_type": "local",
                        "model_name": embedder,
                        "tag": "1.3.0",
                        "gpus": 1,
                    },
                },
            },
        ),
    )
    await load_records(settings, generate_customer_service_logs(100, seed=9, workload_id=WORKLOAD))
    handle, result = await run_to_end(time_env, settings)

    assert result.status == RunStatus.COMPLETED, result.error
    icl_stats = result.datasets.report.icl
    assert icl_stats and all(stats["semantic"] == 1.0 for stats in icl_stats.values())
    assert not any("semantic" in w for w in result.datasets.report.warnings), "no fallback"
    created = emulator.ctx.state.deployments_created
    assert [name for name in created if name.endswith("-embedding")] == [
        f"e2e/{deployment_name(handle.id, 'embedding')}"
    ]
    assert emulator.live_deployments() == [], "the embedding NIM was deleted after curation"
    assert any(r.path.endswith("/v1/embeddings") for r in emulator.requests()), (
        "curation embedded through the deployed NIM"
    )


@pytest.mark.parametrize("lifetime", ["run", "kept"])
async def test_a_judge_nim_is_deployed_for_the_run_or_kept(
    time_env: WorkflowEnvironment, settings_for, emulator: NMPEmulator, lifetime: str
) -> None:
    judge_model = "meta/llama-3.3-70b-instruct"

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("model") == judge_model:
            return {"content": "Close enough.\nRATING: 8"}
        return {"content": "thanks, your parcel ships on monday"}

    emulator.responder = respond
    settings = settings_for(
        "unused",
        **overrides(
            emulator,
            candidate(MODELS[0], customization_enabled=False, customizer=None),
            candidate(MODELS[1], customization_enabled=False, customizer=None),
            llm_judge_config={
                "deployment_type": "local",
                "model_name": judge_model,
                "tag": "1.8.3",
                "gpus": 4,
                "lifetime": lifetime,
            },
        ),
    )
    logs = generate_customer_service_logs(80, seed=4, workload_id=WORKLOAD)
    for index, record in enumerate(logs):  # plain answers, no tools: a generic workload
        record["request"].pop("tools", None)
        record["request"]["messages"][-1]["content"] += f" (ticket {index})"
        record["response"]["choices"][0]["message"] = {
            "role": "assistant",
            "content": "your parcel ships on monday",
        }
    await load_records(settings, logs)
    handle, result = await run_to_end(time_env, settings)

    assert result.status == RunStatus.COMPLETED, result.error
    for tried in result.candidates:
        base = tried.eval(EvalKind.BASE)
        assert base is not None and base.status == StepStatus.COMPLETED, base.error
        assert base.metrics["llm_judge_score"] == pytest.approx(8.0)
    created = emulator.ctx.state.deployments_created
    judges = [name for name in created if "judge" in name]
    assert len(judges) == 1 and created[judges[0]] == 1, "one judge NIM shared by the candidates"
    if lifetime == "run":
        assert judges[0] == f"e2e/{deployment_name(handle.id, 'judge')}"
        assert emulator.live_deployments() == [], "the run deleted its judge NIM"
    else:
        assert emulator.live_deployments() == [judges[0]], "a kept judge NIM stays"
