"""The per-record work of curation as pure, picklable functions over batches.

:class:`~flywheel.curation.pipeline.Curator` needs, for every logged call, a verdict and a few
facts (label, dedup digest, normalised-input key, MinHash signature) and its training line, all
computed from one parse. The work is independent per record, so a caller may run
:func:`scan_batch` in other processes; the results are the same wherever it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from flywheel.curation.dedup import dedup_digest
from flywheel.curation.formats import to_training_line
from flywheel.curation.near_dup import MinHasher, input_text, normalised_key
from flywheel.curation.pii import Redactor
from flywheel.curation.records import has_tool_calls, tool_name
from flywheel.curation.validation import check_record
from flywheel.schemas import WorkloadType

INVALID_JSON = "invalid_json"
"""Drop reason: a stored line that is not a JSON object (the store was written by another app)."""

RawRecord = bytes | str | dict[str, Any]
"""A logged call as stored (JSON text) or already parsed."""


@dataclass(frozen=True)
class ScanSettings:
    """What :func:`scan_batch` checks and computes."""

    parse_function_arguments: bool = True
    max_tool_properties: int | None = 8
    signatures: bool = False
    """Compute MinHash signatures (only when near-duplicate removal is on)."""
    input_keys: bool = False
    """Compute normalised-input keys (for the eval-leakage guard)."""
    lines: bool = False
    """Serialise each kept record's training line."""


@dataclass
class Scanned:
    """What pass one learns about a batch of records, column by column (cheap to pickle)."""

    reasons: list[str | None] = field(default_factory=list)
    """Why validation drops each record, or None."""
    raw_calls_tool: bytearray = field(default_factory=bytearray)
    """1 where the unvalidated answer calls a tool: the workload is tool-calling."""
    calls_tool: bytearray = field(default_factory=bytearray)
    """1 where the validated answer calls a tool."""
    labels: list[str] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    """Digests of the exact-dedup keys; None for a record that can't be keyed (never merged)."""
    signatures: list[np.ndarray | None] = field(default_factory=list)
    input_keys: list[bytes | None] = field(default_factory=list)
    lines: list[bytes | None] = field(default_factory=list)
    """Training lines (JSON); None where the form depends on the workload type, still unknown."""
    records: list[dict[str, Any] | None] = field(default_factory=list)
    """The validated records, kept only for input that was already parsed."""

    def __len__(self) -> int:
        return len(self.reasons)

    def add(
        self,
        reason: str | None,
        *,
        raw_calls_tool: bool = False,
        calls_tool: bool = False,
        label: str = "",
        key: bytes | None = None,
        signature: np.ndarray | None = None,
        input_key: bytes | None = None,
        line: bytes | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        self.reasons.append(reason)
        self.raw_calls_tool.append(raw_calls_tool)
        self.calls_tool.append(calls_tool)
        self.labels.append(label)
        self.keys.append(key)
        self.signatures.append(signature)
        self.input_keys.append(input_key)
        self.lines.append(line)
        self.records.append(record)


def scan_batch(
    batch: Sequence[RawRecord], settings: ScanSettings, tool_calling: bool = False
) -> Scanned:
    """Parse, validate and fingerprint every record of ``batch`` (same order).

    ``tool_calling``: the workload is already known to be tool-calling (this decides the form
    of training lines for plain answers that were offered tools).
    """
    hasher = MinHasher() if settings.signatures else None
    results = Scanned()
    for raw in batch:
        record = parse(raw)
        if record is None:
            results.add(INVALID_JSON)
            continue
        raw_calls_tool = has_tool_calls(record)
        checked, reason = check_record(
            record,
            parse_function_arguments=settings.parse_function_arguments,
            max_tool_properties=settings.max_tool_properties,
        )
        if checked is None:
            results.add(reason, raw_calls_tool=raw_calls_tool)
            continue
        results.add(
            None,
            raw_calls_tool=raw_calls_tool,
            calls_tool=has_tool_calls(checked),
            label=tool_name(checked),
            key=dedup_digest(checked),
            signature=hasher.signature(input_text(checked)) if hasher else None,
            input_key=normalised_key(checked) if settings.input_keys else None,
            line=line_bytes(checked, tool_calling) if settings.lines else None,
            record=checked if isinstance(raw, dict) else None,
        )
    return results


def line_bytes(record: dict[str, Any], tool_calling: bool) -> bytes | None:
    """The record's training line as JSON, or None while its form is undecided.

    A tool call decides the workload (tool-calling); without one the two forms differ only if
    the request offered tools, which the tool-calling form copies into the line.
    """
    request = record.get("request")
    undecided = not (tool_calling or has_tool_calls(record))
    if undecided and isinstance(request, dict) and request.get("tools") is not None:
        return None
    line = to_training_line(record, WorkloadType.TOOL_CALLING)
    return orjson.dumps(line) if line is not None else None


def parse(raw: RawRecord) -> dict[str, Any] | None:
    """A record as a dict, or None when the text is not a JSON object."""
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def redact_line(line: bytes, redactor: Redactor) -> bytes:
    """A training line with personal data replaced in its messages."""
    data = orjson.loads(line)
    messages = data.get("messages")
    if isinstance(messages, list):
        redacted = redactor.redact_messages(messages)
        if redacted is not messages:
            return orjson.dumps({**data, "messages": redacted})
    return line
