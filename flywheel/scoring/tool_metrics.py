"""Per-tool precision, recall and F1 of a candidate's tool calls over a whole evaluation.

Two views of the same pairs (production message, candidate message):

* **first call**: each reply gets one class label, the name of its first tool call or
  ``"no_tool"`` (the blueprint's class label, §3.1), and the labels are scored as single-label
  classification; a confusion matrix comes with it.
* **all calls**: the function names of all calls of a reply are a multiset; per name, the calls
  both sides share are true positives, extra predicted calls false positives, missing ones false
  negatives.

Everything is plain ints, floats and None (None where a ratio is undefined, e.g. precision of a
label that was never predicted), so :meth:`ToolReport.to_json` is ready for JSON.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flywheel.scoring.tool_calls import extract_call_names

__all__ = [
    "MALFORMED_TOOL",
    "NO_TOOL",
    "NO_TOOL_ACCURACY",
    "TOOL_LABEL_ACCURACY",
    "TOOL_MACRO_F1",
    "UNEXPECTED_TOOL_RATE",
    "LabelReport",
    "LabelScore",
    "ToolReport",
    "reply_label",
    "tool_confusion",
]

NO_TOOL = "no_tool"
"""Label of a reply that calls no tool (same value as the curation class label)."""
MALFORMED_TOOL = "<malformed>"
"""Label of a call without a usable function name; never a valid function name, never no_tool."""

TOOL_LABEL_ACCURACY = "tool_label_accuracy"
TOOL_MACRO_F1 = "tool_macro_f1"
NO_TOOL_ACCURACY = "no_tool_accuracy"
UNEXPECTED_TOOL_RATE = "unexpected_tool_rate"

Message = Mapping[str, Any] | None


@dataclass(frozen=True)
class LabelScore:
    """Counts and ratios of one label (a tool name, ``no_tool`` or ``<malformed>``).

    ``support``: expected occurrences; ``predicted``: predicted occurrences; ``true_positives``:
    occurrences on both sides. ``precision`` is None when the label was never predicted,
    ``recall`` when it was never expected, ``f1`` when neither (it is 0.0 when only one is).
    """

    support: int
    predicted: int
    true_positives: int
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class LabelReport:
    """Per-label scores (labels sorted) with macro and micro averages.

    Macro averages are the plain mean over the labels whose value is defined: a label never
    predicted counts in macro recall and F1 (as 0) but not in macro precision, a label predicted
    but never expected in macro precision and F1 but not in macro recall. Micro averages pool the
    counts of all labels. Every average is None when there is nothing to average.
    """

    labels: dict[str, LabelScore]
    macro_precision: float | None
    macro_recall: float | None
    macro_f1: float | None
    micro_precision: float | None
    micro_recall: float | None
    micro_f1: float | None


@dataclass(frozen=True)
class ToolReport:
    """Tool-call scores of one candidate over one evaluation (see the module docstring).

    ``label_accuracy``: share of records whose first-call labels agree. ``confusion``: expected
    label → predicted label → records. ``no_tool_accuracy``: among records where production
    called no tool, the share where the candidate called none either; ``unexpected_tool_rate``:
    among the same records, the share where the candidate called a tool (malformed calls
    included), so the two add up to 1. ``missed_tool_rate``: among records where production
    called a tool, the share where the candidate called none. Rates are None without such records.
    """

    records: int
    label_accuracy: float | None
    first_call: LabelReport
    all_calls: LabelReport
    confusion: dict[str, dict[str, int]]
    no_tool_accuracy: float | None
    unexpected_tool_rate: float | None
    missed_tool_rate: float | None

    def to_json(self) -> dict[str, Any]:
        """The report as nested dicts of str, int, float and None."""
        return dataclasses.asdict(self)

    def metrics(self) -> dict[str, float]:
        """The defined headline numbers, flat, for an evaluation's ``metrics`` dict."""
        values = {
            TOOL_LABEL_ACCURACY: self.label_accuracy,
            TOOL_MACRO_F1: self.first_call.macro_f1,
            NO_TOOL_ACCURACY: self.no_tool_accuracy,
            UNEXPECTED_TOOL_RATE: self.unexpected_tool_rate,
        }
        return {name: value for name, value in values.items() if value is not None}


def reply_label(message: Message) -> str:
    """Class label of a message: its first call's function name, ``no_tool``, or ``<malformed>``."""
    names = extract_call_names(message)
    if not names:
        return NO_TOOL
    return names[0] or MALFORMED_TOOL


class ToolConfusion:
    """Accumulates ``(expected, predicted)`` message pairs one at a time (in any order: the
    report depends only on which pairs were added), so replies can be scored as they arrive."""

    def __init__(self) -> None:
        self._first_expected: Counter[str] = Counter()
        self._first_predicted: Counter[str] = Counter()
        self._first_hits: Counter[str] = Counter()
        self._all_expected: Counter[str] = Counter()
        self._all_predicted: Counter[str] = Counter()
        self._all_hits: Counter[str] = Counter()
        self._confusion: dict[str, Counter[str]] = {}
        self._records = self._no_tool_records = self._no_tool_kept = 0
        self._tool_records = self._tool_missed = 0

    def add(self, expected: Message, predicted: Message) -> None:
        """Count one pair."""
        self._records += 1
        want, got = _names(expected), _names(predicted)
        want_label = want[0] if want else NO_TOOL
        got_label = got[0] if got else NO_TOOL
        self._first_expected[want_label] += 1
        self._first_predicted[got_label] += 1
        self._first_hits[want_label] += want_label == got_label
        self._confusion.setdefault(want_label, Counter())[got_label] += 1
        want_bag, got_bag = Counter(want), Counter(got)
        self._all_expected.update(want_bag)
        self._all_predicted.update(got_bag)
        self._all_hits.update(want_bag & got_bag)
        if want:
            self._tool_records += 1
            self._tool_missed += not got
        else:
            self._no_tool_records += 1
            self._no_tool_kept += not got

    def report(self) -> ToolReport:
        """Per-tool P/R/F1, confusion and rates over the pairs added so far."""
        records, no_tool_records = self._records, self._no_tool_records
        return ToolReport(
            records=records,
            label_accuracy=_ratio(self._first_hits.total(), records),
            first_call=_label_report(self._first_expected, self._first_predicted, self._first_hits),
            all_calls=_label_report(self._all_expected, self._all_predicted, self._all_hits),
            confusion={
                want: dict(sorted(row.items())) for want, row in sorted(self._confusion.items())
            },
            no_tool_accuracy=_ratio(self._no_tool_kept, no_tool_records),
            unexpected_tool_rate=_ratio(no_tool_records - self._no_tool_kept, no_tool_records),
            missed_tool_rate=_ratio(self._tool_missed, self._tool_records),
        )


def tool_confusion(pairs: Iterable[tuple[Message, Message]]) -> ToolReport:
    """Score ``(expected, predicted)`` message pairs: per-tool P/R/F1, confusion and rates."""
    confusion = ToolConfusion()
    for expected, predicted in pairs:
        confusion.add(expected, predicted)
    return confusion.report()


def _names(message: Message) -> list[str]:
    """Function names of a message's calls, in order; a nameless call is ``<malformed>``."""
    return [name or MALFORMED_TOOL for name in extract_call_names(message)]


def _label_report(
    expected: Counter[str], predicted: Counter[str], hits: Counter[str]
) -> LabelReport:
    """Per-label scores and their macro/micro averages from three label counters."""
    labels = {
        label: _label_score(expected[label], predicted[label], hits[label])
        for label in sorted(expected.keys() | predicted.keys())
    }
    scores = labels.values()
    tp, n_pred, n_true = hits.total(), predicted.total(), expected.total()
    return LabelReport(
        labels=labels,
        macro_precision=_mean(s.precision for s in scores),
        macro_recall=_mean(s.recall for s in scores),
        macro_f1=_mean(s.f1 for s in scores),
        micro_precision=_ratio(tp, n_pred),
        micro_recall=_ratio(tp, n_true),
        micro_f1=_ratio(2 * tp, n_pred + n_true),
    )


def _label_score(support: int, predicted: int, hits: int) -> LabelScore:
    """One label's precision, recall and F1 (``2·tp / (predicted + support)``)."""
    return LabelScore(
        support=support,
        predicted=predicted,
        true_positives=hits,
        precision=_ratio(hits, predicted),
        recall=_ratio(hits, support),
        f1=_ratio(2 * hits, predicted + support),
    )


def _ratio(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator``, or None when the denominator is 0."""
    return numerator / denominator if denominator else None


def _mean(values: Iterable[float | None]) -> float | None:
    """Mean of the defined values; None when none is defined."""
    defined = [value for value in values if value is not None]
    return sum(defined) / len(defined) if defined else None
