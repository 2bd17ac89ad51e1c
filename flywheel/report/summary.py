"""Short texts about a run's outcome: money, intervals, the recommendation line, notifications.

Shared by the CLI, the HTML report and the webhook, so all three say the same thing the same
way. Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flywheel.schemas import FlywheelRunResult, Recommendation, RunStatus, ScoreInterval

__all__ = [
    "interval_text",
    "money",
    "notification_event",
    "notification_payload",
    "notification_text",
    "percent",
    "recommendation_line",
    "score_text",
]

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def money(value: float | None, currency: str = "USD") -> str:
    """``$0.0123``, ``$0.100``, ``$1.25``, ``$1,234`` (three significant digits below 1);
    ``-`` when unknown."""
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        number = f"{value:,.0f}"
    elif magnitude >= 1:
        number = f"{value:,.2f}"
    elif magnitude == 0:
        number = "0"
    else:
        number = f"{value:#.3g}"
    symbol = _SYMBOLS.get(currency.upper())
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


def percent(fraction: float | None) -> str:
    """``92%``, ``99.8%`` near the ends (never a rounded 100% or 0%), ``-`` when unknown;
    negative means more expensive."""
    if fraction is None:
        return "-"
    value = fraction * 100
    if round(value) in (0, 100) and value not in (0.0, 100.0):
        return f"{value:.1f}%"
    return f"{value:.0f}%"


def interval_text(interval: ScoreInterval | None, digits: int = 2) -> str:
    """``[0.85, 0.98]``, or an empty string when there is no interval."""
    if interval is None:
        return ""
    return f"[{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def score_text(value: float | None, interval: ScoreInterval | None = None) -> str:
    """``0.950 [0.85, 0.98]``; ``-`` when the score is unknown."""
    if value is None:
        return "-"
    text = f"{value:.3f}"
    return f"{text} {interval_text(interval)}" if interval is not None else text


def recommendation_line(rec: Recommendation) -> str:
    """One line: the recommended candidate with score, interval, cost and saving, or why none."""
    if rec.candidate is None or rec.kind is None:
        return f"No recommendation: {rec.reason}"
    parts = [f"{rec.candidate} ({rec.kind.value}, model {rec.model})"]
    if rec.metric is not None:
        parts.append(f"{rec.metric} {score_text(rec.score, rec.interval)}")
    if rec.cost_per_1k is not None:
        cost = f"{money(rec.cost_per_1k, rec.currency)} per 1,000 requests"
        if rec.savings_fraction is not None:
            cost += f", saves {percent(rec.savings_fraction)} against production"
        parts.append(cost)
    line = "Recommendation: " + " — ".join(parts)
    if rec.changed:
        before = (
            f"{rec.previous_candidate} ({rec.previous_kind.value})"
            if rec.previous_candidate is not None and rec.previous_kind is not None
            else "none"
        )
        line += f" (changed; previous run: {before})"
    return line


def notification_event(run: FlywheelRunResult, events: Sequence[str]) -> str | None:
    """The event to notify about for a finished run, or None when ``events`` wants none of it.

    The run's status (completed, failed, cancelled) when asked for, else
    ``recommendation_changed`` when that is asked for and it changed.
    """
    status = run.status.value
    if run.status != RunStatus.RUNNING and status in events:
        return status
    changed = run.recommendation is not None and run.recommendation.changed
    if changed and "recommendation_changed" in events:
        return "recommendation_changed"
    return None


def notification_text(run: FlywheelRunResult, event: str, link: str | None = None) -> str:
    """The message: what happened to the run, then the recommendation (Slack ``text``)."""
    head = f"data-flywheel run {run.run_id} (workload {run.workload_id})"
    if event == "recommendation_changed":
        head += ": the recommendation changed"
    else:
        head += f" {run.status.value}"
    lines = [head + (f": {run.error}" if run.error and run.status != RunStatus.COMPLETED else "")]
    if run.recommendation is not None:
        lines.append(recommendation_line(run.recommendation))
    if link:
        lines.append(link)
    return "\n".join(lines)


def notification_payload(
    run: FlywheelRunResult, event: str, link: str | None = None
) -> dict[str, Any]:
    """The webhook's JSON body: Slack's ``text`` plus the facts as fields (no prompts, no
    secrets)."""
    rec = run.recommendation
    return {
        "text": notification_text(run, event, link),
        "event": event,
        "run_id": run.run_id,
        "workload_id": run.workload_id,
        "client_id": run.client_id,
        "status": run.status.value,
        "error": run.error,
        "recommendation": rec.model_dump(mode="json") if rec is not None else None,
        "link": link,
    }
