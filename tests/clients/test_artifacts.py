"""ArtifactStore: content-addressed datasets, streamed writes, directories, on file and memory."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import orjson
import pytest

from flywheel.clients.artifacts import ArtifactStore
from flywheel.errors import FlywheelError
from flywheel.schemas import DatasetFormat


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "file":
        return ArtifactStore((tmp_path / "artifacts").as_uri())
    return ArtifactStore(f"memory://flywheel-test-{uuid.uuid4().hex}")


async def test_datasets_are_content_addressed(store: ArtifactStore) -> None:
    records = [{"i": i, "text": "é"} for i in range(5)]
    ref = await store.put_jsonl(records, DatasetFormat.EVAL)
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.uri == store.uri_for(f"datasets/eval/{ref.sha256}.jsonl")
    assert ref.n_records == 5
    assert await store.read_dataset(ref) == records
    again = await store.put_jsonl(iter(records), DatasetFormat.EVAL)  # any iterable, same file
    assert again == ref
    assert [p for p in await store.list("datasets") if "incoming" in p] == []
    empty = await store.put_jsonl([], DatasetFormat.TRAINING)
    assert empty.n_records == 0 and await store.read_dataset(empty) == []


async def test_a_modified_dataset_is_refused(store: ArtifactStore) -> None:
    ref = await store.put_jsonl([{"a": 1}], DatasetFormat.EVAL)
    await store.write_bytes(store.relative(ref.uri), b'{"a": 2}\n')
    with pytest.raises(FlywheelError, match="does not match its sha256"):
        await store.read_dataset(ref)


async def test_chunked_writer_matches_put_jsonl_and_cleans_up_on_error(
    store: ArtifactStore,
) -> None:
    lines = [orjson.dumps({"n": n}) + b"\n" for n in range(10)]
    with store.jsonl_writer(DatasetFormat.TRAINING) as writer:
        writer.write(b"".join(lines[:4]), 4)
        writer.write(b"".join(lines[4:]), 6)
    assert writer.ref is not None and writer.ref.n_records == 10
    direct = await store.put_jsonl([{"n": n} for n in range(10)], DatasetFormat.TRAINING)
    assert writer.ref == direct

    with pytest.raises(RuntimeError), store.jsonl_writer(DatasetFormat.TRAINING) as failing:
        failing.write(b"{}\n", 1)
        raise RuntimeError("producer failed")
    assert failing.ref is None
    assert [p for p in await store.list("datasets") if p.endswith(".tmp")] == []


async def test_directories_round_trip_and_replace(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "adapter"
    (source / "nested").mkdir(parents=True)
    (source / "adapter_config.json").write_text('{"r": 8}')
    (source / "nested" / "weights.bin").write_bytes(bytes(range(256)) * 10)
    uri = await store.put_directory(source, "runs/r1/alpha/adapter")
    assert uri == store.uri_for("runs/r1/alpha/adapter")

    copy = await store.get_directory(uri, tmp_path / "copy")
    assert (copy / "adapter_config.json").read_text() == '{"r": 8}'
    assert (copy / "nested" / "weights.bin").read_bytes() == bytes(range(256)) * 10

    (source / "nested" / "weights.bin").unlink()
    (source / "adapter_config.json").write_text('{"r": 16}')
    await store.put_directory(source, "runs/r1/alpha/adapter")  # replaces, leaves no stale file
    again = await store.get_directory(uri, tmp_path / "again")
    assert sorted(p.name for p in again.rglob("*") if p.is_file()) == ["adapter_config.json"]
    assert (again / "adapter_config.json").read_text() == '{"r": 16}'


async def test_missing_things_are_clear_errors(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(FlywheelError, match="artifact directory not found"):
        await store.get_directory("runs/none", tmp_path / "x")
    with pytest.raises(FlywheelError, match="not a directory"):
        await store.put_directory(tmp_path / "absent", "runs/x")
    with pytest.raises(FlywheelError, match=r"may not contain '\.\.'"):
        await store.write_bytes("datasets/../../escape", b"x")
    with pytest.raises(FlywheelError, match="is not in the artifact store"):
        store.relative("file:///elsewhere/datasets/x.jsonl")
