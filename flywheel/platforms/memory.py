"""Keeping the garbage collector and big frees off an evaluation's hot path."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from typing import Any


class _HeapFreeze:
    """Keeps the objects alive when an evaluation starts out of the cycle collector meanwhile.

    A full (oldest-generation) collection walks every tracked object in the process, and the
    eval dataset alone is hundreds of thousands of dicts and lists. With a hundred requests in
    flight for 50 ms each, short-lived HTTP objects are promoted to the oldest generation fast
    enough to trigger a full collection every second or so, each taking ~0.2 s on a 5,000-record
    dataset: that halved throughput at concurrency 128. ``gc.freeze`` moves the objects that
    exist now (dataset, modules) to the permanent generation, in O(1); reference counting still
    frees them, only cycle detection skips them. Nested or concurrent evaluations share one
    count, and the last one out unfreezes everything (``gc.unfreeze``, also O(1)).
    """

    depth = 0

    @classmethod
    @contextlib.contextmanager
    def applied(cls) -> Iterator[None]:
        gc.freeze()
        cls.depth += 1
        try:
            yield
        finally:
            cls.depth -= 1
            if cls.depth == 0:
                gc.unfreeze()


class _CollectorPause:
    """Automatic garbage collection off for a short, allocation-heavy step, then back on.

    Parsing an eval dataset creates hundreds of thousands of dicts and lists that all survive;
    the collector would walk them again and again as they are promoted (ten times the parse
    time). Parsing makes no reference cycles, so nothing is lost by not looking for them.
    Nested or concurrent pauses share one count; the collector is re-enabled by the last one
    out, and only if it was enabled when the first came in.
    """

    depth = 0
    was_enabled = True

    @classmethod
    @contextlib.contextmanager
    def applied(cls) -> Iterator[None]:
        if cls.depth == 0:
            cls.was_enabled = gc.isenabled()
            gc.disable()
        cls.depth += 1
        try:
            yield
        finally:
            cls.depth -= 1
            if cls.depth == 0 and cls.was_enabled:
                gc.enable()


def heap_frozen() -> contextlib.AbstractContextManager[None]:
    """Wrap an evaluation's replay and scoring: see :class:`_HeapFreeze`."""
    return _HeapFreeze.applied()


def collector_paused() -> contextlib.AbstractContextManager[None]:
    """Wrap loading an eval dataset: see :class:`_CollectorPause`."""
    return _CollectorPause.applied()


def release_in_background(records: list[Any]) -> None:
    """Empty ``records`` (a parsed eval dataset) on a helper thread, so that freeing it does not
    delay the evaluation's result: 10,000 records are a few hundred thousand objects, about
    0.1 s to free. Call it last; the list is empty soon after."""
    threading.Thread(target=records.clear, name="release-eval-dataset", daemon=True).start()
