"""Curation end to end, streaming: a workload's logged calls → eval, train and val records.

Order (blueprint-spec §3, its defects fixed): parse → validate → classify → dedup (exact, then
optionally near) → minimum check → sample to ``limit`` → stratified split → leakage guard →
format (→ PII redaction). It runs in two passes so memory stays bounded by the survivors'
*raw* JSON, not by parsed records: :class:`Curator` scans the logs once, keeping each survivor's
raw line and label; :class:`CurationPlan` then parses only the records it outputs, one at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson

from flywheel.curation.formats import to_eval_record, to_training_line
from flywheel.curation.near_dup import NearDuplicateIndex, normalised_key
from flywheel.curation.scan import (
    INVALID_JSON,
    RawRecord,
    Scanned,
    ScanSettings,
    parse,
    redact_line,
    scan_batch,
)
from flywheel.curation.split import sample, split_labels
from flywheel.curation.validation import NO_TOOL_CALL, REASONS, check_record
from flywheel.errors import InvalidDataError
from flywheel.schemas import CurationReport, WorkloadType

DUPLICATE = "duplicate"
"""Report key: records whose conversation input repeats a newer record's."""
NEAR_DUPLICATE = "near_duplicate"
"""Report key: records whose input is nearly the same as a newer record's (when enabled)."""
SAMPLED_OUT = "sampled_out"
"""Report key: valid, unique records left out to respect ``limit``."""
EVAL_LEAKAGE = "eval_leakage"
"""Report key: train/val records whose input (near-)duplicates an eval record's."""

_REPORT_ORDER = (INVALID_JSON, *REASONS, DUPLICATE, NEAR_DUPLICATE, SAMPLED_OUT, EVAL_LEAKAGE)

Which = Literal["train", "val"]


class Redactor(Protocol):
    """Replaces personal data in a record (see :mod:`flywheel.curation.pii`)."""

    counts: Counter[str]

    def redact_record(self, record: dict[str, Any]) -> dict[str, Any]: ...

    def redact_messages(self, messages: list[Any]) -> list[Any]: ...


class RawKeeper(Protocol):
    """Where the survivors wait for pass two: a list of raw records, or e.g. a keeper of log
    store keys that fetches the records pass two reads (it gets what :meth:`Curator.accept`
    was given per record: the record, or its key)."""

    def append(self, item: Any, /) -> None: ...

    def __getitem__(self, index: int, /) -> RawRecord: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class CurationOptions:
    """How to curate one run's logs (``data_split_config`` plus ``curation_config``)."""

    eval_size: int
    val_ratio: float
    min_total_records: int
    limit: int
    seed: int
    parse_function_arguments: bool = True
    max_tool_properties: int | None = 8
    keep_non_tool_records: bool = True
    near_duplicate_threshold: float | None = None
    leakage_guard: bool = True


class Curator:
    """Pass one: feed newest-first logged calls in batches, then :meth:`finish` into a plan.

    Holds, per surviving record, its raw line and label. Near-duplicate removal (when enabled)
    runs over every record, so no near duplicate is left to sit on both sides of the split;
    the plan's leakage guard then catches inputs equal up to case, spacing and punctuation.
    :meth:`feed` scans in this thread; a caller with other processes at hand may run
    :func:`~flywheel.curation.scan.scan_batch` there and hand the results to :meth:`accept`.
    """

    def __init__(
        self,
        options: CurationOptions,
        *,
        redactor: Redactor | None = None,
        keeper: RawKeeper | None = None,
    ) -> None:
        if options.limit < options.min_total_records:
            raise InvalidDataError(
                f"limit ({options.limit}) cannot be less than min_total_records "
                f"({options.min_total_records})"
            )
        self._options = options
        self._redactor = redactor
        self.scan_settings = ScanSettings(
            parse_function_arguments=options.parse_function_arguments,
            max_tool_properties=options.max_tool_properties,
            signatures=options.near_duplicate_threshold is not None,
            input_keys=options.leakage_guard,
            lines=True,
        )
        self._counts: Counter[str] = Counter()
        self._seen: set[bytes] = set()
        threshold = options.near_duplicate_threshold
        self._near = NearDuplicateIndex(threshold) if threshold is not None else None
        self._raw: RawKeeper = keeper if keeper is not None else []
        self._labels: list[str] = []
        self._lines: list[bytes | None] = []
        self._input_keys: list[bytes | None] = []
        # Plain answers seen before the first tool call, when those may have to be dropped.
        self._pending: list[tuple[Any, Scanned, int]] = []
        self._tool_calling = False
        self.total = 0

    @property
    def tool_calling(self) -> bool:
        """Whether a tool call has been seen yet (the workload is tool-calling)."""
        return self._tool_calling

    def feed(self, batch: Iterable[RawRecord]) -> None:
        """Scan a batch of records (in newest-first order across batches)."""
        records = list(batch)
        self.accept(records, scan_batch(records, self.scan_settings, self._tool_calling))

    def accept(
        self, batch: Sequence[RawRecord], scanned: Scanned, keys: Sequence[Any] | None = None
    ) -> None:
        """Take the :func:`scan_batch` results of ``batch``.

        ``keys``: what the keeper stores for each record instead of the record itself (e.g. its
        key in the log store).
        """
        if len(scanned) != len(batch):
            raise ValueError(f"{len(scanned)} scan results for a batch of {len(batch)}")
        if keys is not None:
            if len(keys) != len(batch):
                raise ValueError(f"{len(keys)} keys for a batch of {len(batch)}")
            batch = keys
        keep_plain = self._options.keep_non_tool_records
        reasons, calls_tool = scanned.reasons, scanned.calls_tool
        if not self._tool_calling and any(scanned.raw_calls_tool):
            first = scanned.raw_calls_tool.index(1)
        else:
            first = -1
        self.total += len(batch)
        for index, reason in enumerate(reasons):
            if index == first:
                self._tool_calling = True
                self._counts[NO_TOOL_CALL] += len(self._pending)
                self._pending.clear()
            if reason is not None:
                self._counts[reason] += 1
            elif not keep_plain and not calls_tool[index]:
                if self._tool_calling:
                    self._counts[NO_TOOL_CALL] += 1
                else:
                    self._pending.append((batch[index], scanned, index))
            else:
                self._admit(batch[index], scanned, index)

    def finish(self) -> CurationPlan:
        """Check the minimum, sample to ``limit`` and split; raise InvalidDataError if too few."""
        options = self._options
        for raw, scanned, index in self._pending:  # still generic: keep them after all
            self._admit(raw, scanned, index)
        self._pending.clear()
        valid = len(self._raw)
        if valid < options.min_total_records:
            raise InvalidDataError(
                f"Found {valid} valid records but need at least {options.min_total_records} "
                f"(total {self.total}, dropped: {_breakdown(_ordered(self._counts))}); log more "
                "calls for this workload or lower data_split_config.min_total_records"
            )
        positions = list(range(valid))
        if valid > options.limit:
            positions = sample(positions, options.limit, options.seed)
            self._counts[SAMPLED_OUT] = valid - options.limit
        split = split_labels(
            [self._labels[p] for p in positions],
            eval_size=options.eval_size,
            val_ratio=options.val_ratio,
            seed=options.seed,
        )
        return CurationPlan(
            raw=self._raw,
            labels=self._labels,
            lines=self._lines,
            input_keys=self._input_keys,
            eval_positions=[positions[i] for i in split.eval],
            train_positions=[positions[i] for i in split.train],
            val_positions=[positions[i] for i in split.val],
            workload_type=(
                WorkloadType.TOOL_CALLING if self._tool_calling else WorkloadType.GENERIC
            ),
            options=options,
            redactor=self._redactor,
            counts=self._counts,
            total=self.total,
            label_counts=split.label_counts,
            warnings=list(split.notes),
        )

    def _admit(self, item: Any, scanned: Scanned, index: int) -> None:
        key = scanned.keys[index]
        if key is not None:
            if key in self._seen:
                self._counts[DUPLICATE] += 1
                return
            self._seen.add(key)
        near, signature = self._near, scanned.signatures[index]
        if (
            near is not None
            and signature is not None
            and near.add_if_new(len(self._raw), signature) is not None
        ):
            self._counts[NEAR_DUPLICATE] += 1
            return
        # A parsed input is kept checked (normalised); raw text is re-checked when it is used.
        record = scanned.records[index]
        self._raw.append(record if record is not None else item)
        self._labels.append(scanned.labels[index])
        self._lines.append(scanned.lines[index])
        self._input_keys.append(scanned.input_keys[index])


@dataclass
class CurationPlan:
    """Pass two: which survivors form each set; parses and formats them one at a time."""

    raw: RawKeeper
    labels: list[str]
    lines: list[bytes | None]
    input_keys: list[bytes | None]
    eval_positions: list[int]
    train_positions: list[int]
    val_positions: list[int]
    workload_type: WorkloadType
    options: CurationOptions
    redactor: Redactor | None
    counts: Counter[str]
    total: int
    label_counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    leaked: set[int] = field(default_factory=set)
    """Train/val positions left out because they (near-)duplicate an eval record."""
    written: dict[str, int] = field(default_factory=dict)
    unusable: dict[str, int] = field(default_factory=dict)
    """Train/val records that could not be formatted, by set (reported as a warning)."""
    _eval_records: list[dict[str, Any]] | None = field(default=None, repr=False)
    _eval_keys: set[bytes] | None = field(default=None, repr=False)
    _leaks_found: bool = field(default=False, repr=False)

    def record(self, position: int, *, redact: bool = True, check: bool = True) -> dict[str, Any]:
        """The validated record at ``position``, PII-redacted if configured and ``redact``.

        ``check=False`` skips re-validating raw text (answer tool-call arguments may then still
        be JSON strings): for the training format, which parses them itself.
        """
        item = self.raw[position]
        if isinstance(item, dict):
            record = item
        elif not check:
            record = orjson.loads(item)
        else:
            record, _ = check_record(
                orjson.loads(item),
                parse_function_arguments=self.options.parse_function_arguments,
                max_tool_properties=self.options.max_tool_properties,
            )
            assert record is not None  # it passed the same check in pass one
        return self._redacted(record) if redact else record

    def eval_records(self) -> list[dict[str, Any]]:
        """The eval set in eval format (computed once; the eval set is small)."""
        if self._eval_records is None:
            raw = [self.record(p, redact=False) for p in self.eval_positions]
            if self.options.leakage_guard:
                self._eval_keys = {normalised_key(record) for record in raw}
            self._eval_records = [to_eval_record(self._redacted(r)) for r in raw]
            self.written["eval"] = len(self._eval_records)
        return self._eval_records

    def training_lines(self, which: Which) -> Iterator[dict[str, Any]]:
        """Train or val lines as dicts (see :meth:`training_chunks`)."""
        for data, _count in self.training_chunks(which):
            for line in data.splitlines():
                yield orjson.loads(line)

    def training_chunks(self, which: Which, size: int = 2000) -> Iterator[tuple[bytes, int]]:
        """The train or val set as JSONL chunks ``(bytes, lines)``, leaving out records that
        repeat an eval input; counts what it wrote (for :meth:`report`)."""
        leaked = self.find_leaks()
        positions = self.train_positions if which == "train" else self.val_positions
        stored_lines, redactor = self.lines, self.redactor
        written = unusable = 0
        for start in range(0, len(positions), size):
            lines: list[bytes] = []
            for position in positions[start : start + size]:
                if position in leaked:
                    continue
                line = stored_lines[position]
                if line is None:
                    line = self._line(position)
                    if line is None:
                        unusable += 1
                        continue
                if redactor is not None:
                    line = redact_line(line, redactor)
                lines.append(line)
            if lines:
                lines.append(b"")
                written += len(lines) - 1
                yield b"\n".join(lines), len(lines) - 1
        self.written[which] = written
        self.unusable[which] = unusable

    def find_leaks(self) -> set[int]:
        """The train/val positions whose input repeats an eval record's (kept in ``leaked``);
        found once, so train, val and few-shot pools can then be built in any order."""
        if self._leaks_found:
            return self.leaked
        eval_keys = self.eval_keys()
        if eval_keys:
            input_keys = self.input_keys
            for position in (*self.train_positions, *self.val_positions):
                key = input_keys[position]
                if key is None:
                    key = normalised_key(self.record(position, redact=False))
                if key in eval_keys:
                    self.leaked.add(position)
        self._leaks_found = True
        return self.leaked

    def eval_keys(self) -> frozenset[bytes]:
        """Normalised input keys of the eval records (empty when the leakage guard is off)."""
        if not self.options.leakage_guard:
            return frozenset()
        self.eval_records()
        return frozenset(self._eval_keys or ())

    def _line(self, position: int) -> bytes | None:
        """The training line of a record whose form was undecided in pass one."""
        item = self.raw[position]
        record = item if isinstance(item, dict) else parse(item)
        formatted = to_training_line(record, self.workload_type) if record else None
        return orjson.dumps(formatted) if formatted is not None else None

    def positions_needing_records(self) -> list[int]:
        """Train/val positions whose whole record writing them needs: no training line yet
        (form undecided in pass one), or no input key where the leakage guard is on."""
        guard = self.options.leakage_guard
        return [
            position
            for position in (*self.train_positions, *self.val_positions)
            if self.lines[position] is None or (guard and self.input_keys[position] is None)
        ]

    def pool_positions(self) -> list[int]:
        """Train positions usable as few-shot examples (never a record that leaks eval)."""
        leaked = self.find_leaks()
        return [p for p in self.train_positions if p not in leaked]

    def report(self, **extra: Any) -> CurationReport:
        """The curation report; call it after the sets were written, for final counts."""
        counts = Counter(self.counts)
        if self.leaked:
            counts[EVAL_LEAKAGE] = len(self.leaked)
        selected = len(self.eval_positions) + len(self.train_positions) + len(self.val_positions)
        tool_counts = Counter(self.label_counts)
        warnings = list(self.warnings)
        for which in ("train", "val"):
            if self.unusable.get(which):
                warnings.append(f"{self.unusable[which]} {which} records could not be formatted")
        if self.workload_type == WorkloadType.TOOL_CALLING and len(tool_counts) == 1:
            warnings.append(f"every selected record has the same label {next(iter(tool_counts))!r}")
        return CurationReport(
            workload_type=self.workload_type,
            seed=self.options.seed,
            total_records=self.total,
            dropped=_ordered(counts),
            selected=selected,
            eval_records=self.written.get("eval", len(self.eval_positions)),
            train_records=self.written.get("train", len(self.train_positions)),
            val_records=self.written.get("val", len(self.val_positions)),
            tool_counts=dict(tool_counts.most_common()),
            tool_splits=self._tool_splits(),
            pii_redactions=dict(sorted(self.redactor.counts.items())) if self.redactor else {},
            warnings=warnings,
            **extra,
        )

    def _tool_splits(self) -> dict[str, dict[str, int]]:
        splits: dict[str, dict[str, int]] = {}
        for which, positions in (
            ("eval", self.eval_positions),
            ("train", self.train_positions),
            ("val", self.val_positions),
        ):
            for position in positions:
                if position in self.leaked:
                    continue
                row = splits.setdefault(self.labels[position], {"eval": 0, "train": 0, "val": 0})
                row[which] += 1
        return dict(sorted(splits.items(), key=lambda item: (-sum(item[1].values()), item[0])))

    def _redacted(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.redactor.redact_record(record) if self.redactor is not None else record


@dataclass
class Curated:
    """Every dataset of a run in memory (for tests and small workloads; runs use the plan)."""

    eval_records: list[dict[str, Any]]
    train_lines: list[dict[str, Any]]
    val_lines: list[dict[str, Any]]
    train_records: list[dict[str, Any]]
    eval_raw: list[dict[str, Any]]
    workload_type: WorkloadType
    report: CurationReport = field(repr=False)


def curate(
    records: Iterable[RawRecord], options: CurationOptions, *, redactor: Redactor | None = None
) -> Curated:
    """Curate newest-first logged calls into in-memory datasets; InvalidDataError if too few."""
    curator = Curator(options, redactor=redactor)
    curator.feed(records)
    plan = curator.finish()
    eval_records = plan.eval_records()
    train_lines = list(plan.training_lines("train"))
    val_lines = list(plan.training_lines("val"))
    return Curated(
        eval_records=eval_records,
        train_lines=train_lines,
        val_lines=val_lines,
        train_records=[plan.record(p) for p in plan.pool_positions()],
        eval_raw=[plan.record(p) for p in plan.eval_positions],
        workload_type=plan.workload_type,
        report=plan.report(),
    )


def _ordered(counts: Counter[str]) -> dict[str, int]:
    """Non-zero counts in pipeline order (parse, validation reasons, dedup, sample, leakage)."""
    rank = {reason: index for index, reason in enumerate(_REPORT_ORDER)}
    names = sorted(
        (name for name, count in counts.items() if count),
        key=lambda n: (rank.get(n, len(rank)), n),
    )
    return {name: counts[name] for name in names}


def _breakdown(dropped: dict[str, int]) -> str:
    return ", ".join(f"{reason}={count}" for reason, count in dropped.items()) or "none"
