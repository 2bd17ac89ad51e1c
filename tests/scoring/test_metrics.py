"""Per-reply scores by workload type, their aggregation, and the headline metric."""

from __future__ import annotations

from typing import Any

import pytest

from flywheel.schemas import WorkloadType
from flywheel.scoring.metrics import (
    FUNCTION_NAME_ACCURACY,
    FUNCTION_NAME_AND_ARGS_ACCURACY,
    ROUGE_L,
    TOKEN_F1,
    aggregate_scores,
    exceeds_failure_budget,
    headline_metric,
    message_text,
    score_reply,
)


def tool_message(name: str, arguments: Any) -> dict[str, Any]:
    """An assistant message with one tool call."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }


def text_message(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def test_metric_names() -> None:
    assert FUNCTION_NAME_ACCURACY == "function_name_accuracy"
    assert FUNCTION_NAME_AND_ARGS_ACCURACY == "function_name_and_args_accuracy"
    assert ROUGE_L == "rouge_l"
    assert TOKEN_F1 == "token_f1"


class TestScoreReplyToolCalling:
    def test_exact_match(self) -> None:
        expected = tool_message("search", {"q": "shoes", "user_id": "4165"})
        predicted = tool_message("search", '{"user_id": "4165", "q": "shoes"}')
        assert score_reply(WorkloadType.TOOL_CALLING, expected, predicted) == {
            FUNCTION_NAME_ACCURACY: 1.0,
            FUNCTION_NAME_AND_ARGS_ACCURACY: 1.0,
        }

    def test_right_name_wrong_arguments(self) -> None:
        scores = score_reply(
            WorkloadType.TOOL_CALLING,
            tool_message("search", {"q": "shoes"}),
            tool_message("search", {"q": "boots"}),
        )
        assert scores == {FUNCTION_NAME_ACCURACY: 1.0, FUNCTION_NAME_AND_ARGS_ACCURACY: 0.0}

    def test_wrong_name(self) -> None:
        scores = score_reply(
            WorkloadType.TOOL_CALLING, tool_message("a", "{}"), tool_message("b", "{}")
        )
        assert scores == {FUNCTION_NAME_ACCURACY: 0.0, FUNCTION_NAME_AND_ARGS_ACCURACY: 0.0}

    def test_text_answer_instead_of_a_call(self) -> None:
        scores = score_reply(
            WorkloadType.TOOL_CALLING, tool_message("a", "{}"), text_message("I'd call a")
        )
        assert scores == {FUNCTION_NAME_ACCURACY: 0.0, FUNCTION_NAME_AND_ARGS_ACCURACY: 0.0}

    def test_both_answer_without_a_call(self) -> None:
        scores = score_reply(WorkloadType.TOOL_CALLING, text_message("hi"), text_message("yo"))
        assert scores == {FUNCTION_NAME_ACCURACY: 1.0, FUNCTION_NAME_AND_ARGS_ACCURACY: 1.0}

    def test_missing_prediction(self) -> None:
        scores = score_reply(WorkloadType.TOOL_CALLING, tool_message("a", "{}"), None)
        assert scores == {FUNCTION_NAME_ACCURACY: 0.0, FUNCTION_NAME_AND_ARGS_ACCURACY: 0.0}

    def test_accepts_the_plain_string(self) -> None:
        scores = score_reply("tool_calling", tool_message("a", "{}"), tool_message("a", None))
        assert scores == {FUNCTION_NAME_ACCURACY: 1.0, FUNCTION_NAME_AND_ARGS_ACCURACY: 1.0}


class TestScoreReplyGeneric:
    def test_known_values(self) -> None:
        scores = score_reply(
            WorkloadType.GENERIC,
            text_message("the cat sat on the mat"),
            text_message("The cat on the mat."),
        )
        assert scores.keys() == {ROUGE_L, TOKEN_F1}
        assert scores[ROUGE_L] == pytest.approx(10 / 11)
        assert scores[TOKEN_F1] == pytest.approx(10 / 11)

    def test_rouge_and_f1_differ_on_word_order(self) -> None:
        scores = score_reply(
            "generic",
            text_message("police killed the gunman"),
            text_message("the gunman killed police"),
        )
        assert scores == {ROUGE_L: 0.5, TOKEN_F1: 1.0}

    def test_none_content_is_empty(self) -> None:
        assert score_reply("generic", text_message(None), text_message(None)) == {
            ROUGE_L: 1.0,
            TOKEN_F1: 1.0,
        }
        assert score_reply("generic", text_message("answer"), text_message(None)) == {
            ROUGE_L: 0.0,
            TOKEN_F1: 0.0,
        }
        assert score_reply("generic", text_message("answer"), None) == {
            ROUGE_L: 0.0,
            TOKEN_F1: 0.0,
        }

    def test_tool_calls_are_ignored(self) -> None:
        expected = {**tool_message("a", "{}"), "content": "same words"}
        predicted = {**tool_message("b", "{}"), "content": "same words"}
        assert score_reply("generic", expected, predicted) == {ROUGE_L: 1.0, TOKEN_F1: 1.0}

    def test_multimodal_content_parts(self) -> None:
        parts = [{"type": "text", "text": "hello"}, {"type": "image_url"}, {"type": "text"}]
        parts.append({"type": "text", "text": "world"})
        assert score_reply("generic", text_message(parts), text_message("hello world")) == {
            ROUGE_L: 1.0,
            TOKEN_F1: 1.0,
        }

    def test_unknown_workload_type(self) -> None:
        with pytest.raises(ValueError):
            score_reply("classification", text_message("a"), text_message("a"))


class TestMessageText:
    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            (None, ""),
            ({}, ""),
            ({"content": None}, ""),
            ({"content": "plain"}, "plain"),
            ({"content": 42}, ""),
            ({"content": [{"type": "text", "text": "a"}, "b", {"text": 3}]}, "a\nb"),
        ],
    )
    def test_values(self, message: Any, expected: str) -> None:
        assert message_text(message) == expected


class TestAggregateScores:
    def test_mean_per_metric_over_rows_that_have_it(self) -> None:
        rows = [{"a": 1.0, "b": 0.0}, {"a": 0.0}, {"a": 1.0, "b": 1.0}]
        result = aggregate_scores(rows)
        assert result == {"a": pytest.approx(2 / 3), "b": 0.5}
        assert list(result) == ["a", "b"]

    def test_empty(self) -> None:
        assert aggregate_scores([]) == {}
        assert aggregate_scores([{}, {}]) == {}

    def test_none_values_count_as_absent(self) -> None:
        assert aggregate_scores([{"a": None}, {"a": 0.25}]) == {"a": 0.25}
        assert aggregate_scores([{"a": None}]) == {}

    def test_generator_of_scored_replies(self) -> None:
        pairs = [
            (tool_message("a", {"x": 1}), tool_message("a", '{"x": 1.0}')),
            (tool_message("a", {"x": 1}), tool_message("a", {"x": 2})),
            (tool_message("a", {"x": 1}), tool_message("b", {"x": 1})),
            (text_message("no call"), text_message("still no call")),
        ]
        result = aggregate_scores(score_reply("tool_calling", e, p) for e, p in pairs)
        assert result == {FUNCTION_NAME_ACCURACY: 0.75, FUNCTION_NAME_AND_ARGS_ACCURACY: 0.5}


class TestHeadlineMetric:
    def test_per_workload_type(self) -> None:
        assert headline_metric(WorkloadType.TOOL_CALLING) == FUNCTION_NAME_AND_ARGS_ACCURACY
        assert headline_metric(WorkloadType.GENERIC) == ROUGE_L
        assert headline_metric("generic") == ROUGE_L

    def test_headline_is_among_the_scores(self) -> None:
        for kind in WorkloadType:
            assert headline_metric(kind) in score_reply(kind, None, None)

    def test_unknown_workload_type(self) -> None:
        with pytest.raises(ValueError):
            headline_metric("other")


class TestExceedsFailureBudget:
    @pytest.mark.parametrize(
        ("records", "failed", "max_rate", "expected"),
        [
            (0, 0, 0.5, True),  # no records
            (10, 0, 0.0, False),
            (10, 5, 0.5, False),  # exactly at the limit passes
            (10, 6, 0.5, True),
            (10, 1, 0.0, True),
            (4, 4, 1.0, True),  # every request failed
            (4, 3, 1.0, False),
        ],
    )
    def test_rule(self, records: int, failed: int, max_rate: float, expected: bool) -> None:
        assert exceeds_failure_budget(records, failed, max_rate) is expected
