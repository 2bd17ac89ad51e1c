"""Entity Store: namespaces, datasets, models, through the real SDK."""

from __future__ import annotations

import nemo_microservices
import pytest
from nemo_microservices import AsyncNeMoMicroservices
from nemo_microservices.types import Dataset, Model, Namespace

from tests.support.nmp_emulator import NMPEmulator


async def test_namespace_create_get_list_delete(
    nmp_client: AsyncNeMoMicroservices, nmp_emulator: NMPEmulator
) -> None:
    created = await nmp_client.namespaces.create(id="dfw", description="flywheel")
    assert isinstance(created, Namespace)
    assert created.id == "dfw"
    assert created.created_at is not None

    with pytest.raises(nemo_microservices.ConflictError):
        await nmp_client.namespaces.create(id="dfw")

    fetched = await nmp_client.namespaces.retrieve("dfw")
    assert fetched.description == "flywheel"
    assert [ns.id async for ns in nmp_client.namespaces.list()] == ["dfw"]
    assert nmp_emulator.namespaces() == ["dfw"]

    await nmp_client.namespaces.delete("dfw")
    with pytest.raises(nemo_microservices.NotFoundError):
        await nmp_client.namespaces.retrieve("dfw")


async def test_dataset_lifecycle(
    nmp_client: AsyncNeMoMicroservices, nmp_emulator: NMPEmulator
) -> None:
    await nmp_client.namespaces.create(id="dfw")
    url = "hf://datasets/dfw/flywheel-eval-w1-1700000000"
    dataset = await nmp_client.datasets.create(
        name="flywheel-eval-w1-1700000000", namespace="dfw", files_url=url, project="flywheel"
    )
    assert isinstance(dataset, Dataset)
    assert dataset.files_url == url
    assert dataset.id is not None and dataset.id.startswith("dataset-")

    with pytest.raises(nemo_microservices.ConflictError):
        await nmp_client.datasets.create(
            name="flywheel-eval-w1-1700000000", namespace="dfw", files_url=url
        )

    fetched = await nmp_client.datasets.retrieve("flywheel-eval-w1-1700000000", namespace="dfw")
    assert fetched.files_url == url and fetched.project == "flywheel"

    # PATCH keeps the old value of an empty field
    updated = await nmp_client.datasets.update(
        "flywheel-eval-w1-1700000000", namespace="dfw", description="eval", files_url=""
    )
    assert updated.description == "eval" and updated.files_url == url

    names = [d.name async for d in nmp_client.datasets.list()]
    assert names == ["flywheel-eval-w1-1700000000"]
    assert nmp_emulator.datasets() == ["dfw/flywheel-eval-w1-1700000000"]

    deleted = await nmp_client.datasets.delete("flywheel-eval-w1-1700000000", namespace="dfw")
    assert deleted.id == dataset.id
    assert nmp_emulator.datasets() == []
    with pytest.raises(nemo_microservices.NotFoundError):
        await nmp_client.datasets.delete("flywheel-eval-w1-1700000000", namespace="dfw")


async def test_dataset_needs_its_namespace_when_strict(nmp_client: AsyncNeMoMicroservices) -> None:
    with pytest.raises(nemo_microservices.NotFoundError):
        await nmp_client.datasets.create(name="d", namespace="nowhere", files_url="hf://x")
    with pytest.raises(nemo_microservices.UnprocessableEntityError):
        await nmp_client.post("/v1/datasets", body={"name": "d"}, cast_to=object)


async def test_list_pagination_filter_and_sort(nmp_client: AsyncNeMoMicroservices) -> None:
    await nmp_client.namespaces.create(id="a")
    await nmp_client.namespaces.create(id="b")
    for i in range(12):
        ns = "a" if i % 2 else "b"
        await nmp_client.datasets.create(name=f"d{i:02d}", namespace=ns, files_url=f"hf://{i}")

    first = await nmp_client.datasets.list(page_size=5)
    assert len(first.data) == 5
    assert first.pagination is not None
    assert first.pagination.total_results == 12 and first.pagination.total_pages == 3
    everything = [d.name async for d in nmp_client.datasets.list(page_size=5)]
    assert everything == [f"d{i:02d}" for i in range(12)]  # the SDK followed the pages

    only_a = [d.name async for d in nmp_client.datasets.list(filter={"namespace": "a"})]
    assert only_a == [f"d{i:02d}" for i in range(1, 12, 2)]
    newest = await nmp_client.datasets.list(sort="-created_at", page_size=1)
    assert newest.data[0].name == "d11"
    found = await nmp_client.datasets.list(search={"name": "d1"})
    assert {d.name for d in found.data} == {"d10", "d11"}


async def test_models_create_get_delete(
    nmp_client: AsyncNeMoMicroservices, nmp_emulator: NMPEmulator
) -> None:
    model = await nmp_client.models.create(
        name="my-model",
        namespace="dfw",
        base_model="meta/llama-3.2-1b-instruct",
        peft={"finetuning_type": "lora"},
    )
    assert isinstance(model, Model)
    assert model.peft is not None and model.peft.finetuning_type == "lora"
    with pytest.raises(nemo_microservices.ConflictError):
        await nmp_client.models.create(name="my-model", namespace="dfw")

    fetched = await nmp_client.models.retrieve("my-model", namespace="dfw")
    assert fetched.base_model == "meta/llama-3.2-1b-instruct"
    listed = [m async for m in nmp_client.models.list()]
    assert [(m.namespace, m.name) for m in listed] == [("dfw", "my-model")]
    # with inference_base_url == base_url, the same list parses as the NIM's model list
    same_host = nmp_client.with_options(inference_base_url=nmp_emulator.base_url)
    served = await same_host.inference.models.list()
    assert [m.id for m in served.data] == ["dfw/my-model"]
    # the separate NIM surface lists only what is served
    assert (await nmp_client.inference.models.list()).data == []

    await nmp_client.models.delete("my-model", namespace="dfw")
    assert nmp_emulator.models() == []
    with pytest.raises(nemo_microservices.NotFoundError):
        await nmp_client.models.retrieve("my-model", namespace="dfw")
