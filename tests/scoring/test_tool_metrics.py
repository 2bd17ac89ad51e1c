"""Per-tool precision/recall/F1, confusion and no-tool rates over an evaluation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel.scoring.tool_metrics import (
    MALFORMED_TOOL,
    NO_TOOL,
    NO_TOOL_ACCURACY,
    TOOL_LABEL_ACCURACY,
    TOOL_MACRO_F1,
    UNEXPECTED_TOOL_RATE,
    LabelScore,
    ToolConfusion,
    reply_label,
    tool_confusion,
)


def tools(*names: str | None) -> dict[str, Any]:
    """An assistant message calling ``names`` in order (None: a call without a name)."""
    calls = []
    for i, name in enumerate(names):
        function: dict[str, Any] = {"arguments": "{}"}
        if name is not None:
            function["name"] = name
        calls.append({"id": f"c{i}", "type": "function", "function": function})
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if calls:
        message["tool_calls"] = calls
    return message


def text(content: str = "plain answer") -> dict[str, Any]:
    return {"role": "assistant", "content": content}


class TestReplyLabel:
    @pytest.mark.parametrize(
        ("message", "label"),
        [
            (tools("search"), "search"),
            (tools("search", "lookup"), "search"),
            (text(), NO_TOOL),
            (None, NO_TOOL),
            ({"tool_calls": []}, NO_TOOL),
            (tools(None), MALFORMED_TOOL),
            ({"tool_calls": [{"id": "x"}]}, MALFORMED_TOOL),
            ({"function_call": {"name": "legacy", "arguments": "{}"}}, "legacy"),
        ],
    )
    def test_labels(self, message: Any, label: str) -> None:
        assert reply_label(message) == label

    def test_label_constants(self) -> None:
        assert NO_TOOL == "no_tool"
        assert MALFORMED_TOOL == "<malformed>"


class TestFirstCallLabels:
    def test_hand_computed_example(self) -> None:
        pairs = [
            (tools("search"), tools("search")),
            (tools("search"), tools("lookup")),
            (tools("lookup"), tools("lookup")),
            (text(), text()),
            (text(), tools("search")),
        ]
        report = tool_confusion(pairs)
        labels = report.first_call.labels
        assert list(labels) == ["lookup", "no_tool", "search"]
        assert labels["search"] == LabelScore(
            support=2, predicted=2, true_positives=1, precision=0.5, recall=0.5, f1=0.5
        )
        assert labels["lookup"] == LabelScore(
            support=1,
            predicted=2,
            true_positives=1,
            precision=0.5,
            recall=1.0,
            f1=pytest.approx(2 / 3),
        )
        assert labels["no_tool"] == LabelScore(
            support=2,
            predicted=1,
            true_positives=1,
            precision=1.0,
            recall=0.5,
            f1=pytest.approx(2 / 3),
        )
        assert report.records == 5
        assert report.label_accuracy == pytest.approx(3 / 5)
        assert report.first_call.macro_precision == pytest.approx(2 / 3)
        assert report.first_call.macro_recall == pytest.approx(2 / 3)
        assert report.first_call.macro_f1 == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
        assert report.first_call.micro_f1 == pytest.approx(3 / 5)
        assert report.confusion == {
            "lookup": {"lookup": 1},
            "no_tool": {"no_tool": 1, "search": 1},
            "search": {"lookup": 1, "search": 1},
        }

    def test_label_never_predicted_has_no_precision(self) -> None:
        report = tool_confusion([(tools("a"), text()), (tools("b"), tools("b"))])
        a = report.first_call.labels["a"]
        assert (a.precision, a.recall, a.f1) == (None, 0.0, 0.0)
        # macro precision averages the defined values only (no_tool: 0.0, b: 1.0)
        assert report.first_call.macro_precision == pytest.approx(0.5)
        assert report.first_call.macro_recall == pytest.approx(
            0.5
        )  # a: 0, b: 1 (no_tool undefined)

    def test_label_never_expected_has_no_recall(self) -> None:
        report = tool_confusion([(text(), tools("x"))])
        x = report.first_call.labels["x"]
        assert (x.support, x.predicted, x.precision, x.recall, x.f1) == (0, 1, 0.0, None, 0.0)

    def test_only_the_first_call_labels_a_reply(self) -> None:
        report = tool_confusion([(tools("a", "b"), tools("a", "c"))])
        assert report.label_accuracy == 1.0
        assert list(report.first_call.labels) == ["a"]

    def test_malformed_prediction_is_its_own_label(self) -> None:
        report = tool_confusion([(text(), tools(None))])
        assert report.confusion == {NO_TOOL: {MALFORMED_TOOL: 1}}
        assert report.no_tool_accuracy == 0.0
        assert report.unexpected_tool_rate == 1.0


class TestAllCalls:
    def test_multiset_counts(self) -> None:
        pairs = [
            (tools("a", "a", "b"), tools("a", "b", "b")),
            (tools("c"), text()),
            (text(), text()),
        ]
        calls = tool_confusion(pairs).all_calls
        assert calls.labels["a"] == LabelScore(2, 1, 1, 1.0, 0.5, pytest.approx(2 / 3))
        assert calls.labels["b"] == LabelScore(1, 2, 1, 0.5, 1.0, pytest.approx(2 / 3))
        assert calls.labels["c"] == LabelScore(1, 0, 0, None, 0.0, 0.0)
        assert NO_TOOL not in calls.labels
        assert calls.micro_precision == pytest.approx(2 / 3)
        assert calls.micro_recall == pytest.approx(2 / 4)
        assert calls.micro_f1 == pytest.approx(4 / 7)
        assert calls.macro_precision == pytest.approx(0.75)
        assert calls.macro_recall == pytest.approx(0.5)

    def test_call_order_does_not_matter(self) -> None:
        report = tool_confusion([(tools("a", "b"), tools("b", "a"))])
        assert report.all_calls.micro_f1 == 1.0
        assert report.label_accuracy == 0.0  # but the first call differs

    def test_no_calls_anywhere(self) -> None:
        calls = tool_confusion([(text(), text())]).all_calls
        assert calls.labels == {}
        assert (calls.macro_precision, calls.macro_recall, calls.macro_f1) == (None, None, None)
        assert (calls.micro_precision, calls.micro_recall, calls.micro_f1) == (None, None, None)


class TestNoToolRates:
    def test_rates(self) -> None:
        pairs = [
            (text(), text()),
            (text(), text()),
            (text(), tools("a")),
            (tools("a"), text()),
            (tools("a"), tools("a")),
            (tools("a"), tools("b")),
            (tools("a"), tools("a")),
        ]
        report = tool_confusion(pairs)
        assert report.no_tool_accuracy == pytest.approx(2 / 3)
        assert report.unexpected_tool_rate == pytest.approx(1 / 3)
        assert report.missed_tool_rate == pytest.approx(1 / 4)

    def test_undefined_without_such_records(self) -> None:
        report = tool_confusion([(tools("a"), tools("a"))])
        assert report.no_tool_accuracy is None
        assert report.unexpected_tool_rate is None
        assert report.missed_tool_rate == 0.0
        assert tool_confusion([(text(), text())]).missed_tool_rate is None


class TestReportOutput:
    def test_empty_evaluation(self) -> None:
        report = tool_confusion([])
        assert report.records == 0
        assert report.label_accuracy is None
        assert report.first_call.labels == {}
        assert report.confusion == {}
        assert report.metrics() == {}

    def test_to_json_round_trips_through_json(self) -> None:
        report = tool_confusion(
            [(tools("a"), tools("a")), (text(), tools("b")), (tools("c"), text())]
        )
        data = report.to_json()
        assert json.loads(json.dumps(data)) == data
        assert data["first_call"]["labels"]["a"]["f1"] == 1.0
        assert data["first_call"]["labels"]["b"]["recall"] is None
        assert set(data) == {
            "records",
            "label_accuracy",
            "first_call",
            "all_calls",
            "confusion",
            "no_tool_accuracy",
            "unexpected_tool_rate",
            "missed_tool_rate",
        }

    def test_metrics_are_flat_floats_without_undefined_values(self) -> None:
        report = tool_confusion([(tools("a"), tools("a")), (tools("b"), tools("a"))])
        metrics = report.metrics()
        assert set(metrics) == {TOOL_LABEL_ACCURACY, TOOL_MACRO_F1}
        assert metrics[TOOL_LABEL_ACCURACY] == 0.5
        assert NO_TOOL_ACCURACY not in metrics
        assert UNEXPECTED_TOOL_RATE not in metrics

    def test_accepts_a_generator(self) -> None:
        report = tool_confusion((tools(n), tools(n)) for n in "abc")
        assert report.records == 3
        assert report.label_accuracy == 1.0

    def test_report_is_frozen(self) -> None:
        report = tool_confusion([])
        with pytest.raises(AttributeError):
            report.records = 3  # type: ignore[misc]


# --- properties ------------------------------------------------------------------------------

NAMES = st.sampled_from(["search", "lookup", "book", "cancel"])
MESSAGES = st.one_of(
    st.just(text()),
    st.none(),
    st.lists(NAMES, min_size=1, max_size=4).map(lambda names: tools(*names)),
    st.just(tools(None)),
)
PAIRS = st.lists(st.tuples(MESSAGES, MESSAGES), max_size=30)


def _ratios(report: Any) -> list[float | None]:
    values = [report.label_accuracy, report.no_tool_accuracy, report.unexpected_tool_rate]
    values.append(report.missed_tool_rate)
    for view in (report.first_call, report.all_calls):
        values += [view.macro_precision, view.macro_recall, view.macro_f1]
        values += [view.micro_precision, view.micro_recall, view.micro_f1]
        for score in view.labels.values():
            values += [score.precision, score.recall, score.f1]
    return values


@given(PAIRS)
def test_every_ratio_is_within_zero_and_one(pairs: list[tuple[Any, Any]]) -> None:
    report = tool_confusion(pairs)
    for value in _ratios(report):
        assert value is None or 0.0 <= value <= 1.0


@given(st.lists(MESSAGES, min_size=1, max_size=30))
def test_a_perfect_candidate_scores_one_everywhere(messages: list[Any]) -> None:
    report = tool_confusion((m, m) for m in messages)
    assert report.label_accuracy == 1.0
    assert report.first_call.macro_f1 == 1.0
    assert report.all_calls.micro_f1 in (1.0, None)
    assert report.unexpected_tool_rate in (0.0, None)
    assert report.missed_tool_rate in (0.0, None)
    assert report.no_tool_accuracy in (1.0, None)
    for view in (report.first_call, report.all_calls):
        for score in view.labels.values():
            assert (score.precision, score.recall, score.f1) == (1.0, 1.0, 1.0)


@given(PAIRS)
def test_counts_are_consistent(pairs: list[tuple[Any, Any]]) -> None:
    report = tool_confusion(pairs)
    labels = report.first_call.labels.values()
    assert sum(s.support for s in labels) == len(pairs)
    assert sum(s.predicted for s in labels) == len(pairs)
    assert sum(sum(row.values()) for row in report.confusion.values()) == len(pairs)
    for want, row in report.confusion.items():
        assert report.first_call.labels[want].support == sum(row.values())
        assert report.first_call.labels[want].true_positives == row.get(want, 0)
    if report.no_tool_accuracy is not None:
        assert report.no_tool_accuracy + report.unexpected_tool_rate == pytest.approx(1.0)


@given(PAIRS, st.randoms(use_true_random=False))
def test_pairs_added_one_at_a_time_in_any_order_give_the_same_report(
    pairs: list[tuple[Any, Any]], rng: Any
) -> None:
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    confusion = ToolConfusion()
    for expected, predicted in shuffled:
        confusion.add(expected, predicted)
    assert confusion.report() == tool_confusion(pairs)
