"""The search attributes of a flywheel run: what the Web UI and `flywheel list` filter runs by.

Plain keys (no I/O), so workflows can set them; clients/temporal.py registers them.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

WORKLOAD_ID = SearchAttributeKey.for_keyword("WorkloadId")
CLIENT_ID = SearchAttributeKey.for_keyword("ClientId")
BEST_CANDIDATE = SearchAttributeKey.for_keyword("BestCandidate")
"""The recommended candidate of a finished run, or ``none``."""
BEST_EVAL_KIND = SearchAttributeKey.for_keyword("BestEvalKind")
"""How the recommended candidate was evaluated: base, icl or customized."""
BEST_SCORE = SearchAttributeKey.for_float("BestScore")
"""The recommended evaluation's headline score (a Double)."""
RESULT_SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    BEST_CANDIDATE,
    BEST_EVAL_KIND,
    BEST_SCORE,
)
"""Set by a run when it ends, so the Web UI can list runs by outcome
(``BestCandidate = "llama-1b"``, ``BestScore > 0.9``)."""
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    WORKLOAD_ID,
    CLIENT_ID,
    *RESULT_SEARCH_ATTRIBUTES,
)
"""Every search attribute a flywheel run carries (list runs by them in the Web UI)."""
