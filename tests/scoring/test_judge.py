"""LLM-as-judge: prompt shape, rating parser (incl. the blueprint's "10 reads as 1" bug), scale."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel.scoring.judge import (
    JUDGE_SCORE,
    JUDGE_SIMILARITY,
    JUDGE_SYSTEM_PROMPT,
    JUDGE_UNPARSED,
    judge_messages,
    judge_row,
    normalise_judge_score,
    parse_judge_score,
)
from flywheel.scoring.metrics import aggregate_scores


def test_metric_names() -> None:
    assert JUDGE_SCORE == "llm_judge_score"
    assert JUDGE_SIMILARITY == "llm_judge_similarity"
    assert JUDGE_UNPARSED == "llm_judge_unparsed"


# --- prompt ----------------------------------------------------------------------------------


class TestJudgeMessages:
    def test_system_then_user(self) -> None:
        messages = judge_messages("Paris.", "It is Paris.", conversation="user: capital of France?")
        assert [m["role"] for m in messages] == ["system", "user"]
        assert messages[0]["content"] == JUDGE_SYSTEM_PROMPT
        user = messages[1]["content"]
        assert "<reference>\nParis.\n</reference>" in user
        assert "<candidate>\nIt is Paris.\n</candidate>" in user
        assert "<conversation>\nuser: capital of France?\n</conversation>" in user
        assert user.index("<conversation>") < user.index("<reference>") < user.index("<candidate>")

    def test_conversation_is_optional(self) -> None:
        user = judge_messages("a", "b")[1]["content"]
        assert "<conversation>" not in user
        assert judge_messages("a", "b", conversation=None) == judge_messages("a", "b")

    def test_empty_conversation_is_still_shown(self) -> None:
        assert "<conversation>" in judge_messages("a", "b", conversation="")[1]["content"]

    def test_rubric_covers_the_scale_and_the_output_form(self) -> None:
        for anchor in ("10:", "8-9:", "6-7:", "4-5:", "2-3:", "1:"):
            assert anchor in JUDGE_SYSTEM_PROMPT
        assert JUDGE_SYSTEM_PROMPT.rstrip().endswith("RATING: <a whole number from 1 to 10>")

    def test_the_requested_form_parses(self) -> None:
        for n in range(1, 11):
            assert parse_judge_score(f"Close in meaning.\nRATING: {n}") == n

    def test_prompt_itself_holds_no_rating(self) -> None:
        """A judge that echoes the prompt must not be read as having rated."""
        assert parse_judge_score(JUDGE_SYSTEM_PROMPT) is None


# --- parser ----------------------------------------------------------------------------------

PARSE_CASES: list[tuple[str, int | None]] = [
    # the fixed form, and ten read as ten (the blueprint's "(\d)" reads "10" as 1)
    ("RATING: 10", 10),
    ("RATING: 1", 1),
    ("RATING:10", 10),
    ("rating: 7", 7),
    ("RATING: 8\nEXPLANATION: same facts, one detail missing", 8),
    ("The answers agree.\n\nRATING: 10", 10),
    # common variants
    ("Rating: 7/10", 7),
    ("Rating: 10/10", 10),
    ("Rating: 7 / 10", 7),
    ("Score: 9 out of 10", 9),
    ("score = 6", 6),
    ("Similarity: 5", 5),
    ("Similarity score: 8", 8),
    ("Grade: 4", 4),
    ("The score is 7.", 7),
    ("Rating (1-10): 6", 6),
    ("Rating (1–10): 6", 6),
    ("**Rating:** 9", 9),
    ("**Rating**: 9", 9),
    ("Rating: **8**", 8),
    ('{"rating": 9}', 9),
    ("{'score': 10, 'reason': 'same'}", 10),
    ("Rating: 8.", 8),
    ("Rating: 8.0", 8),
    ("**8**", 8),
    ("__9__", 9),
    ("The candidate is close. **7**", 7),
    ("I would give it 8/10.", 8),
    ("Overall 9 out of 10", 9),
    ("10", 10),
    ("7", 7),
    ("  10  ", 10),
    ("10.", 10),
    ("`6`", 6),
    ("Mostly the same answer.\n9", 9),
    # the last explicit rating wins
    ("Rating: 3\nOn reflection...\nRATING: 9", 9),
    ("Score: 2/10 at first sight, but\nRATING: 10", 10),
    # an explicit rating line beats other number forms
    ("**4**\nRATING: 6", 6),
    ("It covers 3 of the 5 facts, 8/10 in spirit.\nRATING: 5", 5),
    ("The candidate covers 3/5 of the points.\n**6**", 6),
    # out of range or not a whole number: rejected, not clamped or truncated
    ("RATING: 0", None),
    ("RATING: 11", None),
    ("RATING: 100", None),
    ("RATING: -3", None),
    ("Rating: 7.5", None),
    ("Rating: 10.5", None),
    ("0", None),
    ("11", None),
    ("**12**", None),
    ("12/10", None),
    ("Score: 4/5", None),
    ("Score: 8 out of 5", None),
    ("2023", None),
    # an invalid explicit rating is not replaced by a guess from other numbers
    ("**8**\nRATING: 11", None),
    # ranges are ambiguous
    ("Rating: 7-8", None),
    ("Rating: 7 – 8", None),
    # no rating at all
    ("", None),
    ("   \n\t", None),
    ("RATING:", None),
    ("RATING: <n>", None),
    ("The candidate misses 3 of the 4 points.", None),
    ("Both answers mention 2 cities and 10 dates.", None),
    ("I cannot rate this.", None),
    ("version 1.2.3", None),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse_judge_score(text: str, expected: int | None) -> None:
    assert parse_judge_score(text) == expected


def test_blueprint_regex_reads_ten_as_one() -> None:
    """Pins the bug being fixed: the blueprint's ``(\\d)`` parser turns a perfect 10 into 1."""
    blueprint = re.search(r"(\d)", "10")
    assert blueprint is not None and int(blueprint.group(1)) == 1
    assert parse_judge_score("10") == 10
    assert parse_judge_score("RATING: 10") == 10


@pytest.mark.parametrize("value", [None, 10, 8.0, b"RATING: 8", ["RATING: 8"]])
def test_non_text_gives_none(value: object) -> None:
    assert parse_judge_score(value) is None  # type: ignore[arg-type]


def test_long_adversarial_text_is_fast() -> None:
    """No catastrophic backtracking on long runs of the characters the patterns repeat."""
    for text in (
        "rating" + " " * 50_000 + "x",
        "1" * 50_000,
        "**" * 25_000,
        "rating: " * 10_000,
        "  \n" * 20_000 + "x",
        "7 " * 20_000 + "out of",
        "Rating: 8/" + "1" * 5_000,  # beyond int()'s default digit limit
        "RATING: " + "9" * 5_000,
    ):
        parse_judge_score(text)  # a regression would time the test suite out


@given(st.text())
def test_never_raises_and_stays_in_range(text: str) -> None:
    score = parse_judge_score(text)
    assert score is None or (isinstance(score, int) and 1 <= score <= 10)


@given(st.integers(1, 10), st.text(alphabet=st.characters(blacklist_categories=["Nd"])))
def test_a_final_rating_line_wins_over_any_preamble(score: int, preamble: str) -> None:
    assert parse_judge_score(f"{preamble}\nRATING: {score}") == score


@given(st.integers(1, 10))
def test_bare_number_round_trips(score: int) -> None:
    assert parse_judge_score(str(score)) == score
    assert parse_judge_score(f"{score}/10") == score


# --- scale -----------------------------------------------------------------------------------


class TestNormaliseJudgeScore:
    @pytest.mark.parametrize(("score", "expected"), [(1, 0.0), (10, 1.0), (4, 1 / 3), (7, 2 / 3)])
    def test_values(self, score: int, expected: float) -> None:
        assert normalise_judge_score(score) == pytest.approx(expected)

    def test_monotonic(self) -> None:
        values = [normalise_judge_score(s) for s in range(1, 11)]
        assert values == sorted(values)
        assert len(set(values)) == 10

    @pytest.mark.parametrize("score", [0, 11, -1, True])
    def test_out_of_range(self, score: int) -> None:
        with pytest.raises(ValueError):
            normalise_judge_score(score)


class TestJudgeRow:
    def test_parsed(self) -> None:
        assert judge_row(10) == {JUDGE_SCORE: 10.0, JUDGE_SIMILARITY: 1.0, JUDGE_UNPARSED: 0.0}

    def test_unparsed(self) -> None:
        assert judge_row(None) == {JUDGE_SCORE: None, JUDGE_SIMILARITY: None, JUDGE_UNPARSED: 1.0}

    def test_aggregates_with_unparsed_rows_left_out_of_the_means(self) -> None:
        rows = [judge_row(parse_judge_score(t)) for t in ("RATING: 10", "RATING: 4", "no idea")]
        assert aggregate_scores(rows) == {
            JUDGE_SCORE: 7.0,
            JUDGE_SIMILARITY: pytest.approx(2 / 3),
            JUDGE_UNPARSED: pytest.approx(1 / 3),
        }
