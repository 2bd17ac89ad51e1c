"""Load a JSONL file of logged LLM calls into a log store, accounting for every line.

The file is read in binary, a batch of lines at a time (in a worker thread, so the event loop
stays free); each non-blank line is either stored or reported as a :class:`Rejection`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from flywheel.clients.logstore import LogStore
from flywheel.curation.log_lines import Rejection, parse_log_line
from flywheel.errors import FlywheelError, NotFoundError
from flywheel.schemas import LogRecord

__all__ = ["LoadReport", "load_jsonl"]


@dataclass(slots=True)
class LoadReport:
    """What loading a file did: counts, and the first rejections with their line numbers."""

    accepted: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    rejections_truncated: bool = False


@dataclass(slots=True)
class _Chunk:
    records: list[LogRecord]
    rejections: list[Rejection]
    lines: int
    at_end: bool


async def load_jsonl(
    path: Path,
    store: LogStore,
    *,
    workload_id: str | None = None,
    client_id: str | None = None,
    batch_size: int = 1000,
    max_rejections_kept: int = 10_000,
) -> LoadReport:
    """Parse ``path`` line by line and store its good records in batches of ``batch_size``.

    ``workload_id``/``client_id`` override the lines' values. Every rejection is counted; the
    first ``max_rejections_kept`` are kept in the report. Batches stored before an error stay
    stored. Raises NotFoundError / FlywheelError naming the file when it cannot be read.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    report = LoadReport()
    handle = await _open(path)
    try:
        line_no = 0
        while True:
            chunk = await asyncio.to_thread(
                _read_chunk, handle, path, line_no, batch_size, workload_id, client_id
            )
            line_no += chunk.lines
            if chunk.records:
                report.accepted += await store.add(chunk.records)
            report.rejected += len(chunk.rejections)
            room = max_rejections_kept - len(report.rejections)
            if len(chunk.rejections) > room:
                report.rejections_truncated = True
            report.rejections.extend(chunk.rejections[: max(room, 0)])
            if chunk.at_end:
                return report
    finally:
        await asyncio.to_thread(handle.close)


async def _open(path: Path) -> BinaryIO:
    try:
        return await asyncio.to_thread(path.open, "rb")
    except FileNotFoundError:
        raise NotFoundError(f"log file not found: {path}") from None
    except IsADirectoryError:
        raise FlywheelError(f"{path} is a directory: name a JSONL file of log records") from None
    except OSError as exc:
        raise FlywheelError(f"cannot read log file {path}: {exc.strerror or exc}") from None


def _read_chunk(
    handle: BinaryIO,
    path: Path,
    first_line: int,
    batch_size: int,
    workload_id: str | None,
    client_id: str | None,
) -> _Chunk:
    """Read lines until ``batch_size`` records (or rejections) are held or the file ends.

    Runs in a worker thread; the rejection bound keeps memory flat on a file of bad lines.
    """
    records: list[LogRecord] = []
    rejections: list[Rejection] = []
    line_no = first_line
    while len(records) < batch_size and len(rejections) < batch_size:
        try:
            line = handle.readline()
        except OSError as exc:
            raise FlywheelError(
                f"cannot read log file {path} after line {line_no}: {exc.strerror or exc}"
            ) from None
        if not line:
            return _Chunk(records, rejections, line_no - first_line, at_end=True)
        line_no += 1
        parsed = parse_log_line(line, line_no, workload_id=workload_id, client_id=client_id)
        if isinstance(parsed, LogRecord):
            records.append(parsed)
        elif parsed is not None:
            rejections.append(parsed)
    return _Chunk(records, rejections, line_no - first_line, at_end=False)
