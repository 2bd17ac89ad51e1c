"""parse_log_line: every line becomes a record, a precise rejection, or None when blank."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from flywheel.curation.log_lines import Rejection, parse_log_line
from flywheel.schemas import LogRecord

REQUEST = {"model": "big", "messages": [{"role": "user", "content": "hi"}]}
RESPONSE = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}]}


def line(**fields: object) -> bytes:
    """A JSONL line holding a valid record, with ``fields`` replacing or (as None) removing keys."""
    data: dict[str, object] = {
        "workload_id": "w1",
        "client_id": "c1",
        "timestamp": 1_700_000_000,
        "request": REQUEST,
        "response": RESPONSE,
    }
    for key, value in fields.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return orjson.dumps(data)


def test_valid_line_becomes_a_record() -> None:
    parsed = parse_log_line(line(), 1)
    assert isinstance(parsed, LogRecord)
    assert (parsed.workload_id, parsed.client_id) == ("w1", "c1")
    assert parsed.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert parsed.request == REQUEST
    assert parsed.response == RESPONSE


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1_700_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (1_700_000_000.5, datetime(2023, 11, 14, 22, 13, 20, 500_000, tzinfo=UTC)),
        (1_700_000_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),  # millis
        ("2023-01-01T00:00:00Z", datetime(2023, 1, 1, tzinfo=UTC)),
        ("2023-01-01T02:00:00+02:00", datetime(2023, 1, 1, tzinfo=UTC)),
        ("2023-01-01T00:00:00", datetime(2023, 1, 1, tzinfo=UTC)),  # naive means UTC
    ],
)
def test_timestamps_epoch_seconds_or_iso(timestamp: object, expected: datetime) -> None:
    parsed = parse_log_line(line(timestamp=timestamp), 1)
    assert isinstance(parsed, LogRecord)
    assert parsed.timestamp == expected
    assert parsed.timestamp.tzinfo is not None


def test_str_and_bytes_parse_alike() -> None:
    as_bytes = parse_log_line(line(), 1)
    as_str = parse_log_line(line().decode(), 1)
    assert isinstance(as_bytes, LogRecord)
    assert as_str == as_bytes


def test_extra_top_level_keys_are_kept() -> None:
    parsed = parse_log_line(line(description="router"), 1)
    assert isinstance(parsed, LogRecord)
    assert parsed.model_dump()["description"] == "router"


@pytest.mark.parametrize("blank", [b"", b"\n", b"   \r\n", b"\t", "  ", b"\xef\xbb\xbf\n"])
def test_blank_lines_are_skipped(blank: bytes | str) -> None:
    assert parse_log_line(blank, 7) is None


def test_byte_order_mark_is_ignored() -> None:
    assert isinstance(parse_log_line(b"\xef\xbb\xbf" + line() + b"\r\n", 1), LogRecord)
    assert isinstance(parse_log_line("\ufeff" + line().decode(), 1), LogRecord)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"workload_id": "w1"', "bad JSON: unexpected end of data at column 21"),
        (b"not json", "bad JSON: invalid literal, expected 'null' at column 1"),
        (b'{"a": 1} {"b": 2}', "bad JSON: unexpected content after document at column 10"),
        (b"[1,]", "bad JSON: trailing comma is not allowed at column 3"),
        (b"NaN", "bad JSON: unexpected character, expected a JSON value at column 1"),
        (b"[1, 2]", "not a JSON object (got array)"),
        (b'"text"', "not a JSON object (got str)"),
        (b"42", "not a JSON object (got int)"),
        (b"null", "not a JSON object (got null)"),
        (b'{"a": "caf\xe9"}', "not UTF-8: invalid byte 0xe9 at byte 11"),
        (b"\xff\xfe{}", "not UTF-8: invalid byte 0xff at byte 1"),
        ('{"a": "\ud800"}', "not UTF-8: the text holds a lone surrogate"),
    ],
)
def test_unparseable_lines(raw: bytes | str, reason: str) -> None:
    assert parse_log_line(raw, 12) == Rejection(12, reason)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"workload_id": None}, "missing field: workload_id"),
        ({"client_id": None}, "missing field: client_id"),
        ({"timestamp": None}, "missing field: timestamp"),
        ({"request": None}, "missing field: request"),
        ({"response": None}, "missing field: response"),
        ({"request": {"model": "m"}}, "missing field: request.messages"),
        ({"response": {"id": "x"}}, "missing field: response.choices"),
    ],
)
def test_missing_fields(fields: dict[str, object], reason: str) -> None:
    assert parse_log_line(line(**fields), 3) == Rejection(3, reason)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"workload_id": 5}, "wrong type: workload_id must be a string (got int)"),
        ({"client_id": ["a"]}, "wrong type: client_id must be a string (got array)"),
        ({"workload_id": ""}, "bad value: workload_id is empty"),
        (
            {"timestamp": [1]},
            "wrong type: timestamp must be epoch seconds or an ISO 8601 string (got array)",
        ),
        (
            {"timestamp": True},
            "wrong type: timestamp must be epoch seconds or an ISO 8601 string (got bool)",
        ),
        (
            {"timestamp": {"s": 1}},
            "wrong type: timestamp must be epoch seconds or an ISO 8601 string (got object)",
        ),
        (
            {"timestamp": "yesterday"},
            "bad value: timestamp is not an ISO 8601 date-time ('yesterday')",
        ),
        ({"timestamp": 1e300}, "bad value: timestamp is out of range (1e+300)"),
        ({"request": "hi"}, "wrong type: request must be an object (got str)"),
        ({"response": []}, "wrong type: response must be an object (got array)"),
        ({"request": {"messages": "hi"}}, "wrong type: request.messages must be a list (got str)"),
        ({"response": {"choices": {}}}, "wrong type: response.choices must be a list (got object)"),
    ],
)
def test_wrong_types_and_values(fields: dict[str, object], reason: str) -> None:
    assert parse_log_line(line(**fields), 4) == Rejection(4, reason)


def test_long_bad_value_is_shortened() -> None:
    parsed = parse_log_line(line(timestamp="x" * 500), 1)
    assert isinstance(parsed, Rejection)
    assert len(parsed.reason) < 120
    assert parsed.reason.endswith("…)")


def test_overrides_make_ids_optional() -> None:
    parsed = parse_log_line(
        line(workload_id=None, client_id=None), 1, workload_id="W", client_id="C"
    )
    assert isinstance(parsed, LogRecord)
    assert (parsed.workload_id, parsed.client_id) == ("W", "C")


def test_overrides_replace_the_lines_values() -> None:
    parsed = parse_log_line(line(workload_id=17), 1, workload_id="W")
    assert isinstance(parsed, LogRecord)
    assert (parsed.workload_id, parsed.client_id) == ("W", "c1")


def test_one_override_leaves_the_other_field_required() -> None:
    assert parse_log_line(line(client_id=None), 9, workload_id="W") == Rejection(
        9, "missing field: client_id"
    )


def test_rejection_reads_as_line_and_reason() -> None:
    assert str(Rejection(5, "missing field: request")) == "line 5: missing field: request"


def test_iso_offset_keeps_the_instant() -> None:
    parsed = parse_log_line(line(timestamp="2024-05-01T12:00:00-05:00"), 1)
    assert isinstance(parsed, LogRecord)
    tz = timezone(timedelta(hours=-5))
    assert parsed.timestamp == datetime(2024, 5, 1, 12, tzinfo=tz)
