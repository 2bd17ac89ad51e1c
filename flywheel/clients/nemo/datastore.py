"""Datasets on NMP: files in the Data Store (its Hugging Face API), registered in the Entity Store.

Publishing is idempotent. A dataset whose Entity Store entry already carries the fingerprint of
the same files is left alone; otherwise the repo is created if missing (``exist_ok``), only
files whose content differs are committed (compared by git blob id, or sha256 for LFS files), and
the entry is created or updated. Concurrent publishers of one worker wait on a lock; those on
other workers meet a 409 and look the dataset up instead.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flywheel.clients.nemo.connection import PAGE_SIZE, NemoConnection
from flywheel.clients.nemo.errors import is_status
from flywheel.errors import RemoteCallError

__all__ = ["DataStore", "DatasetFile", "files_url"]

log = logging.getLogger(__name__)

FINGERPRINT_FIELD = "flywheel_sha256"
"""``custom_fields`` key holding the sha256 over a dataset's file paths and contents."""


@dataclass(frozen=True)
class DatasetFile:
    """One file of a dataset repo: its path in the repo and its bytes."""

    path: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_oid(self) -> str:
        """The git blob id the Hugging Face API reports for this content."""
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


def files_url(namespace: str, name: str) -> str:
    """The ``hf://`` URL of a dataset repo, as NMP services read it."""
    return f"hf://datasets/{namespace}/{name}"


def fingerprint(files: Sequence[DatasetFile]) -> str:
    """A sha256 over every file's path and content (order-independent)."""
    digest = hashlib.sha256()
    for file in sorted(files, key=lambda f: f.path):
        digest.update(f"{file.path}\0{file.sha256}\n".encode())
    return digest.hexdigest()


class DataStore:
    """Publish, find and delete datasets (Data Store repo + Entity Store entry)."""

    def __init__(self, conn: NemoConnection) -> None:
        self.conn = conn

    async def publish(
        self,
        name: str,
        files: Sequence[DatasetFile],
        *,
        custom_fields: Mapping[str, str],
        description: str,
    ) -> str:
        """Make dataset ``name`` hold exactly ``files`` (create, complete or leave it); its URL."""
        conn, ns = self.conn, self.conn.namespace
        url = files_url(ns, name)
        expected = fingerprint(files)
        fields = {**custom_fields, FINGERPRINT_FIELD: expected}
        async with conn.lock(f"dataset:{name}"):
            entry = await self._entry(name)
            if entry is not None and _published(entry, url, expected):
                return url
            await conn.ensure_datastore_namespace()
            repo_id = f"{ns}/{name}"
            await conn.call_sync(
                f"Data Store repo create ({repo_id})",
                lambda: conn.hf.create_repo(repo_id, repo_type="dataset", exist_ok=True),
            )
            remote = await self._remote_files(repo_id)
            changed = [f for f in files if not _same_content(remote.get(f.path), f)]
            if changed:
                await conn.call_sync(
                    f"Data Store upload ({repo_id})", lambda: self._commit(repo_id, changed)
                )
                log.info("dataset %s: uploaded %s", repo_id, ", ".join(f.path for f in changed))
            await self._register(name, url, fields, description, entry)
        return url

    async def delete(self, name: str) -> list[str]:
        """Delete the repo and the Entity Store entry of ``name``; what was deleted (idempotent)."""
        conn, ns = self.conn, self.conn.namespace
        repo_id = f"{ns}/{name}"
        done = []
        try:
            await conn.call_sync(
                f"Data Store repo delete ({repo_id})",
                lambda: conn.hf.delete_repo(repo_id, repo_type="dataset"),
            )
            done.append(f"deleted Data Store repo datasets/{repo_id}")
        except RemoteCallError as exc:
            if not is_status(exc, 404):
                raise
        if await conn.delete(
            f"Entity Store dataset delete ({repo_id})",
            lambda: conn.sdk.datasets.delete(name, namespace=ns),
        ):
            done.append(f"deleted Entity Store dataset {repo_id}")
        return done

    async def names_containing(self, text: str) -> list[str]:
        """Names of the Entity Store datasets in the namespace whose name contains ``text``."""
        conn = self.conn
        found = await conn.all_pages(
            "Entity Store dataset list",
            lambda: conn.sdk.datasets.list(
                filter={"namespace": conn.namespace},
                search={"name": text},
                page_size=PAGE_SIZE,
            ),
        )
        return [d.name for d in found if d.name and text in d.name]

    # --- steps ---

    async def _entry(self, name: str) -> Any:
        conn = self.conn
        return await conn.find(
            f"Entity Store dataset lookup ({conn.namespace}/{name})",
            lambda: conn.sdk.datasets.retrieve(name, namespace=conn.namespace),
        )

    async def _remote_files(self, repo_id: str) -> dict[str, Any]:
        from huggingface_hub.hf_api import RepoFile

        try:
            entries = await self.conn.call_sync(
                f"Data Store file list ({repo_id})",
                lambda: list(
                    self.conn.hf.list_repo_tree(repo_id, repo_type="dataset", recursive=True)
                ),
            )
        except RemoteCallError as exc:
            if not is_status(exc, 404, 405, 501):
                raise
            log.info("Data Store %s: cannot list files (%s); uploading all", repo_id, exc)
            return {}  # a Data Store without the tree API: upload every file (same content)
        return {e.path: e for e in entries if isinstance(e, RepoFile)}

    def _commit(self, repo_id: str, files: Sequence[DatasetFile]) -> None:
        from huggingface_hub import CommitOperationAdd

        operations = [
            CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.data) for f in files
        ]
        self.conn.hf.create_commit(
            repo_id,
            operations,
            commit_message=f"flywheel: {', '.join(f.path for f in files)}",
            repo_type="dataset",
        )

    async def _register(
        self, name: str, url: str, fields: dict[str, str], description: str, entry: Any
    ) -> None:
        conn, ns = self.conn, self.conn.namespace
        what = f"Entity Store dataset register ({ns}/{name})"
        if entry is None:
            entry, created = await conn.ensure(
                what,
                lambda: self._entry(name),
                lambda: conn.sdk.datasets.create(
                    name=name,
                    namespace=ns,
                    files_url=url,
                    description=description,
                    custom_fields=dict(fields),
                ),
            )
            if created:
                return
        if not _published(entry, url, fields[FINGERPRINT_FIELD]):
            await conn.call(
                what,
                lambda: conn.sdk.datasets.update(
                    name, namespace=ns, files_url=url, custom_fields=dict(fields)
                ),
            )


def _published(entry: Any, url: str, expected: str) -> bool:
    custom = getattr(entry, "custom_fields", None) or {}
    return getattr(entry, "files_url", None) == url and custom.get(FINGERPRINT_FIELD) == expected


def _same_content(remote: Any, file: DatasetFile) -> bool:
    if remote is None:
        return False
    lfs = getattr(remote, "lfs", None)
    if lfs is not None and getattr(lfs, "sha256", None):
        return bool(lfs.sha256 == file.sha256)
    return bool(getattr(remote, "blob_id", None) == file.git_oid)
