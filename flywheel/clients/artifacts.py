"""The artifact store: datasets, checkpoints and adapters under one fsspec URI.

``file:///…`` is the embedded default; any fsspec URI (``s3://bucket/prefix``, ``memory://…``)
works when its fsspec implementation is installed. Paths given to the methods are relative to
the store's root and always use ``/``. Datasets are content-addressed: the same lines give the
same file, so a retried activity rewrites nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import fsspec
import orjson

from flywheel.errors import ConfigError, FlywheelError
from flywheel.schemas import DatasetFormat, DatasetRef

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_WRITE_CHUNK = 1 << 20
"""Bytes of JSONL gathered before each write while streaming a dataset."""


def safe_path_part(value: str) -> str:
    """``value`` made safe as one path segment (run ids may hold ':' or '/')."""
    cleaned = _UNSAFE.sub("_", value).strip("._")
    return cleaned or "_"


def dumps_line(record: Any) -> bytes:
    """One JSONL line (no trailing newline), serialised the same way everywhere."""
    return orjson.dumps(record)


class ArtifactStore:
    """Read and write files under a root URI. Blocking fsspec calls run in a thread."""

    def __init__(self, uri: str) -> None:
        try:
            fs, root = fsspec.core.url_to_fs(uri)
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"invalid artifact_store_uri {uri!r}: {exc}") from None
        self.uri = uri.rstrip("/")
        self._fs = fs
        self._root = root.rstrip("/")
        self._protocol = uri.split("://", 1)[0] if "://" in uri else "file"

    # --- paths ---

    def _full(self, path: str) -> str:
        path = path.strip("/")
        if ".." in path.split("/"):
            raise FlywheelError(f"artifact path may not contain '..': {path}")
        return f"{self._root}/{path}" if path else self._root

    def uri_for(self, path: str) -> str:
        """The full URI of ``path`` (what DatasetRef.uri holds)."""
        return f"{self.uri}/{path.strip('/')}"

    def relative(self, uri_or_path: str) -> str:
        """Accept a URI under this store or a relative path; return the relative path."""
        if "://" in uri_or_path:
            if not uri_or_path.startswith(self.uri + "/"):
                raise FlywheelError(
                    f"{uri_or_path} is not in the artifact store {self.uri}: the worker and the "
                    "run must use the same artifact_store_uri"
                )
            return uri_or_path[len(self.uri) + 1 :]
        return uri_or_path.strip("/")

    # --- bytes ---

    async def write_bytes(self, path: str, data: bytes) -> str:
        """Write ``data`` to ``path`` (atomically where the filesystem allows); return its URI."""
        full = self._full(path)
        await asyncio.to_thread(self._write_sync, full, data)
        return self.uri_for(path)

    def _write_sync(self, full: str, data: bytes) -> None:
        parent = full.rsplit("/", 1)[0]
        self._fs.makedirs(parent, exist_ok=True)
        if self._protocol == "file":
            tmp = f"{full}.tmp"
            with self._fs.open(tmp, "wb") as fh:
                fh.write(data)
            self._fs.mv(tmp, full)
        else:
            with self._fs.open(full, "wb") as fh:
                fh.write(data)

    async def read_bytes(self, uri_or_path: str) -> bytes:
        full = self._full(self.relative(uri_or_path))
        try:
            return await asyncio.to_thread(self._fs.cat_file, full)
        except FileNotFoundError:
            raise FlywheelError(
                f"artifact not found: {self.uri_for(self.relative(uri_or_path))}"
            ) from None

    async def exists(self, uri_or_path: str) -> bool:
        return await asyncio.to_thread(self._fs.exists, self._full(self.relative(uri_or_path)))

    async def list(self, prefix: str) -> list[str]:
        """Relative paths of the files under ``prefix``, sorted."""
        full = self._full(prefix)
        if not await asyncio.to_thread(self._fs.exists, full):
            return []
        found = await asyncio.to_thread(self._fs.find, full)
        root = self._root + "/"
        return sorted(
            p[len(root) :] if p.startswith(root) else p for p in found if not p.endswith(".tmp")
        )

    async def delete_prefix(self, prefix: str) -> None:
        full = self._full(prefix)
        if await asyncio.to_thread(self._fs.exists, full):
            await asyncio.to_thread(self._fs.rm, full, recursive=True)

    # --- directories (adapters, training checkpoints) ---

    async def put_directory(self, local_dir: Path, prefix: str) -> str:
        """Copy the files under ``local_dir`` to ``prefix`` (replacing what was there); its URI.

        Files are written first to ``<prefix>.tmp`` and then moved into place on stores that
        rename (local files), so a reader never sees half a directory there.
        """
        return await asyncio.to_thread(self.put_directory_sync, Path(local_dir), prefix)

    def put_directory_sync(self, local_dir: Path, prefix: str) -> str:
        """:meth:`put_directory` for a worker thread."""
        if not local_dir.is_dir():
            raise FlywheelError(f"cannot upload {local_dir}: not a directory")
        target = self._full(prefix)
        staging = f"{target}.tmp" if self._protocol == "file" else target
        if self._fs.exists(staging):
            self._fs.rm(staging, recursive=True)
        for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            relative = path.relative_to(local_dir).as_posix()
            destination = f"{staging}/{relative}"
            self._fs.makedirs(destination.rsplit("/", 1)[0], exist_ok=True)
            self._fs.put_file(str(path), destination)
        if staging != target:
            if self._fs.exists(target):
                self._fs.rm(target, recursive=True)
            self._fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self._fs.mv(staging, target, recursive=True)
        return self.uri_for(prefix)

    async def get_directory(self, uri_or_path: str, local_dir: Path) -> Path:
        """Copy the files under ``uri_or_path`` into ``local_dir`` (created); return it."""
        return await asyncio.to_thread(self._get_directory_sync, uri_or_path, Path(local_dir))

    def _get_directory_sync(self, uri_or_path: str, local_dir: Path) -> Path:
        source = self._full(self.relative(uri_or_path))
        if not self._fs.isdir(source):
            where = self.uri_for(self.relative(uri_or_path))
            raise FlywheelError(f"artifact directory not found: {where}")
        local_dir.mkdir(parents=True, exist_ok=True)
        root = source.rstrip("/") + "/"
        for path in self._fs.find(source):
            relative = path[len(root) :] if path.startswith(root) else path.rsplit("/", 1)[-1]
            destination = local_dir / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            self._fs.get_file(path, str(destination))
        return local_dir

    # --- JSONL datasets ---

    async def put_jsonl(self, records: Iterable[Any], fmt: DatasetFormat) -> DatasetRef:
        """Write ``records`` as JSONL under ``datasets/<sha256>.jsonl``; return its reference."""
        return await asyncio.to_thread(self.put_jsonl_sync, records, fmt)

    def put_jsonl_sync(self, records: Iterable[Any], fmt: DatasetFormat) -> DatasetRef:
        """:meth:`put_jsonl` for a worker thread: streams ``records`` (any iterable, consumed
        once) to a temporary file while hashing, then moves it to its content address."""
        with self.jsonl_writer(fmt) as writer:
            buffer: list[bytes] = []
            size = 0
            for record in records:
                line = dumps_line(record) + b"\n"
                buffer.append(line)
                size += len(line)
                if size >= _WRITE_CHUNK:
                    writer.write(b"".join(buffer), len(buffer))
                    buffer.clear()
                    size = 0
            writer.write(b"".join(buffer), len(buffer))
        assert writer.ref is not None
        return writer.ref

    def jsonl_writer(self, fmt: DatasetFormat) -> JsonlWriter:
        """A writer for a dataset given as ready JSONL chunks (blocking; use from a thread)."""
        return JsonlWriter(self, fmt)

    async def read_jsonl(self, uri_or_path: str) -> list[Any]:
        """All records of a JSONL file (datasets are bounded by the run's ``limit``)."""
        data = await self.read_bytes(uri_or_path)
        return [orjson.loads(line) for line in data.splitlines() if line.strip()]

    async def read_dataset(self, ref: DatasetRef) -> list[Any]:
        """The records of ``ref``, checked against its sha256."""
        data = await self.read_bytes(ref.uri)
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise FlywheelError(f"dataset {ref.uri} does not match its sha256: it was modified")
        return [orjson.loads(line) for line in data.splitlines() if line.strip()]

    async def iter_jsonl_files(self, prefix: str) -> AsyncIterator[tuple[str, list[Any]]]:
        """Each JSONL file under ``prefix`` (sorted) with its records."""
        for path in await self.list(prefix):
            if path.endswith(".jsonl"):
                yield path, await self.read_jsonl(path)


class JsonlWriter:
    """Writes a JSONL dataset in chunks to a temporary file, hashing as it goes; on a clean exit
    moves it to ``datasets/<format>/<sha256>.jsonl`` (``ref`` then describes it)."""

    def __init__(self, store: ArtifactStore, fmt: DatasetFormat) -> None:
        self._store = store
        self._fmt = fmt
        self._folder = f"datasets/{fmt.value}"
        self._tmp = store._full(f"{self._folder}/incoming-{uuid.uuid4().hex}.jsonl.tmp")
        self._digest = hashlib.sha256()
        self._count = 0
        self._fh: Any = None
        self.ref: DatasetRef | None = None

    def __enter__(self) -> JsonlWriter:
        fs = self._store._fs
        fs.makedirs(self._store._full(self._folder), exist_ok=True)
        self._fh = fs.open(self._tmp, "wb")
        return self

    def write(self, chunk: bytes, lines: int) -> None:
        """Append ``chunk`` (``lines`` complete lines, each ending in a newline)."""
        self._digest.update(chunk)
        self._fh.write(chunk)
        self._count += lines

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        fs = self._store._fs
        self._fh.close()
        if exc_type is not None:
            if fs.exists(self._tmp):
                fs.rm(self._tmp)
            return
        digest = self._digest.hexdigest()
        path = f"{self._folder}/{digest}.jsonl"
        full = self._store._full(path)
        if fs.exists(full):
            fs.rm(self._tmp)
        else:
            fs.mv(self._tmp, full)
        self.ref = DatasetRef(
            uri=self._store.uri_for(path), sha256=digest, n_records=self._count, format=self._fmt
        )
