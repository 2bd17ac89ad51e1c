"""Fault injection (5xx rate, one-shot failures, latency, 409 and lost replies on create) and the
counters / request log tests use to assert "exactly one" and "none left"."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import nemo_microservices
import pytest
from nemo_microservices import AsyncNeMoMicroservices

from tests.support.nmp import make_client
from tests.support.nmp_emulator import NMPEmulator
from tests.support.nmp_emulator.faults import Faults

NS = "dfw"
CONFIG = {"model": "meta/llama-3.2-1b-instruct"}
TRAINING_OPTIONS = [
    {"training_type": "sft", "finetuning_type": "lora", "num_gpus": 1, "micro_batch_size": 1}
]


async def customization_setup(client: AsyncNeMoMicroservices) -> None:
    await client.namespaces.create(id=NS)
    await client.datasets.create(name="train", namespace=NS, files_url="hf://datasets/dfw/train")
    await client.customization.configs.create(
        name="cfg@v1",
        namespace=NS,
        target="meta/llama-3.2-1b-instruct@2.0",
        training_options=TRAINING_OPTIONS,
        max_seq_length=4096,
    )


async def create_job(client: AsyncNeMoMicroservices, name: str = "job-a"):
    return await client.customization.jobs.create(
        name=name,
        config=f"{NS}/cfg@v1",
        dataset={"name": "train", "namespace": NS},
        hyperparameters={"finetuning_type": "lora", "epochs": 1},
        output_model=f"{NS}/customized",
    )


def statuses(nmp: NMPEmulator, n: int) -> list[int]:
    with httpx.Client() as http:
        return [http.get(f"{nmp.base_url}/v1/namespaces").status_code for _ in range(n)]


def test_seeded_error_rate_is_reproducible(nmp_emulator: NMPEmulator) -> None:
    nmp_emulator.configure_faults(error_rate=0.5, seed=7, error_paths=("/v1/namespaces",))
    first = statuses(nmp_emulator, 40)
    assert set(first) == {200, 503}
    assert 10 <= first.count(503) <= 30
    nmp_emulator.configure_faults(seed=7)  # re-seeding replays the same sequence
    assert statuses(nmp_emulator, 40) == first
    with httpx.Client() as http:  # paths outside error_paths are never hit
        assert all(
            http.get(f"{nmp_emulator.base_url}/v1/datasets").status_code == 200 for _ in range(20)
        )
    nmp_emulator.configure_faults(error_rate=0.0)
    assert set(statuses(nmp_emulator, 10)) == {200}


async def test_injected_5xx_surfaces_through_the_sdk(
    nmp_client: AsyncNeMoMicroservices, nmp_emulator: NMPEmulator
) -> None:
    nmp_emulator.configure_faults(error_rate=1.0, error_status=502)
    with pytest.raises(nemo_microservices.InternalServerError) as raised:
        await nmp_client.namespaces.create(id=NS)
    assert raised.value.status_code == 502
    assert nmp_emulator.namespaces() == []  # an error reply does nothing


async def test_one_shot_failures_and_sdk_retries(nmp_emulator: NMPEmulator) -> None:
    client = make_client(nmp_emulator)
    await customization_setup(client)
    nmp_emulator.fail_next(1, 503, path_prefix="/v1/customization/jobs", method="POST")
    with pytest.raises(nemo_microservices.APIStatusError):
        await create_job(client)
    assert nmp_emulator.customization_jobs_created() == 0

    nmp_emulator.fail_next(1, 500, path_prefix="/v1/customization/jobs", method="POST")
    retrying = make_client(nmp_emulator, max_retries=2)
    job = await create_job(retrying)
    posts = nmp_emulator.requests("/v1/customization/jobs", method="POST")
    assert [r.status for r in posts] == [503, 500, 200]
    assert nmp_emulator.customization_jobs_created("job-a") == 1
    assert job.name == "job-a"


async def test_latency(nmp_emulator: NMPEmulator) -> None:
    nmp_emulator.configure_faults(latency_s=0.25, latency_paths=("/v1/namespaces",))
    async with httpx.AsyncClient() as http:
        started = time.monotonic()
        await http.get(f"{nmp_emulator.base_url}/v1/namespaces")
        slow = time.monotonic() - started
        started = time.monotonic()
        await http.get(f"{nmp_emulator.base_url}/v1/datasets")
        fast = time.monotonic() - started
    assert slow >= 0.25 > fast
    client = make_client(nmp_emulator).with_options(timeout=0.1)
    with pytest.raises(nemo_microservices.APITimeoutError):
        await client.namespaces.list()


async def test_conflict_on_create_means_an_earlier_attempt_created_it(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    manual_nmp.configure_faults(conflict_on_create={"llama", "job-a"})
    with pytest.raises(nemo_microservices.ConflictError):
        await manual_client.deployment.model_deployments.create(
            name="llama", namespace=NS, config=CONFIG
        )
    found = await manual_client.deployment.model_deployments.retrieve("llama", namespace=NS)
    assert found.status_details.status == "pending"
    assert manual_nmp.deployments_created("dfw/llama") == 1

    await customization_setup(manual_client)
    with pytest.raises(nemo_microservices.ConflictError):
        await create_job(manual_client)
    with pytest.raises(nemo_microservices.ConflictError):  # still taken: no second job
        await create_job(manual_client)
    jobs = await manual_client.customization.jobs.list()
    assert [j.name for j in jobs.data] == ["job-a"]  # re-attach by looking it up
    assert manual_nmp.customization_jobs_created("job-a") == 1


async def test_lost_reply_on_create(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    manual_nmp.configure_faults(lose_response_on_create={"llama", "job-a"})
    with pytest.raises(nemo_microservices.InternalServerError):
        await manual_client.deployment.model_deployments.create(
            name="llama", namespace=NS, config=CONFIG
        )
    with pytest.raises(nemo_microservices.ConflictError):  # a blind retry: it exists
        await manual_client.deployment.model_deployments.create(
            name="llama", namespace=NS, config=CONFIG
        )
    assert manual_nmp.live_deployments() == ["dfw/llama"]

    await customization_setup(manual_client)
    with pytest.raises(nemo_microservices.InternalServerError):
        await create_job(manual_client)
    await create_job(manual_client)  # a blind retry duplicates the job, like the real service
    assert manual_nmp.customization_jobs_created("job-a") == 2


async def test_faults_change_at_runtime_under_load(nmp_emulator: NMPEmulator) -> None:
    stop = threading.Event()

    def toggle() -> None:
        while not stop.is_set():
            nmp_emulator.configure_faults(error_rate=0.5)
            nmp_emulator.set_faults(Faults())

    flipper = threading.Thread(target=toggle)
    flipper.start()
    try:
        async with httpx.AsyncClient() as http:
            replies = await asyncio.gather(
                *(http.get(f"{nmp_emulator.base_url}/v1/namespaces") for _ in range(60))
            )
    finally:
        stop.set()
        flipper.join()
    assert {r.status_code for r in replies} <= {200, 503}
    assert len(nmp_emulator.requests("/v1/namespaces")) == 60


async def test_request_log_keeps_authorization_for_leak_checks(
    nmp_emulator: NMPEmulator,
) -> None:
    client = make_client(nmp_emulator, default_headers={"Authorization": "Bearer platform-key"})
    await client.namespaces.create(id=NS)
    async with httpx.AsyncClient() as http:
        await http.post(
            f"{nmp_emulator.base_url}/v1/datastore/namespaces",
            data={"namespace": NS},
            headers={"Authorization": "Bearer hf-key"},
        )
        await http.get(f"{nmp_emulator.base_url}/v1/datasets")
    assert nmp_emulator.authorizations() == [
        ("/v1/namespaces", "Bearer platform-key"),
        ("/v1/datastore/namespaces", "Bearer hf-key"),
    ]
    leaked = [p for p, v in nmp_emulator.authorizations("/v1/namespaces") if "hf-key" in v]
    assert leaked == []
    first = nmp_emulator.requests("/v1/namespaces")[0]
    assert first.method == "POST" and first.status == 200 and b'"dfw"' in first.body
    nmp_emulator.clear_requests()
    assert nmp_emulator.requests() == []


def test_unknown_paths_and_methods(nmp_emulator: NMPEmulator) -> None:
    with httpx.Client() as http:
        assert http.get(f"{nmp_emulator.base_url}/v2/nothing").status_code == 404
        assert http.put(f"{nmp_emulator.base_url}/v1/namespaces").status_code == 405
        bad = http.post(f"{nmp_emulator.base_url}/v1/namespaces", content=b"{not json")
        assert bad.status_code == 400


def test_advance_needs_a_manual_clock(nmp_emulator: NMPEmulator) -> None:
    with pytest.raises(TypeError):
        nmp_emulator.advance(1)
