"""Judge-free text similarity between the production answer and a candidate's: F1 and ROUGE-L.

Both work on word tokens (:func:`tokenize`). Two texts without tokens are identical (1.0); a
text without tokens against one with tokens shares nothing (0.0).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["lcs_length", "rouge_l", "token_f1", "tokenize"]

# Scripts written without spaces between words: each character is a token of its own.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"


@lru_cache(maxsize=1)
def _token_pattern() -> re.Pattern[str]:
    """Compile the token regex once, on first use (collecting combining marks takes ~70 ms).

    A word is a run of word characters *and combining marks*: Python's ``\\w`` leaves out marks,
    which would cut words of scripts such as Devanagari in pieces.
    """
    marks = _ranges(c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c))[0] == "M")
    return re.compile(f"[{_CJK}]|(?:[^\\W{_CJK}]|[{marks}])+")


def _ranges(codepoints: Iterable[int]) -> str:
    """A regex character-class body for ascending code points, merged into ranges."""
    parts: list[str] = []
    start = prev = -2
    for cp in codepoints:
        if cp != prev + 1:
            if start >= 0:
                parts.append(_class_range(start, prev))
            start = cp
        prev = cp
    if start >= 0:
        parts.append(_class_range(start, prev))
    return "".join(parts)


def _class_range(first: int, last: int) -> str:
    """One ``a-b`` (or ``a``) item of a character class, escaped."""
    return f"\\U{first:08x}" if first == last else f"\\U{first:08x}-\\U{last:08x}"


def tokenize(text: str) -> list[str]:
    """Lower-cased Unicode word tokens of ``text``; punctuation and whitespace are dropped.

    The text is NFKC-normalised and case-folded first, so full-width letters, ligatures and
    composed/decomposed accents compare equal. Han, Hiragana and Katakana characters are one token
    each (those scripts put no spaces between words).
    """
    normal = unicodedata.normalize("NFKC", text).casefold()
    return _token_pattern().findall(normal)


def token_f1(reference: str, candidate: str) -> float:
    """Bag-of-tokens F1: harmonic mean of token precision and recall (SQuAD-style)."""
    ref, cand = tokenize(reference), tokenize(candidate)
    if not ref or not cand:
        return 1.0 if not ref and not cand else 0.0
    common = sum((Counter(ref) & Counter(cand)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(cand), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def rouge_l(reference: str, candidate: str) -> float:
    """ROUGE-L F-measure (β=1) over tokens: based on the longest common subsequence."""
    ref, cand = tokenize(reference), tokenize(candidate)
    if not ref or not cand:
        return 1.0 if not ref and not cand else 0.0
    lcs = lcs_length(ref, cand)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences.

    Bit-parallel (Hyyrö 2004): one big-integer row holds all of ``a``'s DP column deltas, so the
    cost is ``len(b)`` big-int steps of ``len(a)`` bits instead of ``len(a)·len(b)`` Python steps.
    """
    if not a or not b:
        return 0
    positions: dict[str, int] = {}
    for i, token in enumerate(a):
        positions[token] = positions.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        match = row & positions.get(token, 0)
        row = ((row + match) | (row - match)) & full
    return len(a) - row.bit_count()
