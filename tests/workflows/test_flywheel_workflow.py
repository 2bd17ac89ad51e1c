"""Workflow logic on the time-skipping test server, with the real activities and stores.

The model platform is a recording double (tests/support/recording_platform.py), so branches that
no real platform here can reach (customization, deploy failures, slow jobs) are exercised.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from flywheel.config import Platform
from flywheel.sample_data import generate_customer_service_logs
from flywheel.schemas import EvalKind, RunStatus, StepStatus
from flywheel.workflows.errors import failure_message
from tests.support.embeddings_server import EmbeddingsServer
from tests.support.flywheel_env import (
    activity_attempts,
    load_records,
    running_worker,
    start_run,
    stored_run,
)
from tests.support.recording_platform import Behaviour, RecordingPlatform

WORKLOAD = "customer-service"


def candidates(*names: str, customization: bool = True) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "model": f"org/{name}",
            "base_url": "http://127.0.0.1:9/v1",
            "customization_enabled": customization,
            "context_length": 8192,
        }
        for name in names
    ]


@pytest.fixture
async def env_settings(time_env: WorkflowEnvironment, settings_for):
    settings = settings_for("unused", candidates=candidates("alpha", "beta", "gamma"))
    await load_records(settings, generate_customer_service_logs(150, seed=3, workload_id=WORKLOAD))
    return settings


async def test_run_records_each_candidate_and_isolates_failures(
    time_env: WorkflowEnvironment, env_settings
) -> None:
    platform = RecordingPlatform(
        {
            "beta": Behaviour(deploy_error="no GPU available for beta"),
            "gamma": Behaviour(customize_error="training diverged"),
        }
    )
    async with running_worker(time_env.client, env_settings, {Platform.ENDPOINTS: platform}):
        handle = await start_run(time_env.client, env_settings, WORKLOAD)
        result = await handle.result()

    assert result.status == RunStatus.COMPLETED
    assert [c.name for c in result.candidates] == ["alpha", "beta", "gamma"]
    alpha, beta, gamma = result.candidates

    assert alpha.status == StepStatus.COMPLETED
    assert [e.kind for e in alpha.evals] == [EvalKind.BASE, EvalKind.ICL, EvalKind.CUSTOMIZED]
    assert all(e.status == StepStatus.COMPLETED for e in alpha.evals)
    assert alpha.customization is not None and alpha.customization.model is not None
    assert alpha.eval(EvalKind.CUSTOMIZED).model == alpha.customization.model  # type: ignore[union-attr]

    assert beta.status == StepStatus.FAILED
    assert beta.error == "deploy failed: no GPU available for beta"
    assert beta.evals == []

    assert gamma.status == StepStatus.COMPLETED
    assert gamma.customization is not None and gamma.customization.status == StepStatus.FAILED
    assert gamma.customization.error == "training diverged"
    customized = gamma.eval(EvalKind.CUSTOMIZED)
    assert customized is not None and customized.status == StepStatus.SKIPPED
    assert "training diverged" in (customized.skipped_reason or "")

    # Every candidate is torn down exactly once, including the one whose deploy failed.
    torn_down = platform.calls("teardown")
    assert sorted(name for name, _ in torn_down) == ["alpha", "beta", "gamma"]
    assert dict(torn_down)["alpha"] == alpha.customization.model
    assert platform.deployed == set()

    # Customized eval ran against the customized model; base/ICL against the deployed one.
    evaluated = {(name, kind): model for name, (kind, model) in platform.calls("evaluate")}
    assert evaluated[("alpha", "customized")] == alpha.customization.model
    assert evaluated[("alpha", "base")] is None

    stored = await stored_run(env_settings, result.run_id)
    assert stored is not None
    assert stored.model_dump(exclude={"revision"}) == result.model_dump(exclude={"revision"})
    assert stored.config is not None and stored.config.data_split_config.random_seed == 7
    assert stored.datasets is not None and stored.datasets.report.eval_records == 20


async def test_run_fails_when_no_candidate_can_be_evaluated(
    time_env: WorkflowEnvironment, env_settings
) -> None:
    platform = RecordingPlatform(
        {n: Behaviour(deploy_error=f"{n} is down") for n in ("alpha", "beta", "gamma")}
    )
    async with running_worker(time_env.client, env_settings, {Platform.ENDPOINTS: platform}):
        handle = await start_run(time_env.client, env_settings, WORKLOAD)
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    message = failure_message(failure.value)
    assert message.startswith("no candidate could be evaluated")
    assert "alpha: deploy failed: alpha is down" in message
    stored = await stored_run(env_settings, handle.id)
    assert stored is not None and stored.status == RunStatus.FAILED
    assert stored.error == message
    assert stored.finished_at is not None


@pytest.mark.parametrize("slots", [1, 2, 3])
async def test_parallel_candidates_are_bounded(
    time_env: WorkflowEnvironment, env_settings, slots: int
) -> None:
    platform = RecordingPlatform(
        {
            n: Behaviour(deploy_delay_s=0.2, evaluate_delay_s=0.3, customize=False)
            for n in ("alpha", "beta", "gamma")
        }
    )
    async with running_worker(time_env.client, env_settings, {Platform.ENDPOINTS: platform}):
        handle = await start_run(
            time_env.client, env_settings, WORKLOAD, overrides={"max_parallel_candidates": slots}
        )
        result = await handle.result()
    assert result.status == RunStatus.COMPLETED
    assert platform.max_concurrent_deployments == slots


async def test_cancel_tears_down_every_deployed_candidate(
    dev_env: WorkflowEnvironment, env_settings
) -> None:
    # On the real dev server: the time-skipping test server can lose a workflow task when an
    # activity cancel races the activity's completion ("ACTIVITY_UNKNOWN") and then hangs.
    platform = RecordingPlatform(
        {n: Behaviour(evaluate_delay_s=60.0) for n in ("alpha", "beta", "gamma")}
    )
    # A cancel reaches an activity in the reply to its next heartbeat sent to the server, and the
    # worker sends at most one per min(heartbeat_throttle_s, 0.8 × heartbeat timeout): 0.5 s here.
    worker = env_settings.worker.model_copy(update={"heartbeat_throttle_s": 0.5})
    settings = env_settings.model_copy(update={"worker": worker})
    async with running_worker(dev_env.client, settings, {Platform.ENDPOINTS: platform}):
        handle = await start_run(
            dev_env.client, settings, WORKLOAD, overrides={"max_parallel_candidates": 2}
        )
        for _ in range(200):
            if len(platform.deployed) == 2:
                break
            await asyncio.sleep(0.05)
        assert platform.deployed == {"alpha", "beta"}
        loop = asyncio.get_running_loop()
        cancelled_at = loop.time()
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        # Evaluations take 60 s: the run must end as soon as their cancellation reaches them, also
        # when a step completes just as the cancel arrives (the candidate must then start no
        # further step, and still wait for the cancellation of every other branch).
        assert loop.time() - cancelled_at < 15
    assert failure_message(failure.value) == "cancelled"
    assert platform.deployed == set()
    assert sorted(name for name, _ in platform.calls("teardown")) == ["alpha", "beta"]
    assert platform.torn_down_while_busy == []  # teardown waits until every step has stopped
    assert sorted(name for name, _ in platform.calls("deploy")) == ["alpha", "beta"]  # no gamma

    stored = await stored_run(env_settings, handle.id)
    assert stored is not None and stored.status == RunStatus.CANCELLED
    statuses = {c.name: c.status for c in stored.candidates}
    assert statuses == {
        "alpha": StepStatus.CANCELLED,
        "beta": StepStatus.CANCELLED,
        "gamma": StepStatus.CANCELLED,
    }


async def test_cancel_while_curating_ends_the_run_cancelled(
    dev_env: WorkflowEnvironment, env_settings
) -> None:
    platform = RecordingPlatform()
    with EmbeddingsServer(delay_s=30) as slow:  # semantic ICL waits on a slow endpoint
        embedding = {"deployment_type": "remote", "model_name": "embed", "url": slow.base_url}
        icl = {
            "max_examples": 2,
            "example_selection": "semantic_similarity",
            "similarity_config": {"embedding_nim_config": embedding},
        }
        worker = env_settings.worker.model_copy(update={"heartbeat_throttle_s": 0.5})
        settings = env_settings.model_copy(update={"worker": worker})
        async with running_worker(dev_env.client, settings, {Platform.ENDPOINTS: platform}):
            handle = await start_run(
                dev_env.client, settings, WORKLOAD, overrides={"icl_config": icl}
            )
            for _ in range(200):
                if slow.max_in_flight:
                    break
                await asyncio.sleep(0.05)
            assert slow.max_in_flight, "curation never reached the embeddings endpoint"
            loop = asyncio.get_running_loop()
            cancelled_at = loop.time()
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
            # The activity heartbeats while it waits, so the cancel reaches it in seconds.
            assert loop.time() - cancelled_at < 10
    assert failure_message(failure.value) == "cancelled"
    assert platform.events == []
    stored = await stored_run(env_settings, handle.id)
    assert stored is not None and stored.status == RunStatus.CANCELLED


async def test_too_few_records_fails_the_run_without_retrying(
    time_env: WorkflowEnvironment, env_settings
) -> None:
    platform = RecordingPlatform()
    async with running_worker(time_env.client, env_settings, {Platform.ENDPOINTS: platform}):
        handle = await start_run(
            time_env.client,
            env_settings,
            WORKLOAD,
            overrides={"data_split_config": {"min_total_records": 500, "limit": 1000}},
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    message = failure_message(failure.value)
    assert "500" in message and "150" in message
    assert await activity_attempts(handle, "prepare_datasets") == [1]
    assert platform.events == []
    stored = await stored_run(env_settings, handle.id)
    assert stored is not None and stored.status == RunStatus.FAILED and stored.error == message


async def test_invalid_override_names_the_key(time_env: WorkflowEnvironment, env_settings) -> None:
    async with running_worker(
        time_env.client, env_settings, {Platform.ENDPOINTS: RecordingPlatform()}
    ):
        handle = await start_run(
            time_env.client,
            env_settings,
            WORKLOAD,
            overrides={"data_split_config": {"val_ratio": 1.5}},
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    message = failure_message(failure.value)
    assert "data_split_config.val_ratio" in message
    assert await activity_attempts(handle, "resolve_run_config") == [1]


async def test_unknown_workload_says_how_to_load_logs(
    time_env: WorkflowEnvironment, env_settings
) -> None:
    async with running_worker(
        time_env.client, env_settings, {Platform.ENDPOINTS: RecordingPlatform()}
    ):
        handle = await start_run(time_env.client, env_settings, "no-such-workload")
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert "flywheel logs load" in failure_message(failure.value)


async def test_candidate_selection_and_progress_query(
    time_env: WorkflowEnvironment, env_settings
) -> None:
    platform = RecordingPlatform({"gamma": Behaviour(evaluate_delay_s=1.0, customize=False)})
    async with running_worker(time_env.client, env_settings, {Platform.ENDPOINTS: platform}):
        handle = await start_run(time_env.client, env_settings, WORKLOAD, candidates=["gamma"])
        progress = None
        for _ in range(200):
            progress = await handle.query("progress")
            if (
                progress
                and progress["candidates"]
                and progress["candidates"][0]["status"] == "running"
            ):
                break
            await asyncio.sleep(0.05)
        assert progress is not None
        assert progress["stage"] == "evaluating 1 candidate(s)"
        assert progress["datasets"]["eval_records"] == 20
        child = time_env.client.get_workflow_handle(f"{handle.id}/gamma")
        child_progress = await child.query("progress")
        assert child_progress["stage"] in {"deploying", "evaluating"}
        result = await handle.result()
    assert [c.name for c in result.candidates] == ["gamma"]
    gamma = result.candidates[0]
    assert gamma.customization is not None
    assert gamma.customization.skipped_reason == "not supported here"
