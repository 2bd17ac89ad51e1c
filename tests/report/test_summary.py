"""Short texts shared by the CLI, the report and the webhook."""

from __future__ import annotations

import pytest

from flywheel.report.summary import (
    interval_text,
    money,
    notification_event,
    notification_payload,
    notification_text,
    percent,
    recommendation_line,
    score_text,
)
from flywheel.schemas import EvalKind, Recommendation, RunStatus, ScoreInterval
from tests.report.builders import finished_run


@pytest.mark.parametrize(
    ("value", "currency", "text"),
    [
        (None, "USD", "-"),
        (0.0, "USD", "$0"),
        (0.0123456, "USD", "$0.0123"),
        (0.1, "USD", "$0.100"),
        (1.254, "USD", "$1.25"),
        (1234.4, "USD", "$1,234"),
        (-0.5, "USD", "$-0.500"),
        (2.5, "EUR", "€2.50"),
        (2.5, "CHF", "2.50 CHF"),
    ],
)
def test_money(value: float | None, currency: str, text: str) -> None:
    assert money(value, currency) == text


def test_percent_interval_and_score() -> None:
    assert percent(None) == "-" and percent(0.923) == "92%" and percent(-0.1) == "-10%"
    assert percent(0.998) == "99.8%" and percent(1.0) == "100%" and percent(0.003) == "0.3%"
    assert percent(0.0) == "0%"
    interval = ScoreInterval(low=0.8512, high=0.98, n=40)
    assert interval_text(interval) == "[0.85, 0.98]" and interval_text(None) == ""
    assert score_text(0.9, interval) == "0.900 [0.85, 0.98]"
    assert score_text(None) == "-" and score_text(0.5) == "0.500"


def test_recommendation_line() -> None:
    run = finished_run()
    assert run.recommendation is not None
    line = recommendation_line(run.recommendation)
    assert line.startswith("Recommendation: small (base, model model-base) — ")
    assert "function_name_and_args_accuracy 1.000 [0.91, 1.00]" in line
    assert "$0.0400 per 1,000 requests, saves 97% against production" in line
    none = Recommendation(reason="no evaluation completed")
    assert recommendation_line(none) == "No recommendation: no evaluation completed"
    changed = run.recommendation.model_copy(
        update={"changed": True, "previous_candidate": "tiny", "previous_kind": EvalKind.ICL}
    )
    assert recommendation_line(changed).endswith("(changed; previous run: tiny (icl))")


def test_notification_event_by_status_then_change() -> None:
    run = finished_run()
    assert notification_event(run, ["completed"]) == "completed"
    assert notification_event(run, ["failed"]) is None
    assert run.recommendation is not None
    run.recommendation.changed = True
    assert notification_event(run, ["recommendation_changed"]) == "recommendation_changed"
    assert notification_event(run, ["completed", "recommendation_changed"]) == "completed"
    failed = run.model_copy(update={"status": RunStatus.FAILED, "error": "boom"})
    assert notification_event(failed, ["failed"]) == "failed"
    running = run.model_copy(update={"status": RunStatus.RUNNING})
    assert notification_event(running, ["completed"]) is None


def test_notification_payload_is_slack_compatible() -> None:
    run = finished_run()
    payload = notification_payload(run, "completed", "http://ui/run")
    assert payload["text"].splitlines()[0] == (
        "data-flywheel run flywheel-support-20261120T031500Z (workload support) completed"
    )
    assert "Recommendation: small (base" in payload["text"]
    assert payload["text"].endswith("http://ui/run")
    assert payload["recommendation"]["candidate"] == "small"
    assert (payload["event"], payload["status"], payload["workload_id"]) == (
        "completed",
        "completed",
        "support",
    )
    failed = run.model_copy(
        update={"status": RunStatus.FAILED, "error": "no candidate could be evaluated"}
    )
    assert (
        notification_text(failed, "failed")
        .splitlines()[0]
        .endswith("failed: no candidate could be evaluated")
    )
    assert "the recommendation changed" in notification_text(run, "recommendation_changed")
