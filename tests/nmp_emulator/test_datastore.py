"""Data Store: its namespace endpoint and the Hugging Face API, through the real HfApi."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
)

from tests.support.nmp import HF_TOKEN, allow_hf_hub, start_emulator
from tests.support.nmp_emulator import NMPEmulator

REPO = "dfw/flywheel-train-w1-1700000000"


def test_datastore_namespace_form_endpoint(nmp_emulator: NMPEmulator) -> None:
    url = f"{nmp_emulator.base_url}/v1/datastore/namespaces"
    first = httpx.post(url, data={"namespace": "dfw"})
    assert first.status_code == 201
    assert first.json()["namespace"] == "dfw"
    assert httpx.post(url, data={"namespace": "dfw"}).status_code == 409
    assert httpx.get(f"{url}/dfw").status_code == 200
    assert nmp_emulator.datastore_namespaces() == ["dfw"]
    assert httpx.delete(f"{url}/dfw").status_code == 204
    assert httpx.get(f"{url}/dfw").status_code == 404


def test_create_repo_upload_list_download(
    hf: HfApi, nmp_emulator: NMPEmulator, tmp_path: Path
) -> None:
    url = hf.create_repo(REPO, repo_type="dataset", exist_ok=True)
    assert url.repo_id == REPO and url.repo_type == "dataset"
    hf.create_repo(REPO, repo_type="dataset", exist_ok=True)  # 409 swallowed by exist_ok
    with pytest.raises(HfHubHTTPError) as conflict:
        hf.create_repo(REPO, repo_type="dataset")
    assert conflict.value.response.status_code == 409

    train = b'{"messages": [{"role": "user", "content": "hi"}]}'
    info = hf.upload_file(
        path_or_fileobj=train,
        path_in_repo="training/train_data.jsonl",
        repo_id=REPO,
        repo_type="dataset",
    )
    assert info.oid and len(info.oid) == 40
    hf.upload_file(
        path_or_fileobj=b'{"x": 1}',
        path_in_repo="validation/val_data.jsonl",
        repo_id=REPO,
        repo_type="dataset",
    )

    assert sorted(hf.list_repo_files(REPO, repo_type="dataset")) == [
        "training/train_data.jsonl",
        "validation/val_data.jsonl",
    ]
    top = {e.path: type(e).__name__ for e in hf.list_repo_tree(REPO, repo_type="dataset")}
    assert top == {"training": "RepoFolder", "validation": "RepoFolder"}
    inside = [e.path for e in hf.list_repo_tree(REPO, "training", repo_type="dataset")]
    assert inside == ["training/train_data.jsonl"]
    assert hf.file_exists(REPO, "training/train_data.jsonl", repo_type="dataset")
    assert not hf.file_exists(REPO, "nope.jsonl", repo_type="dataset")
    assert hf.repo_exists(REPO, repo_type="dataset")
    siblings = hf.dataset_info(REPO).siblings or []
    assert {s.rfilename for s in siblings} == {
        "training/train_data.jsonl",
        "validation/val_data.jsonl",
    }

    path = hf_hub_download(
        REPO,
        "training/train_data.jsonl",
        repo_type="dataset",
        endpoint=nmp_emulator.hf_endpoint,
        token=HF_TOKEN,
        cache_dir=tmp_path / "cache",
    )
    assert Path(path).read_bytes() == train
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(
            REPO,
            "missing.jsonl",
            repo_type="dataset",
            endpoint=nmp_emulator.hf_endpoint,
            token=HF_TOKEN,
            cache_dir=tmp_path / "cache",
        )

    assert nmp_emulator.read_file(REPO, "training/train_data.jsonl") == train
    assert nmp_emulator.uploaded_files(REPO) == [
        (REPO, "training/train_data.jsonl", len(train)),
        (REPO, "validation/val_data.jsonl", 8),
    ]
    assert all(value == f"Bearer {HF_TOKEN}" for _, value in nmp_emulator.authorizations("/v1/hf"))


def test_upload_folder_and_delete_operations(
    hf: HfApi, nmp_emulator: NMPEmulator, tmp_path: Path
) -> None:
    folder = tmp_path / "dataset"
    (folder / "training").mkdir(parents=True)
    (folder / "training" / "train_data.jsonl").write_text('{"a": 1}\n{"a": 2}')
    (folder / "eval_data.jsonl").write_text('{"b": 1}')
    hf.create_repo("dfw/folder", repo_type="dataset")
    hf.upload_folder(folder_path=folder, repo_id="dfw/folder", repo_type="dataset")
    files = nmp_emulator.files("dfw/folder")
    assert files == {
        "training/train_data.jsonl": b'{"a": 1}\n{"a": 2}',
        "eval_data.jsonl": b'{"b": 1}',
    }

    # an unchanged file is skipped by the client (the preupload answer carries its oid)
    hf.upload_file(
        path_or_fileobj=b'{"b": 1}',
        path_in_repo="eval_data.jsonl",
        repo_id="dfw/folder",
        repo_type="dataset",
    )
    assert len(nmp_emulator.uploaded_files("dfw/folder")) == 2

    hf.create_commit(
        "dfw/folder",
        [CommitOperationDelete("training/")],
        commit_message="drop training",
        repo_type="dataset",
    )
    assert set(nmp_emulator.files("dfw/folder")) == {"eval_data.jsonl"}


def test_delete_repo(hf: HfApi, nmp_emulator: NMPEmulator) -> None:
    hf.create_repo(REPO, repo_type="dataset")
    hf.delete_repo(REPO, repo_type="dataset")
    assert nmp_emulator.repos() == []
    with pytest.raises(RepositoryNotFoundError):
        hf.delete_repo(REPO, repo_type="dataset")
    hf.delete_repo(REPO, repo_type="dataset", missing_ok=True)
    with pytest.raises(RepositoryNotFoundError):
        hf.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id=REPO, repo_type="dataset")

    # the blueprint's raw delete call (spec 3.6)
    hf.create_repo(REPO, repo_type="dataset")
    response = httpx.request(
        "DELETE",
        f"{nmp_emulator.hf_endpoint}/api/repos/delete",
        json={"name": REPO.split("/")[1], "organization": "dfw", "type": "dataset"},
    )
    assert response.status_code == 200
    assert nmp_emulator.repos() == []


def test_token_required_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    allow_hf_hub(monkeypatch)
    emulator = start_emulator(datastore_token="secret")
    try:
        with pytest.raises(HfHubHTTPError) as denied:
            HfApi(endpoint=emulator.hf_endpoint, token="wrong").create_repo(
                "dfw/x", repo_type="dataset"
            )
        assert denied.value.response.status_code == 401
        HfApi(endpoint=emulator.hf_endpoint, token="secret").create_repo(
            "dfw/x", repo_type="dataset"
        )
        assert emulator.repos() == ["dfw/x"]
    finally:
        emulator.stop()
