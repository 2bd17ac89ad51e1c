"""Publishing datasets to the Data Store and the Entity Store: idempotent, never duplicated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from flywheel.clients.nemo import DatasetFile, NemoClient
from flywheel.clients.nemo.datastore import FINGERPRINT_FIELD, fingerprint
from flywheel.clients.nemo.names import RunNames
from tests.platforms.nemo.support import NS, RUN_ID, make_config
from tests.support.nmp import HF_TOKEN
from tests.support.nmp_emulator import NMPEmulator

NAME = RunNames(RUN_ID).dataset("train")
REPO = f"{NS}/{NAME}"
TRAIN = DatasetFile("training/train_data.jsonl", b'{"messages": []}\n')
VAL = DatasetFile("validation/val_data.jsonl", b'{"messages": [1]}\n')


@pytest_asyncio.fixture
async def client(emulator: NMPEmulator) -> AsyncIterator[NemoClient]:
    nmp_config = make_config(emulator).nmp_config
    assert nmp_config is not None
    client = NemoClient.from_config(nmp_config)
    try:
        yield client
    finally:
        await client.aclose()


async def publish(client: NemoClient, *files: DatasetFile) -> str:
    return await client.datasets.publish(
        NAME, list(files or (TRAIN, VAL)), custom_fields={"flywheel_run": "k"}, description="t"
    )


async def test_publish_creates_namespace_repo_files_and_entry(
    client: NemoClient, emulator: NMPEmulator
) -> None:
    url = await publish(client)
    assert url == f"hf://datasets/{REPO}"
    assert emulator.namespaces() == [NS] and emulator.datastore_namespaces() == [NS]
    assert emulator.repos() == [REPO]
    assert emulator.files(REPO) == {TRAIN.path: TRAIN.data, VAL.path: VAL.data}
    entry = emulator.dataset(NS, NAME)
    assert entry is not None and entry["files_url"] == url
    assert entry["custom_fields"] == {
        "flywheel_run": "k",
        FINGERPRINT_FIELD: fingerprint([TRAIN, VAL]),
    }
    # the Data Store got its token; the Entity Store did not
    assert {v for _, v in emulator.authorizations("/v1/hf")} == {f"Bearer {HF_TOKEN}"}
    assert emulator.authorizations("/v1/datasets") == []


async def test_publishing_again_changes_nothing(client: NemoClient, emulator: NMPEmulator) -> None:
    await publish(client)
    emulator.clear_requests()
    await publish(client)  # a retried step: one lookup, nothing written
    assert [(r.method, r.path) for r in emulator.requests()] == [
        ("GET", f"/v1/datasets/{NS}/{NAME}")
    ]
    assert len(emulator.uploaded_files(REPO)) == 2
    assert emulator.datasets() == [REPO]


async def test_a_half_published_dataset_is_completed(
    client: NemoClient, emulator: NMPEmulator
) -> None:
    await publish(client, TRAIN)  # an earlier attempt that died after the first file
    await publish(client, TRAIN, VAL)
    assert emulator.uploaded_files(REPO) == [
        (REPO, TRAIN.path, len(TRAIN.data)),
        (REPO, VAL.path, len(VAL.data)),
    ]  # the train file was not uploaded twice
    assert emulator.datasets() == [REPO]
    entry = emulator.dataset(NS, NAME)
    assert entry is not None
    assert entry["custom_fields"][FINGERPRINT_FIELD] == fingerprint([TRAIN, VAL])


async def test_changed_content_replaces_the_file(client: NemoClient, emulator: NMPEmulator) -> None:
    await publish(client)
    changed = DatasetFile(TRAIN.path, b'{"messages": [2]}\n')
    await publish(client, changed, VAL)
    assert emulator.files(REPO)[TRAIN.path] == changed.data
    entry = emulator.dataset(NS, NAME)
    assert entry is not None
    assert entry["custom_fields"][FINGERPRINT_FIELD] == fingerprint([changed, VAL])
    assert emulator.datasets() == [REPO]


async def test_concurrent_candidates_of_one_worker_publish_once(
    client: NemoClient, emulator: NMPEmulator
) -> None:
    await asyncio.gather(publish(client), publish(client), publish(client))
    assert emulator.repos() == [REPO]
    assert emulator.datasets() == [REPO]
    assert len(emulator.uploaded_files(REPO)) == 2
    assert len(emulator.requests("/v1/datasets", method="POST")) == 1


async def test_concurrent_workers_end_with_one_repo_and_one_entry(
    emulator: NMPEmulator,
) -> None:
    nmp_config = make_config(emulator).nmp_config
    assert nmp_config is not None
    clients = [NemoClient.from_config(nmp_config) for _ in range(3)]  # no shared lock
    try:
        await asyncio.gather(*(publish(c) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    assert emulator.repos() == [REPO]
    assert emulator.datasets() == [REPO]
    assert emulator.files(REPO) == {TRAIN.path: TRAIN.data, VAL.path: VAL.data}


async def test_an_entry_made_by_someone_else_meanwhile_is_used(
    client: NemoClient, emulator: NMPEmulator
) -> None:
    emulator.configure_faults(conflict_on_create={NAME})  # the create answers 409
    await publish(client)
    assert emulator.datasets() == [REPO]
    entry = emulator.dataset(NS, NAME)
    assert entry is not None
    assert entry["custom_fields"][FINGERPRINT_FIELD] == fingerprint([TRAIN, VAL])


async def test_delete_is_idempotent(client: NemoClient, emulator: NMPEmulator) -> None:
    await publish(client)
    assert await client.datasets.delete(NAME) == [
        f"deleted Data Store repo datasets/{REPO}",
        f"deleted Entity Store dataset {REPO}",
    ]
    assert emulator.repos() == [] and emulator.datasets() == []
    assert await client.datasets.delete(NAME) == []
