"""Customizer: configs (versioned names), jobs created → running → completed / failed /
NotEnoughResources / cancelled, the customized model's registration and sync."""

from __future__ import annotations

import httpx
import nemo_microservices
import pytest
from nemo_microservices import AsyncNeMoMicroservices
from nemo_microservices.types.customization import CustomizationJob, CustomizationStatusDetails
from nemo_microservices.types.customization_config import CustomizationConfig

from tests.support.nmp_emulator import NMPEmulator

NS = "dfw"
CONFIG_NAME = "llama-3.2-1b-instruct@v1.0.0+dfw"
TRAINING_OPTIONS = [
    {
        "training_type": "sft",
        "finetuning_type": "lora",
        "num_gpus": 1,
        "num_nodes": 1,
        "tensor_parallel_size": 1,
        "data_parallel_size": 1,
        "use_sequence_parallel": False,
        "micro_batch_size": 1,
    }
]
HYPERPARAMETERS = {
    "training_type": "sft",
    "finetuning_type": "lora",
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.0001,
    "lora": {"adapter_dim": 32, "adapter_dropout": 0.1},
}
BASE = "meta/llama-3.2-1b-instruct"
JOB_NAME = "customization-w1-llama"


async def setup(client: AsyncNeMoMicroservices) -> None:
    await client.namespaces.create(id=NS)
    await client.customization.configs.create(
        name=CONFIG_NAME,
        namespace=NS,
        target=f"{BASE}@2.0",
        training_options=TRAINING_OPTIONS,
        training_precision="bf16-mixed",
        max_seq_length=8192,
    )
    await client.datasets.create(name="train", namespace=NS, files_url=f"hf://datasets/{NS}/train")


async def start_job(client: AsyncNeMoMicroservices, name: str = JOB_NAME) -> CustomizationJob:
    return await client.customization.jobs.create(
        name=name,
        output_model=f"{NS}/customized-meta-llama-3.2-1b-instruct",
        config=f"{NS}/{CONFIG_NAME}",
        dataset={"name": "train", "namespace": NS},
        hyperparameters=HYPERPARAMETERS,
    )


async def test_config_names_and_conflicts(manual_client: AsyncNeMoMicroservices) -> None:
    await setup(manual_client)
    config = await manual_client.customization.configs.retrieve(CONFIG_NAME, namespace=NS)
    assert isinstance(config, CustomizationConfig)
    assert config.target == f"{BASE}@2.0"
    assert config.training_options[0].micro_batch_size == 1
    with pytest.raises(nemo_microservices.ConflictError):
        await manual_client.customization.configs.create(
            name=CONFIG_NAME, namespace=NS, training_options=TRAINING_OPTIONS, max_seq_length=1
        )
    with pytest.raises(nemo_microservices.UnprocessableEntityError):  # no version suffix
        await manual_client.customization.configs.create(
            name="llama", namespace=NS, training_options=TRAINING_OPTIONS, max_seq_length=1
        )
    with pytest.raises(nemo_microservices.UnprocessableEntityError):  # option misses fields
        await manual_client.customization.configs.create(
            name="x@v1",
            namespace=NS,
            training_options=[{"training_type": "sft"}],
            max_seq_length=1,
        )
    names = [c.name async for c in manual_client.customization.configs.list()]
    assert names == [CONFIG_NAME]
    await manual_client.customization.configs.delete(CONFIG_NAME, namespace=NS)
    with pytest.raises(nemo_microservices.NotFoundError):
        await manual_client.customization.configs.retrieve(CONFIG_NAME, namespace=NS)


async def test_job_runs_to_completion(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    await setup(manual_client)
    job = await start_job(manual_client)
    assert isinstance(job, CustomizationJob)
    assert job.id is not None and job.id.startswith("cust-")
    assert job.output_model == f"{NS}/customized-meta-llama-3.2-1b-instruct@{job.id}"
    assert job.status == "created"
    assert job.config_snapshot is not None and job.config_snapshot.base_model == BASE

    d = manual_nmp.durations
    manual_nmp.advance(d.customization_queue + d.customization / 2)
    status = await manual_client.customization.jobs.status(job.id)
    assert isinstance(status, CustomizationStatusDetails)
    assert status.status == "running"
    assert status.percentage_done == pytest.approx(50.0)
    assert status.epochs_completed == 1 and status.steps_completed == 10
    assert status.metrics is not None and status.metrics.metrics is not None
    assert len(status.metrics.metrics.train_loss or []) == 10
    assert len(status.metrics.metrics.val_loss or []) == 1
    assert [log.message for log in status.status_logs or []] == ["created", "running"]

    manual_nmp.advance(d.customization / 2)
    done = await manual_client.customization.jobs.retrieve(job.id)
    assert done.status == "completed"
    assert done.status_details is not None
    assert done.status_details.percentage_done == 100.0
    assert done.status_details.epochs_completed == 2 and done.status_details.steps_completed == 20
    assert (done.status_details.status_logs or [])[-1].message == "completed"

    # the customized model is registered in the Entity Store ...
    ns, _, name = done.output_model.partition("/")
    model = await manual_client.models.retrieve(name, namespace=ns)
    assert model.base_model == BASE
    assert model.peft is not None and model.peft.finetuning_type == "lora"
    # ... and served only once its base model is deployed
    assert done.output_model not in manual_nmp.served_models()
    await manual_client.deployment.model_deployments.create(
        name="base", namespace=NS, config={"model": BASE}
    )
    manual_nmp.advance(d.deploy)
    served = [m.id for m in (await manual_client.inference.models.list()).data]
    assert done.output_model in served
    reply = await manual_client.chat.completions.create(
        model=done.output_model, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.model == done.output_model

    assert manual_nmp.customization_jobs_created(JOB_NAME) == 1
    assert manual_nmp.active_jobs() == []


async def test_model_sync_delay(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    manual_nmp.set_durations(model_sync=5.0)
    await manual_client.deployment.model_deployments.create(
        name="base", namespace=NS, config={"model": BASE}
    )
    await setup(manual_client)
    job = await start_job(manual_client)
    d = manual_nmp.durations
    manual_nmp.advance(d.customization_queue + d.customization)
    assert job.output_model in manual_nmp.models()  # registered at completion ...
    assert job.output_model not in manual_nmp.served_models()  # ... served after the sync
    manual_nmp.advance(5)
    assert job.output_model in manual_nmp.served_models()
    await manual_client.models.delete(job.output_model.partition("/")[2], namespace=NS)
    assert job.output_model not in manual_nmp.served_models()


async def test_job_failure_has_status_logs(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    manual_nmp.configure_faults(
        customization_failures={JOB_NAME: "CUDA out of memory"}, customization_fail_at=0.25
    )
    await setup(manual_client)
    job = await start_job(manual_client)
    manual_nmp.advance(100)
    status = await manual_client.customization.jobs.status(job.id)
    assert status.status == "failed"
    assert status.percentage_done == pytest.approx(25.0)
    logs = status.status_logs or []
    assert logs[-1].message == "failed" and logs[-1].detail == "CUDA out of memory"
    assert job.output_model not in manual_nmp.models()
    with pytest.raises(nemo_microservices.BadRequestError):
        await manual_client.customization.jobs.cancel(job.id)


async def test_not_enough_resources(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    manual_nmp.configure_faults(not_enough_resources={JOB_NAME})
    await setup(manual_client)
    job = await start_job(manual_client)
    manual_nmp.advance(3600)
    status = await manual_client.customization.jobs.status(job.id)
    assert status.status == "pending"
    assert status.percentage_done == 0.0
    last = (status.status_logs or [])[-1]
    assert last.message == "NotEnoughResources"
    assert last.detail is not None and "GPU" in last.detail
    assert manual_nmp.active_jobs() == [job.id]

    # every job, reported "running" without progress (what the blueprint's unit test mocks)
    manual_nmp.configure_faults(not_enough_resources="*", not_enough_resources_status="running")
    other = await start_job(manual_client, name="other")
    manual_nmp.advance(1)
    other_status = await manual_client.customization.jobs.status(other.id)
    assert other_status.status == "running" and other_status.percentage_done == 0.0
    assert (other_status.status_logs or [])[-1].message == "NotEnoughResources"
    assert other.id in manual_nmp.active_jobs()


async def test_cancel(manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator) -> None:
    await setup(manual_client)
    job = await start_job(manual_client)
    manual_nmp.advance(manual_nmp.durations.customization_queue + 0.1)
    cancelled = await manual_client.customization.jobs.cancel(job.id)
    assert cancelled.status == "cancelled"
    again = await manual_client.customization.jobs.cancel(job.id)  # idempotent
    assert again.status == "cancelled"
    manual_nmp.advance(100)
    status = await manual_client.customization.jobs.status(job.id)
    assert status.status == "cancelled"
    assert (status.status_logs or [])[-1].message == "cancelled"
    assert manual_nmp.cancelled_jobs() == [job.id]
    assert manual_nmp.active_jobs() == []
    assert manual_nmp.models() == []
    with pytest.raises(nemo_microservices.NotFoundError):
        await manual_client.customization.jobs.cancel("cust-missing")


async def test_the_blueprints_cancel_path_does_not_exist(manual_nmp: NMPEmulator) -> None:
    """``POST /v1/customizations/{id}/cancel`` (spec 6.7) is a 404, like the real service."""
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{manual_nmp.base_url}/v1/customizations/cust-1/cancel")
    assert response.status_code == 404


async def test_references_are_checked(manual_client: AsyncNeMoMicroservices) -> None:
    await manual_client.namespaces.create(id=NS)
    with pytest.raises(nemo_microservices.NotFoundError, match="config"):
        await start_job(manual_client)
    await manual_client.customization.configs.create(
        name=CONFIG_NAME,
        namespace=NS,
        target=BASE,
        training_options=TRAINING_OPTIONS,
        max_seq_length=8192,
    )
    with pytest.raises(nemo_microservices.NotFoundError, match="Dataset"):
        await start_job(manual_client)
    with pytest.raises(nemo_microservices.UnprocessableEntityError):
        await manual_client.customization.jobs.create(
            config=f"{NS}/{CONFIG_NAME}", dataset="dfw/train", hyperparameters={"epochs": 1}
        )


async def test_list_and_filter_jobs(
    manual_client: AsyncNeMoMicroservices, manual_nmp: NMPEmulator
) -> None:
    await setup(manual_client)
    first = await start_job(manual_client, name="a")
    manual_nmp.advance(100)
    second = await start_job(manual_client, name="b")
    jobs = [j.id async for j in manual_client.customization.jobs.list()]
    assert jobs == [first.id, second.id]
    running = await manual_client.customization.jobs.list(filter={"status": "created"})
    assert [j.id for j in running.data] == [second.id]
    by_dataset = await manual_client.customization.jobs.list(filter={"dataset": "dfw/train"})
    assert len(by_dataset.data) == 2
    by_base = await manual_client.customization.jobs.list(filter={"base_model": BASE, "epochs": 2})
    assert len(by_base.data) == 2
    assert manual_nmp.customization_jobs_created() == 2
    assert [j["id"] for j in manual_nmp.customization_jobs("b")] == [second.id]


async def test_container_logs_and_targets(manual_client: AsyncNeMoMicroservices) -> None:
    await setup(manual_client)
    job = await start_job(manual_client)
    logs = await manual_client.customization.jobs.container_logs(job.id)
    assert logs.entries is not None and len(logs.entries) == 1
    target = await manual_client.customization.targets.create(
        name="llama-3.2-1b-instruct@2.0",
        namespace="meta",
        base_model=BASE,
        num_parameters=1_000_000_000,
        precision="bf16-mixed",
    )
    assert target.model_path and target.status == "ready"
    fetched = await manual_client.customization.targets.retrieve(
        "llama-3.2-1b-instruct@2.0", namespace="meta"
    )
    assert fetched.base_model == BASE
