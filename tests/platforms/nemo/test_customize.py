"""Customization through NeMo Customizer: one job per run and candidate, whatever happens."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from flywheel.clients.nemo.names import RunNames
from flywheel.config import LoRAConfig, RunConfig
from flywheel.errors import RemoteCallError, UnsupportedOperation
from flywheel.platforms.nemo import NemoPlatform
from flywheel.schemas import CustomizeInput, DatasetFormat, Deployment, StepStatus
from tests.platforms.nemo.support import (
    MODEL,
    NS,
    RUN_ID,
    Steps,
    deploy,
    make_candidate,
    make_config,
    put,
    train_line,
)
from tests.support.nmp import wait_until
from tests.support.nmp_emulator import NMPEmulator

NAMES = RunNames(RUN_ID)
JOB = NAMES.candidate("llama-1b")


async def customize_input(
    platform: NemoPlatform, config: RunConfig, deployment: Deployment, val: int = 3
) -> CustomizeInput:
    train = await put(
        platform.artifacts, [train_line(i) for i in range(12)], DatasetFormat.TRAINING
    )
    val_ref = await put(
        platform.artifacts, [train_line(i) for i in range(val)], DatasetFormat.TRAINING
    )
    return CustomizeInput(
        run_id=RUN_ID,
        candidate=config.candidates[0],
        config=config,
        deployment=deployment,
        train=train,
        val=val_ref,
    )


@pytest.fixture
def config(emulator: NMPEmulator) -> RunConfig:
    return make_config(emulator)


async def test_customization_end_to_end(
    platform: NemoPlatform, emulator: NMPEmulator, config: RunConfig
) -> None:
    request = await customize_input(platform, config, await deploy(platform, config))
    steps = Steps()
    result = await platform.customize(request, steps.ctx)

    (job,) = emulator.customization_jobs()
    assert result.status == StepStatus.COMPLETED
    assert result.job_id == job["id"]
    assert result.model == f"{NS}/{JOB}@{job['id']}" == job["output_model"]
    assert result.model in emulator.served_models()  # waited for the model sync
    assert result.epochs_completed == 2 and result.steps_completed == 20
    assert result.train_loss is not None and result.val_loss is not None

    training = [b for b in steps.beats if b.get("stage") == "training" and "percentage" in b]
    assert training, "progress was heartbeated"
    assert all(b["job_id"] == job["id"] for b in training)
    percentages = [b["percentage"] for b in training]
    assert percentages == sorted(percentages) and percentages[-1] == 100.0
    assert training[-1]["epochs"] == 2 and "train_loss" in training[-1]
    assert "val_loss" in training[-1]

    # the train/val dataset, the versioned config and the job's payload
    repo = f"{NS}/{NAMES.dataset('train')}"
    assert set(emulator.files(repo)) == {
        "training/train_data.jsonl",
        "validation/val_data.jsonl",
    }
    (post,) = emulator.requests("/v1/customization/jobs", method="POST")
    body = orjson.loads(post.body)
    assert body["name"] == JOB
    assert body["dataset"] == {"name": NAMES.dataset("train"), "namespace": NS}
    assert body["config"].startswith(f"{NS}/fw-meta-llama-3.2-1b-instruct@v1.0.0+")
    assert body["hyperparameters"] == {
        "training_type": "sft",
        "finetuning_type": "lora",
        "epochs": 2,
        "batch_size": 16,
        "learning_rate": 0.0001,
        "lora": {"adapter_dim": 32, "adapter_dropout": 0.1, "alpha": 64},
    }
    assert body["custom_fields"] == {"flywheel_run": NAMES.key, "flywheel_candidate": "llama-1b"}
    (config_post,) = emulator.requests("/v1/customization/configs", method="POST")
    config_body = orjson.loads(config_post.body)
    assert config_body["target"] == f"{MODEL}@2.0"
    assert config_body["training_options"][0]["num_gpus"] == 1
    assert config_body["max_seq_length"] == 4096


async def test_an_empty_validation_set_is_left_out(
    platform: NemoPlatform, emulator: NMPEmulator, config: RunConfig
) -> None:
    request = await customize_input(platform, config, await deploy(platform, config), val=0)
    await platform.customize(request, Steps().ctx)
    repo = f"{NS}/{NAMES.dataset('train')}"
    assert set(emulator.files(repo)) == {"training/train_data.jsonl"}


async def test_resume_from_the_heartbeated_job_id(
    platform: NemoPlatform, emulator: NMPEmulator, config: RunConfig
) -> None:
    request = await customize_input(platform, config, await deploy(platform, config))
    first = Steps(final_cancel=False)
    task = asyncio.create_task(platform.customize(request, first.ctx))
    await wait_until(lambda: any("job_id" in b for b in first.beats))
    task.cancel()  # the worker shuts down: the job must go on
    with pytest.raises(asyncio.CancelledError):
        await task
    assert emulator.cancelled_jobs() == []
    job_id = first.last("job_id")["job_id"]

    second = Steps(resume=first.last("job_id"))  # the next attempt, on another worker
    result = await platform.customize(request, second.ctx)
    assert result.job_id == job_id
    assert emulator.customization_jobs_created() == 1
    assert emulator.requests(f"/v1/customization/jobs/{job_id}", method="GET")


async def test_a_new_attempt_without_details_finds_the_job(
    platform: NemoPlatform, emulator: NMPEmulator, config: RunConfig
) -> None:
    request = await customize_input(platform, config, await deploy(platform, config))
    first = await platform.customize(request, Steps().ctx)
    second = await platform.customize(request, Steps().ctx)  # killed before any heartbeat
    assert second.job_id == first.job_id and second.model == first.model
    assert emulator.customization_jobs_created() == 1
    assert len(emulator.requests("/v1/customization/configs", method="POST")) == 1


async def test_a_lost_create_reply_still_gives_one_job(
    platform: NemoPlatform, emulator: NMPEmulator, config: RunConfig
) -> None:
    emulator.configure_faults(lose_response_on_create={JOB})
    request = await customize_input(platform, config, await deploy(platform, config))
    await platform.customize(request, Steps().ctx)
    assert emulator.customization_jobs_created(JOB) == 1


async def test_changed_options_use_a_new_config(
    platform: NemoPlatform, emulator: NMPEmulator, config: RunConfig
) -> None:
    request = await customize_input(platform, config, await deploy(platform, config))
    await platform.customize(request, Steps().ctx)
    other_run = request.model_copy(
        update={
            "run_id": RUN_ID + "-2",
            "config": config.model_copy(update={"lora_config": LoRAConfig(adapter_dim=16)}),
        }
    )
    await platform.customize(other_run, Steps().ctx)
    names = sorted(name for _, name in emulator.ctx.state.customization_configs)
    assert len(names) == 2 and all("@v1.0.0+" in n for n in names)
    assert emulator.customization_jobs_created() == 2


async def test_a_failed_job_reports_its_status_log(
    platform: NemoPlatform, emulator: NMPEmulator, config: RunConfig
) -> None:
    emulator.configure_faults(customization_failures={JOB: "CUDA out of memory at step 7"})
    request = await customize_input(platform, config, await deploy(platform, config))
    with pytest.raises(RemoteCallError) as raised:
        await platform.customize(request, Steps().ctx)
    message = str(raised.value)
    assert "CUDA out of memory at step 7" in message
    assert "NeMo Customizer job" in message and "llama-1b" in message
    assert raised.value.retryable is False
    assert emulator.cancelled_jobs() == []  # nothing left to cancel


async def test_not_enough_resources_is_reported_as_such(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    config = make_config(emulator, nmp_changes={"scheduling_timeout_s": 0.3})
    emulator.configure_faults(not_enough_resources={JOB})
    request = await customize_input(platform, config, await deploy(platform, config))
    steps = Steps()
    with pytest.raises(RemoteCallError) as raised:
        await platform.customize(request, steps.ctx)
    message = str(raised.value)
    assert "could not be scheduled: NotEnoughResources" in message
    assert "Insufficient GPU resources" in message
    assert raised.value.retryable is False
    assert any(b.get("waiting") == "NotEnoughResources" for b in steps.beats)
    assert emulator.cancelled_jobs() == [steps.last("job_id")["job_id"]]  # not left queued
    assert emulator.active_jobs() == []


async def test_cancellation_cancels_the_remote_job(
    platform: NemoPlatform, emulator: NMPEmulator, config: RunConfig
) -> None:
    emulator.set_durations(customization=30.0)
    request = await customize_input(platform, config, await deploy(platform, config))
    steps = Steps()
    task = asyncio.create_task(platform.customize(request, steps.ctx))
    await wait_until(lambda: any(b.get("status") == "running" for b in steps.beats))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    job_id = steps.last("job_id")["job_id"]
    assert emulator.cancelled_jobs() == [job_id]
    assert emulator.active_jobs() == []
    (cancel,) = emulator.requests("/v1/customization/jobs/", method="POST")
    assert cancel.path == f"/v1/customization/jobs/{job_id}/cancel"


async def test_a_job_cancelled_between_attempts_is_restarted(
    platform: NemoPlatform, emulator: NMPEmulator, config: RunConfig
) -> None:
    """A worker shutting down (without the context saying so) cancels the job; the next attempt
    must not fail on it, but start one replacement job."""
    request = await customize_input(platform, config, await deploy(platform, config))
    first = Steps()
    task = asyncio.create_task(platform.customize(request, first.ctx))
    await wait_until(lambda: any("job_id" in b for b in first.beats))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled = first.last("job_id")["job_id"]
    assert emulator.cancelled_jobs() == [cancelled]

    result = await platform.customize(request, Steps(resume=first.last("job_id")).ctx)
    assert result.job_id != cancelled
    assert [j["name"] for j in emulator.customization_jobs()] == [JOB, f"{JOB}.r1"]
    assert result.model is not None and result.model.startswith(f"{NS}/{JOB}.r1@")
    again = await platform.customize(request, Steps().ctx)  # and that one is re-attached
    assert again.job_id == result.job_id
    assert emulator.customization_jobs_created() == 2


async def test_cancelled_while_creating_cancels_what_was_created(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    """The create made the job but its reply was lost; the step is cancelled while it backs off
    before looking again: the job it made is found and cancelled, not left to train."""
    config = make_config(emulator, nmp_changes={"retry_backoff_s": 5.0})
    emulator.configure_faults(lose_response_on_create={JOB})
    request = await customize_input(platform, config, await deploy(platform, config))
    task = asyncio.create_task(platform.customize(request, Steps().ctx))
    await wait_until(lambda: bool(emulator.requests("/v1/customization/jobs", method="POST")))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert emulator.customization_jobs_created() == 1
    assert len(emulator.cancelled_jobs()) == 1 and emulator.active_jobs() == []


async def test_customization_must_be_enabled(platform: NemoPlatform, emulator: NMPEmulator) -> None:
    config = make_config(emulator, make_candidate(customization_enabled=False))
    request = await customize_input(platform, config, await deploy(platform, config))
    with pytest.raises(UnsupportedOperation, match="customization_enabled is false"):
        await platform.customize(request, Steps().ctx)
    assert emulator.customization_jobs_created() == 0


async def test_job_lookup_follows_every_page(
    platform: NemoPlatform,
    emulator: NMPEmulator,
    config: RunConfig,
    nmp_client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job a previous attempt made is found even when it is not on the first page."""
    monkeypatch.setattr("flywheel.clients.nemo.customizer.PAGE_SIZE", 2)
    request = await customize_input(platform, config, await deploy(platform, config))
    first = await platform.customize(request, Steps().ctx)
    (job,) = emulator.customization_jobs()
    for i in range(5):  # newer jobs of other runs push it to the last page
        await nmp_client.customization.jobs.create(
            name=f"other-{i}",
            namespace=NS,
            config=job["config"]["namespace"] + "/" + job["config"]["name"],
            dataset=job["dataset"],
            hyperparameters={"finetuning_type": "lora", "epochs": 1},
        )
    again = await platform.customize(request, Steps().ctx)
    assert again.job_id == first.job_id
    assert emulator.customization_jobs_created() == 6
    pages = [dict(r.query).get("page") for r in emulator.requests("/v1/customization/jobs")]
    assert "3" in pages
