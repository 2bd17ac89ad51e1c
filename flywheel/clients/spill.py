"""Raw log lines parked on local disk while a run is curated, read back by position.

Curation keeps every surviving record's training line in memory; the full raw record is needed
again only for the few that become eval records or few-shot examples, so it waits here instead
(an anonymous temporary file, gone when closed or when the process ends).
"""

from __future__ import annotations

import os
import tempfile
from array import array
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson


class SpillFile:
    """An append-only list of JSON records backed by a temporary file."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by close()
        self._offsets = array("q")
        self._sizes = array("q")
        self._end = 0
        self._dirty = False

    def append(self, raw: bytes | str | dict[str, Any], /) -> None:
        """Store one record: JSON text, or a parsed record (serialised)."""
        if isinstance(raw, str):
            data = raw.encode("utf-8", "surrogatepass")
        elif isinstance(raw, dict):
            data = orjson.dumps(raw)
        else:
            data = raw
        self._file.write(data)
        self._offsets.append(self._end)
        self._sizes.append(len(data))
        self._end += len(data)
        self._dirty = True

    def __getitem__(self, index: int, /) -> bytes:
        if self._dirty:
            self._file.flush()
            self._dirty = False
        return os.pread(self._file.fileno(), self._sizes[index], self._offsets[index])

    def __len__(self) -> int:
        return len(self._offsets)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
