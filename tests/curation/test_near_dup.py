"""Near-duplicate detection: input text, MinHash accuracy, LSH layout and the streaming index."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flywheel.curation.near_dup as near_dup
from flywheel.curation.near_dup import (
    MinHasher,
    NearDuplicateIndex,
    estimated_jaccard,
    input_text,
    lsh_bands,
    normalise_text,
    normalised_key,
)
from tests.curation.builders import make_record, tool_call

HASHER = MinHasher()

TICKET = (
    "I ordered a pair of blue running shoes on Tuesday, order number 4471923, and the "
    "tracking page says label created. I paid for express shipping because I need them "
    "for a race this weekend. Could you please check where the parcel is, and if it cannot "
    "arrive by Friday I would like a refund of the shipping fee. Thanks, Maria"
)


def ticket(name: str, product: str, order: str, day: str, deadline: str, event: str) -> str:
    """A customer-service message of one template with its entity values filled in."""
    return (
        f"Hi, I ordered a {product} on {day}, order number {order}, and the tracking page still "
        f"says label created. I need it for {event}. Could you check with the courier where the "
        f"parcel is, and if it cannot arrive by {deadline} I would like a refund. Thanks, {name}"
    )


def signature(text: str) -> np.ndarray:
    return HASHER.signature(normalise_text(text))


def shingles(text: str, n: int = 5) -> set[str]:
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def true_jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


# --------------------------------------------------------------------------- input text


def test_input_text_keeps_user_tool_and_assistant_text_in_order() -> None:
    call = tool_call("track_order", {"order": "4471923"}, "call_a")
    record = make_record(
        messages=[
            {"role": "system", "content": "You are SupportBot."},
            {"role": "user", "content": "Where is my ORDER?!"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_a", "content": '{"status": "in transit"}'},
            {"role": "assistant", "content": "It is in transit."},
            {"role": "user", "content": [{"type": "text", "text": "When   does it  arrive?"}]},
        ],
        tools=["track_order"],
    )
    assert input_text(record) == (
        "where is my order status in transit it is in transit when does it arrive"
    )


def test_normalisation_folds_case_width_punctuation_and_spacing() -> None:
    assert normalise_text("  Ｈｅｌｌｏ,\tWORLD!!\n¿Qué—tal?  ") == "hello world qué tal"
    assert normalise_text("soft\u00adhyphen zero\u200bwidth") == "softhyphen zerowidth"
    assert normalise_text("...!?") == ""


def test_system_prompt_is_ignored() -> None:
    policy = "You are the support assistant of ShoeShop. Be polite, never promise refunds. " * 20
    a = make_record("Where is my order 4471923?", system=policy)
    b = make_record("where is my order 4471923", system="Another shop entirely.")
    c = make_record("Where is my order 4471923?", system=None)
    assert input_text(a) == input_text(b) == input_text(c) == "where is my order 4471923"
    assert normalised_key(a) == normalised_key(b) == normalised_key(c)

    # A long shared system prompt does not make unrelated questions look alike.
    d = make_record("Can I change the delivery address of my parcel?", system=policy)
    assert estimated_jaccard(HASHER.signature(input_text(a)), HASHER.signature(input_text(d))) < 0.2


def test_content_parts_give_their_text_only() -> None:
    record = make_record(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    {"type": "text", "text": "this picture?"},
                ],
            }
        ]
    )
    assert input_text(record) == "what is in this picture"


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"request": None},
        {"request": "text"},
        {"request": {"messages": "not a list"}},
        {"request": {"messages": [None, 3, "user", ["x"]]}},
        {"request": {"messages": [{"role": "user"}, {"content": "no role"}]}},
        {"request": {"messages": [{"role": "user", "content": 42}]}},
        {"request": {"messages": [{"role": "user", "content": {"text": "a dict"}}]}},
        {"request": {"messages": [{"role": "user", "content": [None, 1, {"text": None}]}]}},
        {"request": {"messages": [{"role": ["user"], "content": "unhashable role"}]}},
        {"request": {"messages": [{"role": "user", "content": "lone \ud800 surrogate"}]}},
    ],
)
def test_malformed_records_do_not_raise(record: Any) -> None:
    text = input_text(record)
    assert isinstance(text, str)
    assert len(normalised_key(record)) == 16
    assert HASHER.signature(text).shape == (128,)


def test_non_mapping_record_reads_as_empty() -> None:
    bad: Any = None
    assert input_text(bad) == ""
    assert input_text(["not", "a", "record"]) == ""  # type: ignore[arg-type]


def test_normalised_key_ignores_case_spacing_and_punctuation_only() -> None:
    a = normalised_key(make_record("Where is my order #4471923?"))
    b = normalised_key(make_record("  where IS my order 4471923 "))
    c = normalised_key(make_record("Where is my order #4471924?"))
    assert a == b != c
    assert len(a) == 16


# --------------------------------------------------------------------------- MinHash


def test_identical_texts_estimate_one() -> None:
    assert estimated_jaccard(signature(TICKET), signature(TICKET)) == 1.0


def test_disjoint_texts_estimate_about_zero() -> None:
    letters = "the quick brown fox jumps over the lazy dog " * 5
    digits = "0123 4567 89 " * 15
    assert not shingles(letters) & shingles(digits)
    assert estimated_jaccard(HASHER.signature(letters), HASHER.signature(digits)) <= 0.02


@pytest.mark.parametrize("shift", [10, 40, 80, 120, 160])
def test_estimate_is_within_a_tenth_of_the_true_jaccard(shift: int) -> None:
    """Two windows of a numbered word list, ``shift`` words apart, share a known set of shingles."""
    words = [f"w{i:03d}" for i in range(400)]
    a, b = " ".join(words[:200]), " ".join(words[shift : shift + 200])
    truth = true_jaccard(a, b)
    assert truth == pytest.approx((200 - shift) / (200 + shift), abs=0.01)
    for seed in (1, 2, 3):
        hasher = MinHasher(seed=seed)
        estimate = estimated_jaccard(hasher.signature(a), hasher.signature(b))
        assert abs(estimate - truth) <= 0.1, (truth, estimate, seed)


def test_estimates_are_unbiased_over_many_pairs() -> None:
    """Mean error over realistic template pairs is far below one signature's noise (~0.04)."""
    rng = np.random.default_rng(7)
    names, products = ["maria", "li", "omar", "sven"], ["blue shoes", "desk lamp", "yoga mat"]
    errors = []
    for _ in range(100):
        a, b = (
            normalise_text(
                ticket(
                    str(rng.choice(names)),
                    str(rng.choice(products)),
                    str(rng.integers(10**6, 10**7)),
                    "monday",
                    "friday",
                    "a race",
                )
            )
            for _ in range(2)
        )
        errors.append(
            estimated_jaccard(HASHER.signature(a), HASHER.signature(b)) - true_jaccard(a, b)
        )
    assert abs(float(np.mean(errors))) < 0.015
    assert float(np.std(errors)) < 0.06


def test_empty_text_matches_only_empty_text() -> None:
    empty = HASHER.signature("")
    assert estimated_jaccard(empty, HASHER.signature("")) == 1.0
    for text in ("a", " ", "hi", TICKET):
        assert estimated_jaccard(empty, HASHER.signature(text)) == 0.0


def test_texts_shorter_than_the_ngram_are_one_shingle() -> None:
    assert estimated_jaccard(HASHER.signature("hi"), HASHER.signature("hi")) == 1.0
    assert estimated_jaccard(HASHER.signature("hi"), HASHER.signature("ho")) < 0.05
    assert estimated_jaccard(HASHER.signature("abc"), HASHER.signature("xyabc")) < 0.05


def test_signature_shape_and_dtype() -> None:
    hasher = MinHasher(num_perm=64, ngram=3)
    sig = hasher.signature("hello there")
    assert sig.shape == (64,)
    assert sig.dtype == np.uint32


def test_long_texts_hash_in_chunks_without_changing_the_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = normalise_text(TICKET * 12)
    chunked = HASHER.signature(text)
    monkeypatch.setattr(near_dup, "_CHUNK", 10**6)
    assert np.array_equal(chunked, HASHER.signature(text))


def test_signatures_are_deterministic_across_instances_and_seeds() -> None:
    text = normalise_text(TICKET)
    assert np.array_equal(MinHasher().signature(text), MinHasher().signature(text))
    assert not np.array_equal(MinHasher(seed=1).signature(text), MinHasher(seed=2).signature(text))


def test_signatures_are_deterministic_across_processes() -> None:
    """No salted ``hash()``: a fresh interpreter with another hash seed gives the same signature."""
    code = (
        "from flywheel.curation.near_dup import MinHasher;"
        f"print(MinHasher().signature({normalise_text(TICKET)!r}).tolist())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == str(signature(TICKET).tolist())


def test_estimated_jaccard_rejects_mismatched_signatures() -> None:
    with pytest.raises(ValueError):
        estimated_jaccard(HASHER.signature("a"), MinHasher(num_perm=64).signature("a"))


def test_constructor_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        MinHasher(num_perm=0)
    with pytest.raises(ValueError):
        MinHasher(ngram=0)


# --------------------------------------------------------------------------- LSH layout


@pytest.mark.parametrize("threshold", [0.7, 0.8, 0.9])
def test_lsh_layout_is_steep_around_the_threshold(threshold: float) -> None:
    bands, rows = lsh_bands(threshold)
    assert bands * rows <= 128

    def candidate(s: float) -> float:
        return float(1 - (1 - s**rows) ** bands)

    assert candidate(threshold + 0.05) >= 0.8
    assert candidate(min(1.0, threshold + 0.1)) >= 0.95
    assert candidate(threshold - 0.2) <= 0.15
    assert candidate(0.3) <= 0.01


def test_lsh_layout_for_threshold_one_needs_every_slot() -> None:
    assert lsh_bands(1.0) == (1, 128)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.01, float("nan")])
def test_index_rejects_thresholds_outside_zero_one(threshold: float) -> None:
    with pytest.raises(ValueError):
        NearDuplicateIndex(threshold)


# --------------------------------------------------------------------------- index


def test_threshold_point_nine_catches_a_one_word_edit() -> None:
    assert len(TICKET.split()) == 60
    edits = [
        TICKET.replace("Tuesday", "Monday"),
        TICKET.replace("blue", "black"),
        TICKET.replace("Maria", "Marie"),
        TICKET.replace("weekend", "Sunday"),
        TICKET.replace("please ", ""),
    ]
    for edit in edits:
        index = NearDuplicateIndex(0.9)
        index.add(7, signature(TICKET))
        assert index.query(signature(edit)) == [7], edit


def test_threshold_point_nine_keeps_same_template_different_entities() -> None:
    texts = [
        ticket("Maria", "pair of blue running shoes", "4471923", "Tuesday", "Friday", "a race"),
        ticket("Omar", "standing desk lamp", "9902184", "Monday", "Sunday", "my exam week"),
        ticket("Li Wei", "yoga mat and strap", "1183305", "Saturday", "Wednesday", "a retreat"),
        ticket("Sven", "espresso machine", "5530071", "Thursday", "Monday", "a dinner party"),
    ]
    index = NearDuplicateIndex(0.9)
    for item, text in enumerate(texts):
        assert index.add_if_new(item, signature(text)) is None, text
    assert len(index) == len(texts)


def test_query_on_an_empty_index_returns_nothing() -> None:
    assert NearDuplicateIndex(0.8).query(signature(TICKET)) == []


def test_add_if_new_keeps_the_first() -> None:
    newest = signature(TICKET)
    older = signature(TICKET.replace("Tuesday", "Monday"))
    other = signature(ticket("Omar", "desk lamp", "9902184", "Monday", "Sunday", "exams"))
    oldest = signature(TICKET.replace("Thanks, Maria", "Thank you, Maria"))

    index = NearDuplicateIndex(0.9)
    assert index.add_if_new(10, newest) is None
    assert index.add_if_new(11, older) == 10
    assert index.add_if_new(12, other) is None
    assert index.add_if_new(13, oldest) == 10
    assert len(index) == 2
    assert index.query(older) == [10]


def test_query_verifies_candidates_and_lists_oldest_first() -> None:
    index = NearDuplicateIndex(0.9)
    index.add(5, signature(TICKET))
    index.add(3, signature(ticket("Omar", "desk lamp", "9902184", "Monday", "Sunday", "exams")))
    index.add(9, signature(TICKET + " PS"))
    assert index.query(signature(TICKET)) == [5, 9]


def test_query_finds_exact_match_even_when_bands_are_few() -> None:
    index = NearDuplicateIndex(1.0)
    index.add(1, signature(TICKET))
    assert index.query(signature(TICKET)) == [1]
    assert index.query(signature(TICKET.replace("Tuesday", "Monday"))) == []


def test_index_grows_past_its_initial_capacity() -> None:
    index = NearDuplicateIndex(0.9)
    texts = [
        f"customer {i} asks about order {i * 7919} and invoice {i * 104729}" for i in range(40)
    ]
    for item, text in enumerate(texts):
        index.add(item, signature(text))
    assert len(index) == 40
    for item, text in enumerate(texts):
        assert item in index.query(signature(text))


def test_index_rejects_foreign_signatures() -> None:
    index = NearDuplicateIndex(0.9)
    with pytest.raises(ValueError):
        index.add(1, MinHasher(num_perm=64).signature("hi"))
    with pytest.raises(ValueError):
        index.query(signature("hi").astype(np.uint64))


def test_leakage_guard_finds_train_records_near_eval_records() -> None:
    """The intended use: index eval inputs, then drop train/val records that hit the index."""
    eval_records = [make_record(TICKET), make_record("How do I reset my password?")]
    train_records = [
        make_record(TICKET.replace("Tuesday", "Wednesday"), system="Different system prompt."),
        make_record("how do i RESET my password"),
        make_record("Do you ship to Norway?"),
    ]
    index = NearDuplicateIndex(0.9)
    for item, record in enumerate(eval_records):
        index.add(item, HASHER.signature(input_text(record)))
    leaked = [bool(index.query(HASHER.signature(input_text(r)))) for r in train_records]
    assert leaked == [True, True, False]


# --------------------------------------------------------------------------- properties

TEXTS = st.text(st.characters(exclude_categories=()), max_size=300)


@settings(max_examples=150, deadline=None)
@given(TEXTS, TEXTS)
def test_estimated_jaccard_is_symmetric_and_bounded(a: str, b: str) -> None:
    sa, sb = HASHER.signature(normalise_text(a)), HASHER.signature(normalise_text(b))
    forward, backward = estimated_jaccard(sa, sb), estimated_jaccard(sb, sa)
    assert forward == backward
    assert 0.0 <= forward <= 1.0


@settings(max_examples=100, deadline=None)
@given(TEXTS, st.floats(min_value=0.0, max_value=1.0, exclude_min=True))
def test_any_text_is_a_near_duplicate_of_itself_at_any_threshold(
    text: str, threshold: float
) -> None:
    sig = HASHER.signature(normalise_text(text))
    index = NearDuplicateIndex(threshold)
    assert index.add_if_new(0, sig) is None
    assert index.query(sig) == [0]
    assert index.add_if_new(1, HASHER.signature(normalise_text(text))) == 0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_ascii_fast_path_equals_the_unicode_path(text: str) -> None:
    slow = unicodedata.normalize("NFKC", text).casefold().translate(near_dup._translation_table())
    assert normalise_text(text) == " ".join(slow.split())
