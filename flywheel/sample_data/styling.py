"""Tone of a user message: openers, closers, casing, typos and template rendering."""

from __future__ import annotations

import random
import re
from typing import Any

_TONES = ("polite", "neutral", "casual", "angry")
_TONE_WEIGHTS = (30, 35, 25, 10)

_OPENERS = {
    "polite": ["Hi,", "Hello,", "Good morning,", "Hi there!", "Hello, hope you're well.", "Hey,"],
    "neutral": ["", "", "", "Hi.", "Question:", "Hello."],
    "casual": ["hey", "hi", "yo", "heyy", "hello", "", ""],
    "angry": [
        "This is unacceptable.",
        "Seriously?",
        "I'm really frustrated.",
        "Not happy at all.",
        "Third time asking.",
        "Ugh.",
    ],
}
_CLOSERS = {
    "polite": ["Thank you!", "Thanks in advance.", "Many thanks.", "Thanks a lot!", "Cheers.", ""],
    "neutral": ["", "", "", "Thanks.", "Thx."],
    "casual": ["thx", "ty", "pls", "cheers", "", "", "thanks!!"],
    "angry": ["Fix this now.", "I expect an answer today!", "Terrible service.", "!!!", ""],
}

_PLACEHOLDER = re.compile(r"(\{[a-z_]+\})")


def _typo(rng: random.Random, text: str) -> str:
    """Swap two adjacent inner letters of one longer word, as a hurried typist would."""
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", text)]
    if not words:
        return text
    match = rng.choice(words)
    i = rng.randrange(match.start() + 1, match.end() - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _style(
    rng: random.Random, template: str, tone: str, wrap: bool = True, greet: bool = True
) -> str:
    """Apply a tone (casing, greeting, sign-off, typos) to a template's literal text only.

    Placeholders such as ``{order_id}`` are left untouched, so the entity values inserted later
    appear in the message exactly as they appear in the tool-call arguments. ``wrap=False``
    skips the greeting and sign-off (a "hi" needs no "Hello," in front of it); ``greet=False``
    skips only the greeting (the conversation is already under way).
    """
    opener = rng.choice(_OPENERS[tone]) if wrap and greet else ""
    closer = rng.choice(_CLOSERS[tone]) if wrap else ""
    if opener.endswith(",") and re.match(r"[A-Z][a-z']", template) and template[:2] != "I'":
        template = template[0].lower() + template[1:]  # "Hi, can you …", not "Hi, Can you …"
    elif opener.endswith((".", "!", "?")) and tone != "casual":
        template = template[:1].upper() + template[1:]  # "Hello. What can …"
    if closer and tone != "casual" and not template.endswith((".", "?", "!")):
        template += "."
    text = " ".join(part for part in (opener, template, closer) if part)
    parts = _PLACEHOLDER.split(text)
    styled: list[str] = []
    for part in parts:
        if _PLACEHOLDER.fullmatch(part):
            styled.append(part)
            continue
        if tone == "casual":
            part = part.lower().replace("i'm", "im").replace("don't", "dont")
        if tone == "angry" and rng.random() < 0.3:
            part = re.sub(r"\b(now|today|again)\b", lambda m: m.group(1).upper(), part)
        if part.strip() and rng.random() < (0.35 if tone == "casual" else 0.08):
            part = _typo(rng, part)
        styled.append(part)
    text = "".join(styled)
    if tone == "casual" and text.endswith((".", "?")) and rng.random() < 0.6:
        text = text[:-1]
    return text


def _render(
    rng: random.Random,
    template: str,
    entities: dict[str, Any],
    tone: str,
    wrap: bool = True,
    greet: bool = True,
) -> str:
    """Style a template for a tone, then fill in the entity values verbatim."""
    styled = _style(rng, template, tone, wrap, greet)
    return styled.format_map({k: str(v) for k, v in entities.items()})


def _pick_tone(rng: random.Random, allowed: tuple[str, ...] = _TONES) -> str:
    weights = [w for t, w in zip(_TONES, _TONE_WEIGHTS, strict=True) if t in allowed]
    return rng.choices([t for t in _TONES if t in allowed], weights=weights)[0]
