"""DMS deployments (pending → ready / failed) and the NIM surface they light up."""

from __future__ import annotations

import httpx
import nemo_microservices
import pytest
from nemo_microservices import AsyncNeMoMicroservices
from nemo_microservices.types.deployment import ModelDeployment

from tests.support.nmp import make_client, start_emulator
from tests.support.nmp_emulator import NMPEmulator

MODEL = "meta/llama-3.2-1b-instruct"
CONFIG = {
    "model": MODEL,
    "nim_deployment": {
        "image_name": "nvcr.io/nim/meta/llama-3.2-1b-instruct",
        "image_tag": "1.8.3",
        "pvc_size": "25Gi",
        "gpu": 1,
        "additional_envs": {"NIM_GUIDED_DECODING_BACKEND": "outlines"},
    },
}


async def deploy(client: AsyncNeMoMicroservices, name: str = "llama-1b") -> ModelDeployment:
    return await client.deployment.model_deployments.create(
        name=name, namespace="dfw", config=CONFIG, hf_token="hf-secret"
    )


async def test_pending_then_ready(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    created = await deploy(manual_client)
    assert isinstance(created, ModelDeployment)
    assert created.status_details.status == "pending"
    assert created.deployed is False
    assert created.models == [MODEL]
    assert created.url == manual_nmp.nim_url
    assert created.model_extra is not None and "hf_token" not in created.model_extra

    with pytest.raises(nemo_microservices.NotFoundError):  # not served yet
        await manual_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )

    manual_nmp.advance(manual_nmp.durations.deploy)
    ready = await manual_client.deployment.model_deployments.retrieve("llama-1b", namespace="dfw")
    assert ready.status_details.status == "ready"
    assert ready.deployed is True
    served = await manual_client.inference.models.list()
    assert [m.id for m in served.data] == [MODEL]
    reply = await manual_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello there"}]
    )
    assert reply.choices[0].message.content == "echo: hello there"

    listed = [d.name async for d in manual_client.deployment.model_deployments.list()]
    assert listed == ["llama-1b"]
    assert manual_nmp.live_deployments() == ["dfw/llama-1b"]
    assert manual_nmp.deployments_created("dfw/llama-1b") == 1

    await manual_client.deployment.model_deployments.delete("llama-1b", namespace="dfw")
    assert manual_nmp.live_deployments() == []
    assert manual_nmp.served_models() == []
    with pytest.raises(nemo_microservices.NotFoundError):
        await manual_client.deployment.model_deployments.retrieve("llama-1b", namespace="dfw")
    with pytest.raises(nemo_microservices.NotFoundError):  # teardown is not idempotent: 404
        await manual_client.deployment.model_deployments.delete("llama-1b", namespace="dfw")


async def test_real_time_readiness(
    nmp_client: AsyncNeMoMicroservices, nmp_emulator: NMPEmulator
) -> None:
    from tests.support.nmp import wait_until

    await deploy(nmp_client)

    async def ready() -> bool:
        dep = await nmp_client.deployment.model_deployments.retrieve("llama-1b", namespace="dfw")
        return dep.status_details.status == "ready"

    await wait_until(ready, within=3)
    assert nmp_emulator.deployment_status("dfw", "llama-1b") == "ready"


async def test_create_existing_name_conflicts(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    await deploy(manual_client)
    with pytest.raises(nemo_microservices.ConflictError) as raised:
        await deploy(manual_client)
    assert "model deployment already exists" in str(raised.value)
    assert manual_nmp.deployments_created() == 1


async def test_conflict_status_can_mimic_the_blueprints_500() -> None:
    emulator = start_emulator(deployment_conflict_status=500)
    try:
        client = make_client(emulator)
        await deploy(client)
        with pytest.raises(nemo_microservices.InternalServerError) as raised:
            await deploy(client)
        assert "model deployment already exists" in raised.value.response.text
    finally:
        emulator.stop()


async def test_failing_deployment(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    manual_nmp.configure_faults(deployment_failures={MODEL: "ImagePullBackOff: no such image"})
    await deploy(manual_client)
    manual_nmp.advance(10)
    dep = await manual_client.deployment.model_deployments.retrieve("llama-1b", namespace="dfw")
    assert dep.status_details.status == "failed"
    assert dep.status_details.description == "ImagePullBackOff: no such image"
    assert dep.deployed is False
    assert manual_nmp.served_models() == []
    assert manual_nmp.live_deployments() == ["dfw/llama-1b"]  # still there until deleted


async def test_deployment_from_a_config_reference(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    await manual_client.deployment.configs.create(name="llama-cfg", namespace="dfw", **CONFIG)
    config = await manual_client.deployment.configs.retrieve("llama-cfg", namespace="dfw")
    assert config.model == MODEL
    created = await manual_client.deployment.model_deployments.create(
        name="from-config", namespace="dfw", config="dfw/llama-cfg"
    )
    assert created.models == [MODEL]
    with pytest.raises(nemo_microservices.NotFoundError):
        await manual_client.deployment.model_deployments.create(
            name="other", namespace="dfw", config="dfw/missing"
        )


async def test_raw_blueprint_calls(manual_nmp: NMPEmulator) -> None:
    """The blueprint's plain-HTTP DMS calls (spec 7.1)."""
    url = f"{manual_nmp.base_url}/v1/deployment/model-deployments"
    async with httpx.AsyncClient() as http:
        body = {"name": "llama-1b", "namespace": "dfw", "config": CONFIG}
        assert (await http.post(url, json=body)).status_code == 200
        status = (await http.get(f"{url}/dfw/llama-1b")).json()["status_details"]["status"]
        assert status == "pending"
        assert (await http.delete(f"{url}/dfw/llama-1b")).status_code == 200


async def test_a_starting_deployment_can_report_another_status(manual_nmp: NMPEmulator) -> None:
    """Faults.deployment_pending_status: a status string outside the SDK's list while starting
    (a lenient client reads it; a strictly validating one cannot)."""
    manual_nmp.configure_faults(deployment_pending_status={MODEL: "starting"})
    lenient = make_client(manual_nmp, strict=False)
    await deploy(lenient)
    dep = await lenient.deployment.model_deployments.retrieve("llama-1b", namespace="dfw")
    assert dep.status_details.status == "starting"
    with pytest.raises(nemo_microservices.APIResponseValidationError):
        await make_client(manual_nmp).deployment.model_deployments.retrieve(
            "llama-1b", namespace="dfw"
        )
    manual_nmp.advance(manual_nmp.durations.deploy)
    assert manual_nmp.deployment_status("dfw", "llama-1b") == "ready"
