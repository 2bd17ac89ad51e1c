"""Raw log lines parked on local disk while a run is curated, read back by position.

Curation keeps every surviving record's training line in memory; the full raw record is needed
again only for the few that become eval records or few-shot examples, so it waits here instead
(an anonymous temporary file, gone when closed or when the process ends). Appends are gathered
and written by a background thread, so disk writes overlap the caller's work.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson

_FLUSH_BYTES = 4 << 20
"""Gathered bytes handed to the writer thread at a time."""


class SpillFile:
    """An append-only list of JSON records backed by a temporary file."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory, buffering=0)  # noqa: SIM115
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="spill")
        self._offsets = array("q")
        self._sizes = array("q")
        self._end = 0
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._writes: list[Future[Any]] = []

    def append(self, raw: bytes | str | dict[str, Any], /) -> None:
        """Store one record: JSON text, or a parsed record (serialised)."""
        if isinstance(raw, str):
            data = raw.encode("utf-8", "surrogatepass")
        elif isinstance(raw, dict):
            data = orjson.dumps(raw)
        else:
            data = raw
        self._offsets.append(self._end)
        self._sizes.append(len(data))
        self._end += len(data)
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= _FLUSH_BYTES:
            self._hand_over()

    def __getitem__(self, index: int, /) -> bytes:
        self.flush()
        return os.pread(self._file.fileno(), self._sizes[index], self._offsets[index])

    def __len__(self) -> int:
        return len(self._offsets)

    def flush(self) -> None:
        """Wait until everything appended so far is on file (raises a failed write's error)."""
        self._hand_over()
        writes, self._writes = self._writes, []
        for write in writes:
            write.result()

    def close(self) -> None:
        self._writer.shutdown(wait=True, cancel_futures=True)
        self._file.close()

    def _hand_over(self) -> None:
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            self._buffered = 0
            self._writes.append(self._writer.submit(self._write_all, data))

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._file.fileno(), view) :]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
