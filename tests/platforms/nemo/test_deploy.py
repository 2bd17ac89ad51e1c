"""Deploy and teardown through DMS: ready and listed, re-attach, failure at once, idempotence."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson
import pytest

from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.nemo.names import deployment_name
from flywheel.config import Settings
from flywheel.errors import ConfigError, RemoteCallError
from flywheel.platforms import build_platforms
from flywheel.platforms.base import ModelPlatform
from flywheel.platforms.nemo import NemoPlatform
from flywheel.schemas import DeployInput, Platform, TeardownInput
from tests.platforms.nemo.support import (
    MODEL,
    NS,
    RUN_ID,
    Steps,
    deploy,
    make_candidate,
    make_config,
)
from tests.support.nmp_emulator import NMPEmulator

DEPLOYMENT = deployment_name(RUN_ID, "llama-1b")


async def test_is_a_model_platform(platform: NemoPlatform) -> None:
    assert isinstance(platform, ModelPlatform)
    assert platform.name == Platform.NEMO


async def test_registered_when_the_settings_have_nmp_config(
    store: ArtifactStore, tmp_path: Path, emulator: NMPEmulator
) -> None:
    without = build_platforms(Settings(data_dir=tmp_path), store)
    assert Platform.NEMO not in without
    nmp_config = make_config(emulator).nmp_config
    with_nmp = build_platforms(Settings(data_dir=tmp_path, nmp_config=nmp_config), store)
    assert isinstance(with_nmp[Platform.NEMO], NemoPlatform)
    for platform in (*without.values(), *with_nmp.values()):
        await platform.aclose()


async def test_deploy_waits_until_ready_and_listed(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    config = make_config(emulator)
    steps = Steps()
    request = DeployInput(run_id=RUN_ID, candidate=config.candidates[0], config=config)
    deployment = await platform.deploy(request, steps.ctx)

    assert deployment.platform == Platform.NEMO
    assert deployment.model == MODEL
    assert deployment.base_url == f"{emulator.nim_url}/v1"
    assert deployment.supports_customization is True
    assert deployment.details == {"deployment": f"{NS}/{DEPLOYMENT}"}
    assert emulator.deployment_status(NS, DEPLOYMENT) == "ready"
    assert MODEL in emulator.served_models()
    statuses = [b["status"] for b in steps.beats if "status" in b]
    assert statuses[0] == "pending" and statuses[-1] == "ready"

    (create,) = emulator.requests("/v1/deployment/model-deployments", method="POST")
    body = orjson.loads(create.body)
    assert body["name"] == DEPLOYMENT and body["namespace"] == NS
    assert body["config"] == {
        "model": MODEL,
        "nim_deployment": {
            "image_name": f"nvcr.io/nim/{MODEL}",
            "image_tag": "1.8.3",
            "gpu": 1,
            "pvc_size": "25Gi",
            "additional_envs": {"NIM_GUIDED_DECODING_BACKEND": "outlines"},
        },
    }
    # the model sync was checked on the NIM's own /v1/models, not the platform's list
    assert emulator.requests("/nim/v1/models", method="GET")


async def test_deploy_reattaches_to_an_existing_deployment(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    config = make_config(emulator)
    await deploy(platform, config)
    again = await deploy(platform, config)  # a retried attempt, or the next run
    assert again.base_url == f"{emulator.nim_url}/v1"
    assert emulator.deployments_created() == 1
    assert emulator.live_deployments() == [f"{NS}/{DEPLOYMENT}"]


async def test_a_lost_create_reply_still_gives_one_deployment(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    emulator.configure_faults(lose_response_on_create={DEPLOYMENT})
    await deploy(platform, make_config(emulator))
    assert emulator.deployments_created() == 1


async def test_a_failed_deployment_is_reported_at_once_with_its_reason(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    emulator.configure_faults(deployment_failures={MODEL: "ImagePullBackOff: no such tag 1.8.3"})
    config = make_config(emulator)
    started = time.monotonic()
    with pytest.raises(RemoteCallError) as raised:
        await deploy(platform, config)
    assert time.monotonic() - started < 5  # not the deploy timeout (20 s here)
    assert "ImagePullBackOff: no such tag 1.8.3" in str(raised.value)
    assert f"{NS}/{DEPLOYMENT}" in str(raised.value)
    assert raised.value.retryable is False


async def test_an_unknown_status_is_logged_and_waited_on(
    platform: NemoPlatform, emulator: NMPEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.configure_faults(deployment_pending_status={MODEL: "warming-up"})
    steps = Steps()
    config = make_config(emulator)
    request = DeployInput(run_id=RUN_ID, candidate=config.candidates[0], config=config)
    with caplog.at_level(logging.WARNING, logger="flywheel.clients.nemo.deployments"):
        await platform.deploy(request, steps.ctx)
    assert [b["status"] for b in steps.beats if "status" in b][-1] == "ready"
    assert any(b.get("status") == "warming-up" for b in steps.beats)
    warnings = [r.getMessage() for r in caplog.records if "unknown status" in r.getMessage()]
    assert len(warnings) == 1 and "'warming-up'" in warnings[0]  # once, not every poll


async def test_deploy_timeout_is_reported(platform: NemoPlatform, emulator: NMPEmulator) -> None:
    emulator.set_durations(deploy=30.0)
    config = make_config(emulator)
    config = config.model_copy(
        update={"timeouts": config.timeouts.model_copy(update={"deploy_timeout_s": 0.2})}
    )
    with pytest.raises(RemoteCallError, match="not ready within the deploy timeout") as raised:
        await deploy(platform, config)
    assert raised.value.retryable is False


async def test_teardown_is_idempotent(platform: NemoPlatform, emulator: NMPEmulator) -> None:
    config = make_config(emulator)
    deployment = await deploy(platform, config)
    request = TeardownInput(
        run_id=RUN_ID, candidate=config.candidates[0], config=config, deployment=deployment
    )
    steps = Steps()
    await platform.teardown(request, steps.ctx)
    assert emulator.live_deployments() == []
    assert steps.beats[-1]["deleted"] is True
    await platform.teardown(request, steps.ctx)  # again: 404 is done
    assert steps.beats[-1]["deleted"] is False
    await platform.teardown(request.model_copy(update={"deployment": None}), steps.ctx)


async def test_runs_evaluating_the_same_model_do_not_share_a_nim(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    """Two runs (and two candidates of one run) with the same model: one deployment each, so
    one teardown leaves the others serving."""
    config = make_config(emulator, make_candidate("a"), make_candidate("b"))
    other_run = "flywheel-orders-20240102T000000Z"
    requests = [
        DeployInput(run_id=RUN_ID, candidate=config.candidates[0], config=config),
        DeployInput(run_id=RUN_ID, candidate=config.candidates[1], config=config),
        DeployInput(run_id=other_run, candidate=config.candidates[0], config=config),
    ]
    for request in requests:
        await platform.deploy(request, Steps().ctx)
    assert len(emulator.live_deployments()) == 3
    first = requests[0]
    await platform.teardown(
        TeardownInput(run_id=first.run_id, candidate=first.candidate, config=config), Steps().ctx
    )
    live = emulator.live_deployments()
    assert f"{NS}/{deployment_name(RUN_ID, 'a')}" not in live
    assert sorted(live) == sorted(
        [f"{NS}/{deployment_name(RUN_ID, 'b')}", f"{NS}/{deployment_name(other_run, 'a')}"]
    )
    assert MODEL in emulator.served_models()


async def test_teardown_after_someone_else_deleted_it(
    platform: NemoPlatform, emulator: NMPEmulator, nmp_client
) -> None:
    config = make_config(emulator)
    await deploy(platform, config)
    await nmp_client.deployment.model_deployments.delete(DEPLOYMENT, namespace=NS)
    request = TeardownInput(run_id=RUN_ID, candidate=config.candidates[0], config=config)
    await platform.teardown(request, Steps().ctx)
    assert emulator.live_deployments() == []


async def test_deploy_needs_an_image_tag(platform: NemoPlatform, emulator: NMPEmulator) -> None:
    candidate = make_candidate(nim=None)
    with pytest.raises(ConfigError, match=r"needs nim\.tag"):
        await deploy(platform, make_config(emulator, candidate))
    assert emulator.deployments_created() == 0


async def test_unknown_options_are_config_errors(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    candidate = make_candidate(options={"gpu_type": "A100"})
    with pytest.raises(ConfigError, match="unknown nemo option"):
        await deploy(platform, make_config(emulator, candidate))


async def test_additional_envs_replace_the_default(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    candidate = make_candidate(options={"additional_envs": {"NIM_MAX_MODEL_LEN": "4096"}})
    await deploy(platform, make_config(emulator, candidate))
    (create,) = emulator.requests("/v1/deployment/model-deployments", method="POST")
    envs = orjson.loads(create.body)["config"]["nim_deployment"]["additional_envs"]
    assert envs == {"NIM_MAX_MODEL_LEN": "4096"}


async def test_customization_support_follows_the_candidate(
    platform: NemoPlatform, emulator: NMPEmulator
) -> None:
    candidate = make_candidate(customization_enabled=False)
    deployment = await deploy(platform, make_config(emulator, candidate))
    assert deployment.supports_customization is False
    assert deployment.unsupported_reason is not None
    assert "customization_enabled is false" in deployment.unsupported_reason
