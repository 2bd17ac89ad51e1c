"""A run's log window: ``since``/``until`` as an ISO instant or a span before the run (``7d``).

Pure and deterministic, so the workflow resolves relative spans against ``workflow.now()``: a
scheduled run with ``since="7d"`` always curates the week before it was started.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flywheel.errors import ConfigError

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def resolve_instant(value: str | None, now: datetime, *, option: str) -> datetime | None:
    """``value`` as an aware UTC datetime: an ISO date/datetime (naive means UTC) or ``now``
    minus a span such as ``90m``, ``12h``, ``7d``, ``2w``. None stays None.

    Raises ConfigError naming ``option`` for anything else.
    """
    if value is None or not value.strip():
        return None
    span = _SPAN.match(value)
    if span:
        return now - timedelta(seconds=float(span.group(1)) * _UNIT_SECONDS[span.group(2)])
    try:
        instant = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(
            f"invalid {option} {value!r}: use an ISO date or time (2026-11-01, "
            "2026-11-01T12:00:00Z) or a span before now (90m, 12h, 7d, 2w)"
        ) from None
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def resolve_window(
    since: str | None, until: str | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """Both ends of a window; ConfigError if ``since`` is not before ``until``."""
    start = resolve_instant(since, now, option="since")
    end = resolve_instant(until, now, option="until")
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    return start, end
