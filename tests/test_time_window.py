"""since/until: ISO instants or spans before the run, resolved deterministically."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from flywheel.errors import ConfigError
from flywheel.time_window import resolve_instant, resolve_window

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90m", NOW - timedelta(minutes=90)),
        ("12h", NOW - timedelta(hours=12)),
        ("7d", NOW - timedelta(days=7)),
        (" 2w ", NOW - timedelta(weeks=2)),
        ("1.5d", NOW - timedelta(hours=36)),
        ("30s", NOW - timedelta(seconds=30)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:30:00Z", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T08:30:00+02:00", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
    ],
)
def test_instants_and_spans(value: str, expected: datetime) -> None:
    resolved = resolve_instant(value, NOW, option="since")
    assert resolved == expected
    assert resolved is not None and resolved.tzinfo is not None


def test_none_and_blank_mean_open() -> None:
    assert resolve_instant(None, NOW, option="since") is None
    assert resolve_instant("  ", NOW, option="until") is None
    assert resolve_window(None, None, NOW) == (None, None)


def test_result_is_utc() -> None:
    plus_five = timezone(timedelta(hours=5))
    resolved = resolve_instant(
        datetime(2026, 1, 1, 5, tzinfo=plus_five).isoformat(), NOW, option="until"
    )
    assert resolved == datetime(2026, 1, 1, tzinfo=UTC) and resolved.tzinfo == UTC


@pytest.mark.parametrize("value", ["yesterday", "7x", "-3d", "2026-13-01", "d7"])
def test_bad_values_name_the_option(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^invalid until .*ISO date"):
        resolve_instant(value, NOW, option="until")


def test_since_must_precede_until() -> None:
    assert resolve_window("7d", "1d", NOW) == (NOW - timedelta(days=7), NOW - timedelta(days=1))
    with pytest.raises(ConfigError, match="must be before until"):
        resolve_window("1d", "7d", NOW)
    with pytest.raises(ConfigError, match="must be before until"):
        resolve_window("2026-11-01", "2026-11-01", NOW)
