"""Near-duplicate detection of logged conversation inputs: MinHash signatures plus an LSH index.

Exact dedup (:mod:`flywheel.curation.dedup`) misses inputs that differ by a word, a typo or their
punctuation. Here an input is reduced to normalised text (:func:`input_text`), shingled into
character n-grams and summarised by a MinHash signature whose agreement rate estimates the
Jaccard similarity of the shingle sets. :class:`NearDuplicateIndex` finds earlier signatures
whose estimate reaches a threshold without comparing against every stored one. Everything is
deterministic across processes and machines, so curation stays reproducible.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
import unicodedata
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "MinHasher",
    "NearDuplicateIndex",
    "Signature",
    "estimated_jaccard",
    "input_text",
    "lsh_bands",
    "normalise_text",
    "normalised_key",
]

Signature = npt.NDArray[np.uint32]
"""A MinHash signature: one minimum per hash function, shape ``(num_perm,)``."""

_INPUT_ROLES = frozenset({"user", "tool", "function", "assistant"})
"""Roles whose text is the conversation input; system and developer prompts are left out."""

_EMPTY = np.uint32(0xFFFFFFFF)
"""Every slot of an empty text's signature: real minima almost never equal it in all slots."""

_CHUNK = 512
"""Shingles hashed per step, keeping the (num_perm x chunk) work array in cache."""

_MISS_COST = 5.0
"""How many wasted candidate checks one missed near-duplicate is worth when choosing bands."""

_BELOW = 0.2
"""Width of the similarity window under the threshold where wasted candidates are counted."""

_GRID = 1000
"""Points of the similarity grid used to integrate the LSH cost."""


# --------------------------------------------------------------------------- text


def input_text(record: Mapping[str, Any]) -> str:
    """The record's conversation input as normalised text: user, tool and assistant turns in order.

    System prompts are left out (a workload usually shares one, which would make every pair look
    alike), as are tool schemas and the tool calls of assistant turns. Never raises: a malformed
    record gives whatever text could be read, possibly "".
    """
    request = record.get("request") if isinstance(record, Mapping) else None
    messages = request.get("messages") if isinstance(request, Mapping) else None
    if not isinstance(messages, list):
        return ""
    parts: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        if isinstance(role, str) and role in _INPUT_ROLES:
            _content_text(message.get("content"), parts)
    return normalise_text("\n".join(parts))


def normalise_text(text: str) -> str:
    """NFKC-normalised, case-folded text with punctuation and controls as spaces, runs collapsed."""
    if text.isascii():  # the common case, byte-wise: NFKC and case folding are plain lowercase
        return b" ".join(text.encode("ascii").translate(_ASCII_TABLE).split()).decode("ascii")
    text = unicodedata.normalize("NFKC", text).casefold().translate(_translation_table())
    return " ".join(text.split())


def _ascii_table() -> bytes:
    """The ASCII part of :func:`_translation_table` plus lowercasing, as a bytes table."""
    table = bytearray(range(256))
    for code in range(128):
        category = unicodedata.category(chr(code))
        if category[0] == "P" or category == "Cc":
            table[code] = ord(" ")
        elif "A" <= chr(code) <= "Z":
            table[code] = ord(chr(code).lower())
    return bytes(table)


_ASCII_TABLE = _ascii_table()


def normalised_key(record: Mapping[str, Any]) -> bytes:
    """A 16-byte digest of :func:`input_text`: equal for inputs differing in case/space/punctuation.

    Note that every record with no readable input shares the key of the empty text.
    """
    return hashlib.blake2b(
        input_text(record).encode("utf-8", "surrogatepass"), digest_size=16
    ).digest()


def _content_text(content: Any, parts: list[str]) -> None:
    """Append the text of a message content: a string, or the text parts of a part list."""
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") in (None, "text"):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)


@functools.cache
def _translation_table() -> dict[int, str | None]:
    """Punctuation and control characters map to a space; invisible format characters are dropped.

    Built once per process (about 0.2 s) by scanning every code point's Unicode category.
    """
    table: dict[int, str | None] = {}
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if category[0] == "P" or category == "Cc":
            table[code] = " "
        elif category == "Cf":
            table[code] = None
    return table


# --------------------------------------------------------------------------- MinHash


class MinHasher:
    """MinHash over character n-gram shingles, vectorised with numpy and stable across processes.

    Each shingle gets a seeded 64-bit polynomial hash of its code points, finished by a
    xor-shift/multiply mix and cut to 32 bits. Hash function ``i`` is ``a_i * x + b_i mod 2**32``
    with odd ``a_i`` (a bijection); the signature keeps each function's minimum over the shingles.
    Constants come from SHAKE-256 of the seed, never from Python's salted ``hash()``.
    """

    def __init__(self, num_perm: int = 128, ngram: int = 5, seed: int = 1) -> None:
        if num_perm < 1:
            raise ValueError(f"num_perm must be at least 1, got {num_perm}")
        if ngram < 1:
            raise ValueError(f"ngram must be at least 1, got {ngram}")
        self.num_perm = num_perm
        self.ngram = ngram
        self.seed = seed
        words = _seeded_words(f"flywheel.near_dup.MinHasher:{seed}", 2 * num_perm + 4)
        as64 = _as_uint64(words[:4])
        self._poly = as64[0] | np.uint64(1)
        self._mix = as64[1] | np.uint64(1)
        self._a = words[4 : 4 + num_perm] | np.uint32(1)
        self._b = words[4 + num_perm :].reshape(num_perm, 1).copy()
        self._empty = np.full(num_perm, _EMPTY, dtype=np.uint32)

    def signature(self, text: str) -> Signature:
        """The signature of ``text`` as given (pass normalised text, e.g. from :func:`input_text`).

        A text shorter than the n-gram is one shingle; the empty text gets a fixed signature
        that matches only other empty texts.
        """
        if not text:
            return self._empty.copy()
        shingles = self._shingle_hashes(text)
        signature: Signature | None = None
        for start in range(0, len(shingles), _CHUNK):
            values = np.multiply.outer(self._a, shingles[start : start + _CHUNK])
            values += self._b
            minima = values.min(axis=1)
            signature = minima if signature is None else np.minimum(signature, minima)
        assert signature is not None
        return signature

    def _shingle_hashes(self, text: str) -> npt.NDArray[np.uint32]:
        """32-bit hashes of the text's character n-grams (the whole text when it is shorter)."""
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        width = min(self.ngram, len(codes))
        count = len(codes) - width + 1
        hashes = codes[:count] * self._poly
        for offset in range(1, width):
            hashes += codes[offset : offset + count]
            hashes *= self._poly
        hashes ^= hashes >> np.uint64(29)
        hashes *= self._mix
        return (hashes >> np.uint64(32)).astype(np.uint32)


def estimated_jaccard(a: Signature, b: Signature) -> float:
    """The fraction of slots where two signatures agree: an estimate of their texts' Jaccard."""
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"signatures must be non-empty and alike, got {a.shape} and {b.shape}")
    return int(np.count_nonzero(a == b)) / a.size


def _seeded_words(label: str, count: int) -> npt.NDArray[np.uint32]:
    """``count`` pseudo-random 32-bit words derived from ``label`` (identical on every machine)."""
    data = hashlib.shake_256(label.encode("utf-8")).digest(4 * count)
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def _as_uint64(words: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint64]:
    """Pairs of 32-bit words as 64-bit words, low word first, whatever the machine's byte order."""
    pairs = words.astype(np.uint64).reshape(-1, 2)
    return pairs[:, 0] | (pairs[:, 1] << np.uint64(32))


# --------------------------------------------------------------------------- LSH


@functools.lru_cache(maxsize=64)
def lsh_bands(threshold: float, num_perm: int = 128) -> tuple[int, int]:
    """The (bands, rows) LSH layout for a Jaccard threshold, with ``bands * rows <= num_perm``.

    A pair of similarity ``s`` becomes a candidate with probability ``1 - (1 - s**r)**b``, and a
    candidate is kept when its signatures agree in at least ``ceil(threshold * num_perm)`` slots
    (a binomial tail, ``accept(s)``). The layout minimises, for ``s`` uniform on a grid,
    ``miss + wasted / _MISS_COST`` where ``miss`` is the share of the pairs at ``s >= threshold``
    that verification would keep but banding never proposes, and ``wasted`` the share of the
    pairs within ``_BELOW`` under the threshold that verification would reject but banding
    proposes anyway (work spent, not errors, hence the lower weight).
    """
    _check_threshold(threshold)
    s = (np.arange(_GRID) + 0.5) / _GRID
    accept = _binomial_tail(num_perm, _min_agree(threshold, num_perm), s)
    above = s >= threshold
    near_below = (s < threshold) & (s >= threshold - _BELOW)
    kept = float(np.sum(accept[above]))
    rejected = float(np.sum(1.0 - accept[near_below]))
    best: tuple[float, int, int] | None = None
    for rows in range(1, num_perm + 1):
        bands = np.arange(1, num_perm // rows + 1)[:, None]
        candidate = 1.0 - np.exp(bands * np.log1p(-(s**rows)))  # 1 - (1 - s^r)^b, per b and s
        miss = np.sum(((1.0 - candidate) * accept)[:, above], axis=1) / kept if kept else 0.0
        wasted = np.sum((candidate * (1.0 - accept))[:, near_below], axis=1)
        cost = miss + (wasted / rejected if rejected else 0.0) / _MISS_COST
        index = int(np.argmin(cost))
        if best is None or cost[index] < best[0]:
            best = (float(cost[index]), index + 1, rows)
    assert best is not None
    return best[1], best[2]


def _check_threshold(threshold: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")


def _min_agree(threshold: float, num_perm: int) -> int:
    """Fewest agreeing slots whose share reaches the threshold (robust to float rounding)."""
    return max(1, math.ceil(threshold * num_perm - 1e-9))


def _binomial_tail(trials: int, at_least: int, p: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    """``P(Binomial(trials, p) >= at_least)`` for each ``p`` in (0, 1)."""
    k = np.arange(at_least, trials + 1)
    log_choose = np.array(
        [math.lgamma(trials + 1) - math.lgamma(i + 1) - math.lgamma(trials - i + 1) for i in k]
    )
    log_pmf = log_choose + k * np.log(p)[:, None] + (trials - k) * np.log1p(-p)[:, None]
    return np.exp(log_pmf).sum(axis=1)


class NearDuplicateIndex:
    """Items whose signatures' estimated Jaccard reaches a threshold, found by banded LSH.

    Banding only proposes candidates; every answer is verified against the stored signature,
    so bucket collisions never leak into results. Items are ints chosen by the caller.
    """

    def __init__(self, threshold: float, num_perm: int = 128) -> None:
        _check_threshold(threshold)
        self.threshold = threshold
        self.num_perm = num_perm
        self.bands, self.rows = lsh_bands(threshold, num_perm)
        self._min_agree = _min_agree(threshold, num_perm)
        words = _seeded_words(f"flywheel.near_dup.bands:{self.rows}", 2 * (self.rows + self.bands))
        self._band_weights = _as_uint64(words[: 2 * self.rows]) | np.uint64(1)
        self._band_salts = _as_uint64(words[2 * self.rows :])
        self._signatures = np.empty((16, num_perm), dtype=np.uint32)
        self._items: list[int] = []
        self._buckets: dict[int, int | list[int]] = {}
        """Band key -> row, or rows once shared: most buckets hold one row, and a bare int is
        far smaller than a list."""

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: int, signature: Signature) -> None:
        """Store ``item`` under ``signature`` (adding an item twice stores it twice)."""
        self._store(item, self._checked(signature), self._band_keys(signature))

    def query(self, signature: Signature) -> list[int]:
        """Stored items whose estimated Jaccard with ``signature`` reaches the threshold.

        Oldest first; an empty list on an empty index.
        """
        signature = self._checked(signature)
        return [self._items[row] for row in self._matches(signature, self._band_keys(signature))]

    def add_if_new(self, item: int, signature: Signature) -> int | None:
        """The earliest stored near-duplicate of ``signature``; if there is none, add ``item``.

        Streaming removal that keeps the first record of every near-duplicate group.
        """
        signature = self._checked(signature)
        keys = self._band_keys(signature)
        matches = self._matches(signature, keys)
        if matches:
            return self._items[matches[0]]
        self._store(item, signature, keys)
        return None

    def _checked(self, signature: Signature) -> Signature:
        if signature.shape != (self.num_perm,) or signature.dtype != np.uint32:
            raise ValueError(
                f"expected a uint32 signature of shape ({self.num_perm},), "
                f"got {signature.dtype} {signature.shape}"
            )
        return signature

    def _band_keys(self, signature: Signature) -> list[int]:
        """One 64-bit key per band: a seeded linear hash of the band's rows plus a band salt."""
        bands = signature[: self.bands * self.rows].reshape(self.bands, self.rows)
        keys = (bands.astype(np.uint64) * self._band_weights).sum(axis=1, dtype=np.uint64)
        return (keys + self._band_salts).tolist()

    def _matches(self, signature: Signature, keys: list[int]) -> list[int]:
        """Rows that share a bucket with ``signature`` and agree in enough slots, ascending."""
        candidates: list[int] = []
        for key in keys:
            bucket = self._buckets.get(key)
            if bucket is None:
                continue
            if type(bucket) is int:
                candidates.append(bucket)
            else:
                candidates.extend(bucket)
        if not candidates:
            return []
        rows = np.unique(np.array(candidates, dtype=np.intp))
        agree = np.count_nonzero(self._signatures[rows] == signature, axis=1)
        return rows[agree >= self._min_agree].tolist()

    def _store(self, item: int, signature: Signature, keys: list[int]) -> None:
        row = len(self._items)
        if row == len(self._signatures):
            grown = np.empty((2 * row, self.num_perm), dtype=np.uint32)
            grown[:row] = self._signatures
            self._signatures = grown
        self._signatures[row] = signature
        self._items.append(item)
        buckets = self._buckets
        for key in keys:
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = row
            elif type(bucket) is int:
                buckets[key] = [bucket, row]
            else:
                bucket.append(row)
