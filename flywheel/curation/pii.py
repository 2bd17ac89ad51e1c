"""Optional PII redaction of logged LLM calls before they become datasets (``curation.pii``).

A :class:`Redactor` replaces e-mail addresses, phone numbers, payment card numbers, IP addresses
and user-defined patterns with a token such as ``[EMAIL]`` in every free-text part of a record:
message contents, tool results and tool-call arguments, on the request and the response side.
Tool schemas, roles, names, ids and timestamps are never touched.

Detectors run one after another, in a fixed order: custom patterns first (in configuration
order, so a specific rule wins over a generic one), then e-mail, card, IP and phone. Each later
detector sees the earlier ones' tokens, so overlaps resolve the same way every time: an e-mail
whose local part is digits is an e-mail, not a phone; a Luhn-valid card is never split into
phone numbers. Rounds of all detectors repeat until one replaces nothing, so redacting twice
changes nothing more. Every built-in detector has cheap prechecks (an ``@``, a digit, a short
shape such as ``1.2.3`` for IPv4) that skip most texts, and a pattern linear in the text's
length (possessive quantifiers, bounded or delimiter-separated repetitions).

Records are treated as read-only: only containers on the path to a change are copied, so a
record without personal data comes back as the very same object.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from flywheel.config import PIIConfig

__all__ = [
    "BUILTIN_DETECTORS",
    "BUILTIN_ORDER",
    "DEFAULT_REPLACEMENT",
    "Detector",
    "Redactor",
    "build_redactor",
    "custom_detector",
    "luhn_valid",
]

DEFAULT_REPLACEMENT = "[{name}]"
"""Token template; ``{name}`` becomes the detector's name in capitals (``[EMAIL]``)."""

BUILTIN_ORDER: tuple[str, ...] = ("email", "card", "ip", "phone")
"""Order the built-in detectors run in (after any custom ones)."""


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of personal data: its pattern, cheap prechecks and an optional validator.

    The pattern only runs on texts with a digit (when ``needs_digit``) where one of ``hints``
    (simple patterns every match contains, when given) occurs; a match is replaced only if
    ``validate`` (when given) accepts it.
    """

    name: str
    pattern: re.Pattern[str]
    hints: tuple[re.Pattern[str], ...] = ()
    needs_digit: bool = False
    validate: Callable[[str], bool] | None = None


def luhn_valid(candidate: str) -> bool:
    """Whether ``candidate`` has 13–19 digits that pass the Luhn checksum of card numbers."""
    digits = [ord(char) - 48 for char in candidate if "0" <= char <= "9"]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _phone_digits_ok(candidate: str) -> bool:
    """A phone number has 7 to 15 digits (E.164 allows at most 15)."""
    return 7 <= sum(char.isdigit() for char in candidate) <= 15


def _has_digit(candidate: str) -> bool:
    """IPv6 shapes without any digit (``dead::beef``, ``a::b``) are far likelier to be code."""
    return _DIGIT.search(candidate) is not None


_DIGIT = re.compile(r"[0-9]")
_MAX_ROUNDS = 8
"""Bound on redaction rounds, for custom patterns that match their own token."""

# Local part capped at 64 characters (RFC 5321), which also keeps the scan linear: no start
# position reads more than 64 characters before giving up. Domain labels cannot contain dots,
# so the label repetition has a single way to split the domain.
_EMAIL = r"[A-Za-z0-9._%+-]{1,64}+@(?:[A-Za-z0-9-]++\.)+[A-Za-z]{2,}+"

# 16 digits in groups of four, Amex/Diners 4-6-5 / 4-6-4 with one consistent separator, or
# 13–19 digits in a row; never glued to a letter or digit. Luhn then rules out 9 in 10 ids.
_CARD = r"""
    (?=\d) (?<!\w)
    (?: \d{13,19}+
      | \d{4} (?P<sep>[ -]) \d{4} (?P=sep) \d{4} (?P=sep) \d{4}
      | \d{4} (?P<sep6>[ -]) \d{6} (?P=sep6) \d{4,5}+
    )
    (?!\w)
"""

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6_FORMS = (
    rf"(?:{_H}:){{6}}{_IPV4}",  # embedded IPv4, full form
    rf"(?:{_H}:){{1,4}}:{_IPV4}",  # embedded IPv4, compressed
    rf"::(?:[Ff]{{4}}(?::0{{1,4}})?:)?{_IPV4}",  # ::ffff:192.0.2.1, ::192.0.2.1
    rf"(?:{_H}:){{7}}{_H}",  # full form
    rf"(?:{_H}:){{1,7}}:",  # fe80::
    rf"(?:{_H}:){{1,6}}:{_H}",
    rf"(?:{_H}:){{1,5}}(?::{_H}){{1,2}}",
    rf"(?:{_H}:){{1,4}}(?::{_H}){{1,3}}",
    rf"(?:{_H}:){{1,3}}(?::{_H}){{1,4}}",
    rf"(?:{_H}:){{1,2}}(?::{_H}){{1,5}}",
    rf"{_H}:(?::{_H}){{1,6}}",
    rf"::{_H}(?::{_H}){{0,6}}",  # ::1
)
# IPv4 never starts right after a dot or ends before ".digit", so the middle of a longer dotted
# number (a version string such as 1.2.3.4.5) is left alone; nor does it end before "::", where
# an IPv6 address could not start once the IPv4 one became a token (idempotence).
_IP = rf"""
    (?=[0-9A-Fa-f:])  # cheap first-character guard: the alternatives are costly to try
    (?: (?<![\w:.]) (?:{"|".join(_IPV6_FORMS)}) (?![\w:]|\.\d)
      | (?<![\w.]) {_IPV4} (?!\w|\.\d|::)
    )
"""

# Phone numbers need a leading "+" or separators, so plain numbers (order ids, years, amounts)
# never match; the validator then requires 7–15 digits. A number may not start inside a word or
# a longer number, except where it opens with "+" or "(": those are delimiters themselves, and
# the exception keeps redaction idempotent when two numbers touch ("555-123-4567+44 …").
_PHONE = r"""
  (?=[+(0-9])  # cheap first-character guard
  (?:
    # international: +CC then digit groups, optionally separated, "(0)" style groups allowed
    (?<![A-Za-z_+]) \+ \d{1,3}+ (?: [ .-]?+ (?: \( \d{1,5}+ \) | \d{1,5}+ ) )*+
    # North American: 555-123-4567, 1-800-555-0199, (555) 123-4567, 1 (555) 123-4567
  | (?: (?<![\w+.-]) (?:1[ .-])? [2-9]\d\d [ .-]
      | (?: (?<![\w+.-]) 1[ .-] )? \( [2-9]\d\d \) [ .-]?
    ) \d{3} [ .-] \d{4} (?!\w|[.-]\d)
    # trunk-prefix national: 020 7946 0958, 07700 900123, (030) 1234-5678
  | (?: (?<![\w+.-]) 0\d{1,4}+ | \( 0\d{1,4}+ \) ) (?: [ -] \d{3,8}+ )+ (?!\w|[.-]\d)
    # pairs: 01 23 45 67 89
  | (?<![\w+.-]) 0\d (?: [ ]\d\d ){3,4} (?!\w|[.-]\d)
  )
"""


def _re(pattern: str) -> re.Pattern[str]:
    """Built-in patterns: ASCII classes (``\\d`` is 0-9), whitespace and comments ignored."""
    return re.compile(pattern, re.ASCII | re.VERBOSE)


BUILTIN_DETECTORS: Mapping[str, Detector] = MappingProxyType(
    {
        "email": Detector("email", _re(_EMAIL), hints=(_re("@"),)),
        "card": Detector(
            "card",
            _re(_CARD),
            hints=(_re(r"\d{4}[ -]?\d{4}"),),
            needs_digit=True,
            validate=luhn_valid,
        ),
        "ip": Detector(
            "ip",
            _re(_IP),
            hints=(_re(r"\d\.\d{1,3}\.\d"), _re(r":[0-9A-Fa-f]{0,4}:")),
            needs_digit=True,
            validate=_has_digit,
        ),
        "phone": Detector(
            "phone",
            _re(_PHONE),
            hints=(_re(r"\+\d"), _re(r"[\d)][ .-]\d{3}"), _re(r"\d[ ]\d\d[ ]\d\d")),
            needs_digit=True,
            validate=_phone_digits_ok,
        ),
    }
)
"""The built-in detectors by configuration name."""


def custom_detector(name: str, pattern: str) -> Detector:
    """A user-defined detector: ``pattern`` runs on every text (no precheck)."""
    return Detector(name, re.compile(pattern))


class Redactor:
    """Replaces personal data in texts and logged calls; ``counts`` tallies replacements by name.

    ``counts`` accumulates over every call, for the curation report.
    """

    def __init__(
        self, detectors: Iterable[Detector], replacement: str = DEFAULT_REPLACEMENT
    ) -> None:
        self.detectors: tuple[Detector, ...] = tuple(detectors)
        self.replacement = replacement
        self.counts: Counter[str] = Counter()
        self._counting = threading.Lock()  # datasets may be redacted from several threads
        self._steps = tuple((detector, self._replacer(detector)) for detector in self.detectors)

    def token(self, name: str) -> str:
        """What replaces a match of detector ``name`` (``{name}`` in the template → capitals)."""
        return self.replacement.replace("{name}", name.upper())

    def redact_text(self, text: str) -> str:
        """``text`` with every match replaced; the same object when nothing matched.

        A replacement changes its neighbours' context (a number glued to a replaced one is no
        longer glued to digits), so rounds repeat until one finds nothing, which makes redaction
        idempotent. With built-in detectors (and a token free of digits and ``@``) every
        replacement removes a digit or an ``@``, so this ends; ``_MAX_ROUNDS`` bounds the rest.
        """
        if not text:
            return text
        result = text
        for _ in range(_MAX_ROUNDS):
            redacted = self._round(result)
            if redacted == result:
                break
            result = redacted
        return text if result == text else result

    def _round(self, text: str) -> str:
        """Every detector once, in order, each on the previous one's output."""
        has_digit: bool | None = None
        for detector, replace in self._steps:
            if detector.needs_digit:
                if has_digit is None:
                    has_digit = _DIGIT.search(text) is not None
                if not has_digit:
                    continue
            if detector.hints and not any(hint.search(text) for hint in detector.hints):
                continue
            text = detector.pattern.sub(replace, text)
        return text

    def redact_messages(self, messages: list[Any]) -> list[Any]:
        """Chat messages with personal data replaced (the same list when nothing matched)."""
        return _map_list(messages, self._message)

    def redact_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """The logged call with personal data replaced in request and response messages.

        Never mutates ``record``; unchanged parts (all of it, when nothing matched) are shared.
        Anything not shaped as expected is passed through as it is.
        """
        if not isinstance(record, dict):
            return record
        result = record
        request = record.get("request")
        if isinstance(request, dict):
            messages = request.get("messages")
            if isinstance(messages, list):
                new_messages = _map_list(messages, self._message)
                if new_messages is not messages:
                    result = {**result, "request": {**request, "messages": new_messages}}
        response = record.get("response")
        if isinstance(response, dict):
            choices = response.get("choices")
            if isinstance(choices, list):
                new_choices = _map_list(choices, self._choice)
                if new_choices is not choices:
                    result = {**result, "response": {**response, "choices": new_choices}}
        return result

    def _replacer(self, detector: Detector) -> Callable[[re.Match[str]], str]:
        token = self.token(detector.name)
        name, validate = detector.name, detector.validate

        def replace(match: re.Match[str]) -> str:
            found = match.group()
            if not found or (validate is not None and not validate(found)):
                return found
            with self._counting:
                self.counts[name] += 1
            return token

        return replace

    def _choice(self, choice: Any) -> Any:
        if not isinstance(choice, dict):
            return choice
        message = choice.get("message")
        new_message = self._message(message)
        return choice if new_message is message else {**choice, "message": new_message}

    def _message(self, message: Any) -> Any:
        """A chat message with its content and its tool calls' arguments redacted."""
        if not isinstance(message, dict):
            return message
        result = message
        content = message.get("content")
        new_content = self._content(content)
        if new_content is not content:
            result = {**result, "content": new_content}
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            new_calls = _map_list(calls, self._call)
            if new_calls is not calls:
                result = {**result, "tool_calls": new_calls}
        legacy = message.get("function_call")  # pre-tools OpenAI shape: same arguments field
        new_legacy = self._function(legacy)
        if new_legacy is not legacy:
            result = {**result, "function_call": new_legacy}
        return result

    def _content(self, content: Any) -> Any:
        if isinstance(content, str):
            return self.redact_text(content)
        if isinstance(content, list):
            return _map_list(content, self._part)
        return content

    def _part(self, part: Any) -> Any:
        """A content part: ``{"type": "text", "text": ...}`` (other kinds pass through)."""
        if isinstance(part, str):
            return self.redact_text(part)
        if not isinstance(part, dict):
            return part
        text = part.get("text")
        if not isinstance(text, str):
            return part
        new_text = self.redact_text(text)
        return part if new_text is text else {**part, "text": new_text}

    def _call(self, call: Any) -> Any:
        if not isinstance(call, dict):
            return call
        function = call.get("function")
        new_function = self._function(function)
        return call if new_function is function else {**call, "function": new_function}

    def _function(self, function: Any) -> Any:
        if not isinstance(function, dict):
            return function
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            new_arguments = self._string_arguments(arguments)
        elif isinstance(arguments, dict | list):
            new_arguments = self._json(arguments)
        else:
            return function
        return function if new_arguments is arguments else {**function, "arguments": new_arguments}

    def _string_arguments(self, raw: str) -> str:
        """JSON arguments redacted inside their string values and re-serialised compactly.

        Unchanged arguments keep their original text; text that is not JSON is redacted as is.
        """
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self.redact_text(raw)
        redacted = self._json(parsed)
        if redacted is parsed:
            return raw
        try:
            return orjson.dumps(redacted).decode("utf-8")
        except orjson.JSONEncodeError:  # e.g. nesting deeper than orjson writes
            return json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))

    def _json(self, value: Any) -> Any:
        """A JSON value with its strings redacted; keys and non-strings are kept."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, list):
            return _map_list(value, self._json)
        if isinstance(value, dict):
            result: dict[str, Any] | None = None
            for key, item in value.items():
                new_item = self._json(item)
                if new_item is not item:
                    if result is None:
                        result = dict(value)
                    result[key] = new_item
            return value if result is None else result
        return value


def _map_list(items: list[Any], transform: Callable[[Any], Any]) -> list[Any]:
    """``transform`` applied to each item; ``items`` itself when no item changed."""
    result: list[Any] | None = None
    for index, item in enumerate(items):
        new_item = transform(item)
        if new_item is not item:
            if result is None:
                result = list(items)
            result[index] = new_item
    return items if result is None else result


def build_redactor(config: PIIConfig) -> Redactor | None:
    """The redactor ``config`` asks for, or None when redaction is off or has no detector."""
    if not config.enabled:
        return None
    chosen = set(config.detectors)
    detectors = [custom_detector(name, pattern) for name, pattern in config.custom.items()]
    detectors += [BUILTIN_DETECTORS[name] for name in BUILTIN_ORDER if name in chosen]
    if not detectors:
        return None
    return Redactor(detectors, config.replacement)
