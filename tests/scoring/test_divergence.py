"""Ranking eval records by how far the candidate's answer is from production's."""

from __future__ import annotations

from typing import Any

import pytest

from flywheel.schemas import WorkloadType
from flywheel.scoring.divergence import (
    TEXT_LIMIT,
    Divergence,
    example_line,
    most_divergent,
    record_divergence,
    text_divergence,
    tool_call_divergence,
)


def calls(*items: tuple[str, Any]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"type": "function", "function": {"name": name, "arguments": args}}
            for name, args in items
        ],
    }


def text(content: str) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def test_same_calls_do_not_diverge() -> None:
    expected = calls(("lookup", {"id": 1, "full": True}))
    predicted = calls(("lookup", '{"full": true, "id": 1.0}'))  # order and 1.0 do not matter
    assert tool_call_divergence(expected, predicted).score == 0.0
    assert tool_call_divergence(text("hi"), text("hello")).score == 0.0


def test_wrong_tool_diverges_most() -> None:
    result = tool_call_divergence(calls(("lookup", {})), calls(("cancel", {})))
    assert result == Divergence(
        1.0, "wrong tool: production called lookup, candidate called cancel"
    )
    extra = tool_call_divergence(calls(("lookup", {})), calls(("lookup", {}), ("lookup", {})))
    assert extra.score == 1.0


def test_tool_versus_text_diverges_most() -> None:
    assert tool_call_divergence(text("hello"), calls(("lookup", {}))) == Divergence(
        1.0, "production answered in text; candidate called lookup"
    )
    assert tool_call_divergence(calls(("lookup", {})), text("hello")) == Divergence(
        1.0, "production called lookup; candidate answered in text"
    )
    assert tool_call_divergence(calls(("lookup", {})), None).score == 1.0


def test_wrong_arguments_scale_with_the_share_of_keys_that_differ() -> None:
    expected = calls(("lookup", {"id": 1, "region": "eu"}))
    one_of_two = tool_call_divergence(expected, calls(("lookup", {"id": 2, "region": "eu"})))
    assert one_of_two.score == pytest.approx(0.75)
    assert one_of_two.reason == "wrong arguments to lookup: id"
    all_wrong = tool_call_divergence(expected, calls(("lookup", {"id": 2, "region": "us"})))
    assert all_wrong.score == pytest.approx(1.0)
    missing_key = tool_call_divergence(expected, calls(("lookup", {"id": 1})))
    assert missing_key.score == pytest.approx(0.75) and "region" in missing_key.reason


def test_reordered_identical_calls_do_not_diverge() -> None:
    expected = calls(("lookup", {"id": 1}), ("lookup", {"id": 2}))
    predicted = calls(("lookup", {"id": 2}), ("lookup", {"id": 1}))
    assert tool_call_divergence(expected, predicted).score == 0.0


def test_unparsable_arguments_diverge() -> None:
    result = tool_call_divergence(calls(("lookup", {"id": 1})), calls(("lookup", "{broken")))
    assert 0.5 < result.score <= 1.0
    assert "unparsable arguments" in result.reason


def test_text_divergence_prefers_the_judge_then_embeddings_then_rouge() -> None:
    judged = text_divergence(
        {"llm_judge_similarity": 0.25, "llm_judge_score": 3.25, "embedding_cosine": 0.9}
    )
    assert judged == Divergence(0.75, "judge rated 3.25/10")
    embedded = text_divergence({"embedding_cosine": 0.8, "rouge_l": 0.1})
    assert embedded.score == pytest.approx(0.2) and embedded.reason == "embedding cosine 0.80"
    rouge = text_divergence({"rouge_l": 0.3, "token_f1": 0.9})
    assert rouge.score == pytest.approx(0.7) and rouge.reason == "ROUGE-L 0.30"
    assert text_divergence({"token_f1": 1.2}).score == 0.0  # clamped
    assert text_divergence({}) == Divergence(0.0, "no similarity score")


def test_record_divergence_by_workload_type() -> None:
    row = {"rouge_l": 0.0}
    assert record_divergence(WorkloadType.GENERIC, text("a"), text("b"), row).score == 1.0
    assert record_divergence("tool_calling", text("a"), text("b"), row).score == 0.0
    wrong = calls(("cancel", {}))
    assert record_divergence("tool_calling", calls(("lookup", {})), wrong, {}).score == 1.0
    # A row that says the calls match is trusted (no second comparison).
    matched = {"function_name_and_args_accuracy": 1.0}
    assert record_divergence("tool_calling", calls(("a", {})), calls(("a", {})), matched) == (
        Divergence(0.0, "same calls")
    )


def test_most_divergent_keeps_the_top_n_with_ties_by_index() -> None:
    items = [
        (0, Divergence(0.5, "a")),
        (1, Divergence(1.0, "b")),
        (2, Divergence(0.0, "same")),
        (3, Divergence(1.0, "c")),
        (4, Divergence(0.75, "d")),
    ]
    assert [i for i, _ in most_divergent(items, 3)] == [1, 3, 4]
    assert [i for i, _ in most_divergent(items, 10)] == [1, 3, 4, 0]  # never a 0 divergence
    assert most_divergent(items, 0) == []
    assert most_divergent(reversed(items), 2) == most_divergent(items, 2)


def test_example_line_is_short_and_readable() -> None:
    record = {
        "request": {
            "messages": [
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": "x" * (TEXT_LIMIT + 50)},
                {"role": "assistant", "content": "earlier"},
            ]
        }
    }
    line = example_line(
        7,
        Divergence(0.123456789, "wrong tool"),
        record,
        calls(("lookup", '{"id": 1}')),
        text("no idea"),
        {"function_name_accuracy": 0.0, "llm_judge_score": None},
    )
    assert line["index"] == 7 and line["divergence"] == 0.123457
    assert len(line["prompt"]) == TEXT_LIMIT and line["prompt"].endswith("…")
    assert line["expected"] == {"tool_calls": [{"name": "lookup", "arguments": {"id": 1}}]}
    assert line["candidate"] == {"content": "no idea"}
    assert line["scores"] == {"function_name_accuracy": 0.0}
    assert example_line(0, Divergence(1, "r"), {}, None, None, {})["prompt"] == ""
