"""Curation end to end: a workload's logged calls → eval records, train and val lines, report.

Order (blueprint-spec §3): classify → validate → dedup → minimum check → sample to ``limit`` →
split → format. The input is consumed once as a stream; only records that pass validation and
dedup are held, and no record is deep-copied. The cyclic garbage collector is paused while it
runs: curation makes no reference cycles, and collections that rescan every held record would
otherwise cost about as much as the curation itself.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flywheel.curation.dedup import Deduper
from flywheel.curation.formats import to_eval_record, to_training_line
from flywheel.curation.records import has_tool_calls
from flywheel.curation.split import sample, split_records
from flywheel.curation.validation import NO_TOOL_CALL, REASONS, check_record
from flywheel.errors import InvalidDataError
from flywheel.schemas import CurationReport, WorkloadType

DUPLICATE = "duplicate"
"""Report key: records whose conversation input repeats a newer record's."""
SAMPLED_OUT = "sampled_out"
"""Report key: valid, unique records left out to respect ``limit``."""


@dataclass(frozen=True)
class CurationOptions:
    """How to curate one run's logs (mirrors ``data_split_config`` plus validation switches)."""

    eval_size: int
    val_ratio: float
    min_total_records: int
    limit: int
    seed: int
    parse_function_arguments: bool = True
    max_tool_properties: int | None = 8
    keep_non_tool_records: bool = True


@dataclass
class Curated:
    """The datasets of a run, formatted, plus the raw splits that ICL selection draws on."""

    eval_records: list[dict[str, Any]]
    train_lines: list[dict[str, Any]]
    val_lines: list[dict[str, Any]]
    train_records: list[dict[str, Any]]
    eval_raw: list[dict[str, Any]]
    workload_type: WorkloadType
    report: CurationReport = field(repr=False)


def curate(records: Iterable[dict[str, Any]], options: CurationOptions) -> Curated:
    """Curate newest-first logged calls into datasets; raise InvalidDataError if too few remain."""
    _check_options(options)
    with _gc_paused():
        return _curate(records, options)


def _curate(records: Iterable[dict[str, Any]], options: CurationOptions) -> Curated:
    kept, dropped, total, workload_type = _filter(records, options)
    valid = len(kept)
    if valid < options.min_total_records:
        raise InvalidDataError(
            f"Found {valid} valid records but need at least {options.min_total_records} "
            f"(total {total}, dropped: {_breakdown(dropped)}); log more calls for this workload "
            "or lower data_split_config.min_total_records"
        )

    selected = sample(kept, options.limit, options.seed) if valid > options.limit else kept
    if valid > options.limit:
        dropped[SAMPLED_OUT] = valid - options.limit
    split = split_records(
        selected, eval_size=options.eval_size, val_ratio=options.val_ratio, seed=options.seed
    )

    warnings = list(split.notes)
    train_lines = _training_lines(split.train, workload_type, warnings, "train")
    val_lines = _training_lines(split.val, workload_type, warnings, "val")
    tool_counts = Counter(split.label_counts)
    if workload_type == WorkloadType.TOOL_CALLING and len(tool_counts) == 1:
        warnings.append(f"every selected record has the same label {next(iter(tool_counts))!r}")
    report = CurationReport(
        workload_type=workload_type,
        seed=options.seed,
        total_records=total,
        dropped=dropped,
        selected=len(selected),
        eval_records=len(split.eval),
        train_records=len(train_lines),
        val_records=len(val_lines),
        tool_counts=dict(tool_counts.most_common()),
        warnings=warnings,
    )
    return Curated(
        eval_records=[to_eval_record(record) for record in split.eval],
        train_lines=train_lines,
        val_lines=val_lines,
        train_records=split.train,
        eval_raw=split.eval,
        workload_type=workload_type,
        report=report,
    )


def _filter(
    records: Iterable[dict[str, Any]], options: CurationOptions
) -> tuple[list[dict[str, Any]], dict[str, int], int, WorkloadType]:
    """Classify, validate and dedup in one pass; return (kept, dropped counts, total, type).

    Until a tool call is seen the workload might still be generic, so when plain answers are
    not kept they wait in ``pending``: dropped as ``no_tool_call`` once the workload turns out
    tool-calling, deduplicated and kept if it stays generic.
    """
    counts: Counter[str] = Counter()
    deduper = Deduper()
    kept: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    tool_calling = False
    total = 0
    for raw in records:
        total += 1
        if not tool_calling and isinstance(raw, dict) and has_tool_calls(raw):
            tool_calling = True
            counts[NO_TOOL_CALL] += len(pending)
            pending.clear()
        record, reason = check_record(
            raw,
            parse_function_arguments=options.parse_function_arguments,
            max_tool_properties=options.max_tool_properties,
        )
        if record is None:
            counts[str(reason)] += 1
            continue
        is_tool = has_tool_calls(record)
        if not is_tool and not options.keep_non_tool_records:
            if tool_calling:
                counts[NO_TOOL_CALL] += 1
            else:
                pending.append(record)
            continue
        if deduper.admit(record):
            kept.append(record)
    # Still generic: no record had a tool call, so `kept` is empty and `pending` holds them all.
    kept.extend(record for record in pending if deduper.admit(record))
    counts[DUPLICATE] = deduper.removed
    workload_type = WorkloadType.TOOL_CALLING if tool_calling else WorkloadType.GENERIC
    return kept, _ordered(counts), total, workload_type


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Disable the cyclic GC for the block, re-enabling it only if this block disabled it.

    On the way out, objects made meanwhile are moved to the oldest generation (freeze then
    unfreeze, both O(1)) instead of being scanned at once by the next young collection: that
    scan of every new record costs a third of the curation time. Nothing is leaked; young
    garbage is simply left to the next full collection. Skipped if the process froze objects
    itself (unfreezing would undo that).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _check_options(options: CurationOptions) -> None:
    if options.limit < options.min_total_records:
        raise InvalidDataError(
            f"limit ({options.limit}) cannot be less than min_total_records "
            f"({options.min_total_records})"
        )


def _training_lines(
    records: list[dict[str, Any]], workload_type: WorkloadType, warnings: list[str], what: str
) -> list[dict[str, Any]]:
    lines = [to_training_line(record, workload_type) for record in records]
    usable = [line for line in lines if line is not None]
    if len(usable) < len(lines):
        warnings.append(f"{len(lines) - len(usable)} {what} records could not be formatted")
    return usable


def _ordered(counts: Counter[str]) -> dict[str, int]:
    """Non-zero counts, validation reasons first (in check order), then the rest by name."""
    rank = {reason: index for index, reason in enumerate(REASONS)}
    names = sorted(
        (name for name, count in counts.items() if count),
        key=lambda n: (rank.get(n, len(rank)), n),
    )
    return {name: counts[name] for name in names}


def _breakdown(dropped: dict[str, int]) -> str:
    return ", ".join(f"{reason}={count}" for reason, count in dropped.items()) or "none"
