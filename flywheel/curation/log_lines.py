"""Parse one JSONL log line into a :class:`LogRecord`, or say exactly why it cannot be used.

Pure: no I/O. Loaders call :func:`parse_log_line` for every line of a file so that nothing is
dropped silently: each non-blank line becomes either a record or a :class:`Rejection` whose reason
a person can act on (``missing field: request``, ``bad JSON: unexpected end of data at column 8``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from flywheel.schemas import LogRecord

__all__ = ["Rejection", "parse_log_line"]

_MAX_SHOWN = 40
"""Longest excerpt of a bad value quoted in a reason."""

_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line that could not be turned into a log record, and why."""

    line_no: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"


def parse_log_line(
    line: bytes | str,
    line_no: int,
    *,
    workload_id: str | None = None,
    client_id: str | None = None,
) -> LogRecord | Rejection | None:
    """One JSONL line as a :class:`LogRecord`, a :class:`Rejection`, or ``None`` for a blank line.

    ``workload_id``/``client_id``, when given, replace the line's values, so lines may omit them.
    ``line_no`` is only copied into a rejection (callers count lines from 1). A UTF-8 byte order
    mark at the start of the line is ignored.
    """
    line = _without_bom(line).rstrip()  # the line break, so columns count within this line
    if not line.lstrip():
        return None
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return Rejection(line_no, _decode_error(line, exc))
    if not isinstance(data, dict):
        return Rejection(line_no, f"not a JSON object (got {_type_name(data)})")
    if workload_id is not None:
        data["workload_id"] = workload_id
    if client_id is not None:
        data["client_id"] = client_id
    problem = _check_fields(data)
    if problem is not None:
        return Rejection(line_no, problem)
    try:
        return LogRecord.model_validate(data)
    except ValidationError as exc:
        return Rejection(line_no, _validation_reason(exc))
    except (OverflowError, OSError, ValueError):
        # datetime.fromtimestamp() on an epoch value far outside the calendar.
        return Rejection(line_no, f"bad value: timestamp is out of range ({data['timestamp']!r})")


def _without_bom(line: bytes | str) -> bytes | str:
    if isinstance(line, bytes):
        return line.removeprefix(_UTF8_BOM)
    return line.removeprefix("\ufeff")


def _decode_error(line: bytes | str, exc: orjson.JSONDecodeError) -> str:
    if isinstance(line, bytes):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            return f"not UTF-8: invalid byte 0x{line[bad.start]:02x} at byte {bad.start + 1}"
    elif "surrogates not allowed" in exc.msg:
        return "not UTF-8: the text holds a lone surrogate"
    return f"bad JSON: {exc.msg} at column {exc.colno}"


def _check_fields(data: dict[str, Any]) -> str | None:
    """The first problem with the fields the pipeline needs, in a stable order, or None."""
    for name in ("workload_id", "client_id"):
        if name not in data:
            return f"missing field: {name}"
        value = data[name]
        if not isinstance(value, str):
            return f"wrong type: {name} must be a string (got {_type_name(value)})"
        if not value:
            return f"bad value: {name} is empty"
    if "timestamp" not in data:
        return "missing field: timestamp"
    timestamp = data["timestamp"]
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float | str):
        return (
            "wrong type: timestamp must be epoch seconds or an ISO 8601 string "
            f"(got {_type_name(timestamp)})"
        )
    for name, inner in (("request", "messages"), ("response", "choices")):
        if name not in data:
            return f"missing field: {name}"
        value = data[name]
        if not isinstance(value, dict):
            return f"wrong type: {name} must be an object (got {_type_name(value)})"
        if inner not in value:
            return f"missing field: {name}.{inner}"
        if not isinstance(value[inner], list):
            return f"wrong type: {name}.{inner} must be a list (got {_type_name(value[inner])})"
    return None


def _validation_reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = ".".join(str(part) for part in first.get("loc", ())) or "record"
    if loc == "timestamp":
        value = first.get("input")
        if isinstance(value, int | float):
            reason = f"bad value: timestamp is out of range ({_shown(value)})"
        else:
            reason = f"bad value: timestamp is not an ISO 8601 date-time ({_shown(value)})"
    else:
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        reason = f"bad value: {loc}: {message}"
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more)"
    return reason


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__
