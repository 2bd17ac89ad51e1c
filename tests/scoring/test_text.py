"""Tokenisation, token F1 and ROUGE-L against hand-computed values."""

from __future__ import annotations

import random
import time

import pytest

from flywheel.scoring.text import lcs_length, rouge_l, token_f1, tokenize


def reference_lcs(a: list[str], b: list[str]) -> int:
    """Textbook O(n·m) dynamic programme, to check the bit-parallel version against."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, 1):
        for j, y in enumerate(b, 1):
            table[i][j] = (
                table[i - 1][j - 1] + 1 if x == y else max(table[i - 1][j], table[i][j - 1])
            )
    return table[len(a)][len(b)]


class TestTokenize:
    def test_lowercases_and_drops_punctuation(self) -> None:
        assert tokenize("Hello, World! It's 3.14 -- OK?") == [
            "hello",
            "world",
            "it",
            "s",
            "3",
            "14",
            "ok",
        ]

    def test_empty_and_punctuation_only(self) -> None:
        assert tokenize("") == []
        assert tokenize("  \n\t ") == []
        assert tokenize("!!! ... ---") == []

    def test_underscore_and_digits_stay_in_words(self) -> None:
        assert tokenize("user_id=4165 v2") == ["user_id", "4165", "v2"]

    def test_accented_latin(self) -> None:
        assert tokenize("Café Zürich") == ["café", "zürich"]

    def test_decomposed_accents_equal_composed(self) -> None:
        assert tokenize("cafe\u0301") == tokenize("café") == ["café"]

    def test_casefold(self) -> None:
        assert tokenize("Straße STRASSE") == ["strasse", "strasse"]

    def test_compatibility_forms(self) -> None:
        assert tokenize("ＡＢＣ ﬁne") == ["abc", "fine"]

    def test_combining_marks_stay_in_the_word(self) -> None:
        assert tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]

    def test_other_scripts(self) -> None:
        assert tokenize("Привет, МИР! γειά σου") == ["привет", "мир", "γειά", "σου"]
        assert tokenize("مرحبا بالعالم") == ["مرحبا", "بالعالم"]

    def test_cjk_characters_are_one_token_each(self) -> None:
        assert tokenize("我喜欢猫。OK") == ["我", "喜", "欢", "猫", "ok"]
        assert tokenize("ねこが好き") == ["ね", "こ", "が", "好", "き"]

    def test_emoji_are_not_words(self) -> None:
        assert tokenize("great 👍 job") == ["great", "job"]


class TestTokenF1:
    def test_identical(self) -> None:
        assert token_f1("The cat sat.", "the cat sat") == 1.0

    def test_subset(self) -> None:
        # 5 shared tokens; precision 5/5, recall 5/6 → F1 = 10/11
        assert token_f1("the cat sat on the mat", "the cat on the mat") == pytest.approx(10 / 11)

    def test_order_does_not_matter(self) -> None:
        assert token_f1("a b c d", "d c b a") == 1.0

    def test_repeated_tokens_are_counted_as_a_bag(self) -> None:
        # overlap: a×1, b×1 = 2; precision 2/3, recall 2/4 → F1 = 4/7
        assert token_f1("a a a b", "a b b") == pytest.approx(4 / 7)

    def test_disjoint(self) -> None:
        assert token_f1("red green", "blue yellow") == 0.0

    def test_symmetric(self) -> None:
        assert token_f1("a a a b", "a b b") == token_f1("a b b", "a a a b")

    def test_empty(self) -> None:
        assert token_f1("", "") == 1.0
        assert token_f1("...", "!!") == 1.0
        assert token_f1("", "something") == 0.0
        assert token_f1("something", "") == 0.0

    def test_unicode(self) -> None:
        assert token_f1("Grüße aus Zürich", "GRÜSSE aus zürich!") == 1.0
        # 3 of 4 characters shared → 0.75
        assert token_f1("我喜欢猫", "我喜欢狗") == pytest.approx(0.75)


class TestRougeL:
    def test_identical(self) -> None:
        assert rouge_l("The quick brown fox.", "the quick brown fox") == 1.0

    def test_subsequence(self) -> None:
        # LCS "the cat on the mat" = 5; P = 5/5, R = 5/6 → 10/11
        assert rouge_l("the cat sat on the mat", "the cat on the mat") == pytest.approx(10 / 11)

    def test_classic_examples(self) -> None:
        # Lin (2004): LCS "police the gunman" = 3 of 4 → 0.75
        assert rouge_l("police killed the gunman", "police kill the gunman") == 0.75
        # LCS "the gunman" = 2 of 4 → 0.5 (token F1 would be 1.0)
        assert rouge_l("police killed the gunman", "the gunman killed police") == 0.5

    def test_order_matters(self) -> None:
        # LCS of a b c d / d c b a is 1 → P = R = 1/4
        assert rouge_l("a b c d", "d c b a") == 0.25

    def test_different_lengths(self) -> None:
        # LCS "a c e" = 3; P = 3/3, R = 3/6 → 2·1·0.5/1.5 = 2/3
        assert rouge_l("a b c d e f", "a c e") == pytest.approx(2 / 3)
        assert rouge_l("a c e", "a b c d e f") == pytest.approx(2 / 3)

    def test_disjoint(self) -> None:
        assert rouge_l("red green", "blue yellow") == 0.0

    def test_empty(self) -> None:
        assert rouge_l("", "") == 1.0
        assert rouge_l("?!", "") == 1.0
        assert rouge_l("", "word") == 0.0
        assert rouge_l("word", "   ") == 0.0

    def test_unicode(self) -> None:
        # 我 喜 欢 猫 vs 我 也 喜 欢 猫: LCS 4; P = 4/5, R = 4/4 → 8/9
        assert rouge_l("我喜欢猫", "我也喜欢猫") == pytest.approx(8 / 9)

    def test_fast_on_long_texts(self) -> None:
        rng = random.Random(7)
        words = [f"w{i}" for i in range(200)]
        reference = " ".join(rng.choice(words) for _ in range(4000))
        candidate = " ".join(rng.choice(words) for _ in range(4000))
        start = time.perf_counter()
        score = rouge_l(reference, candidate)
        assert time.perf_counter() - start < 1.0
        assert 0.0 < score < 1.0


class TestLcsLength:
    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [
            ("", "", 0),
            ("abc", "", 0),
            ("abc", "abc", 3),
            ("abcbdab", "bdcaba", 4),
            ("aaaa", "aa", 2),
            ("xyz", "abc", 0),
        ],
    )
    def test_known_values(self, a: str, b: str, expected: int) -> None:
        assert lcs_length(list(a), list(b)) == expected
        assert lcs_length(list(b), list(a)) == expected

    def test_matches_dynamic_programming(self) -> None:
        rng = random.Random(1234)
        for _ in range(400):
            a = [rng.choice("abcd") for _ in range(rng.randint(0, 90))]
            b = [rng.choice("abcde") for _ in range(rng.randint(0, 90))]
            assert lcs_length(a, b) == reference_lcs(a, b), (a, b)
