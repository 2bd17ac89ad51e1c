"""The HTML report: one self-contained file, every section present, and it renders in Chromium."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from flywheel.report.charts import latency_chart, nice_ticks, score_cost_chart
from flywheel.report.html import SECTIONS, render_report
from flywheel.schemas import EvalKind, FlywheelRunResult, LatencySummary, RunStatus
from tests.report.builders import STARTED, finished_run

EXAMPLES = {
    "small/base": [
        {
            "index": 3,
            "divergence": 1.0,
            "reason": "wrong tool: production called lookup_order, candidate called cancel_order",
            "prompt": "Where is my order <script>alert('x')</script>?",
            "expected": {"tool_calls": [{"name": "lookup_order", "arguments": {"id": 42}}]},
            "candidate": {"tool_calls": [{"name": "cancel_order", "arguments": {"id": 42}}]},
            "scores": {"function_name_accuracy": 0.0},
        }
    ]
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class PageAudit(HTMLParser):
    """Collects what a self-contained page must not have, and the section ids it has."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.tags: dict[str, int] = {}
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            if name == "id" and value:
                self.ids.append(value)
            if name in ("src", "href", "xlink:href", "srcset", "action", "poster") and value:
                self.external.append(f"{tag} {name}={value}")
            if name == "style" and value and "url(" in value:
                self.external.append(f"{tag} style={value}")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def audit(page: str) -> PageAudit:
    parser = PageAudit()
    parser.feed(page)
    parser.close()
    return parser


def test_report_is_self_contained_with_every_section() -> None:
    page = render_report(finished_run(), EXAMPLES)
    found = audit(page)
    assert found.external == []  # no src, href, url(): nothing to fetch
    assert "script" not in found.tags and "link" not in found.tags and "img" not in found.tags
    assert "@import" not in page and "url(" not in page
    assert [i for i in found.ids if i in SECTIONS] == list(SECTIONS)
    assert found.tags["svg"] >= 2  # score-vs-cost and latency charts
    text = " ".join(found.text)
    assert "Recommendation: small (base" in text
    assert "function_name_and_args_accuracy ≥ 0.8" in text
    assert "Production (big-70b): $1.35 per 1,000 requests" in text
    assert "lookup_order" in text and "no_tool" in text  # per-tool accuracy
    assert "400 logged calls → 385 selected" in text  # curation
    assert "wrong tool: production called lookup_order" in text  # divergent examples
    assert "acceptance:" in text and "pricing:" in text  # the effective configuration


def test_untrusted_text_is_escaped() -> None:
    page = render_report(finished_run(), EXAMPLES)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_report_of_a_run_without_results() -> None:
    failed = FlywheelRunResult(
        run_id="flywheel-w-1",
        workload_id="w",
        status=RunStatus.FAILED,
        started_at=STARTED,
        error="too few records in the logs",
    )
    page = render_report(failed)
    found = audit(page)
    assert [i for i in found.ids if i in SECTIONS] == list(SECTIONS)
    text = " ".join(found.text)
    assert "No recommendation: no evaluation completed (too few records in the logs)" in text
    assert "No datasets were built." in text
    assert "The run ended before its configuration was resolved." in text


def test_report_of_a_run_recorded_before_assessments() -> None:
    page = render_report(finished_run(assess=False), {})
    text = " ".join(audit(page).text)
    assert "Recommendation: small (base" in text
    assert "No divergent examples were saved." in text


def test_nice_ticks() -> None:
    assert nice_ticks(1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.013)[-1] >= 0.013
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(float("nan")) == [0.0, 1.0]


def test_score_cost_chart_uses_a_log_axis_for_wide_cost_ranges() -> None:
    run = finished_run()
    assert run.assessment is not None
    evals = run.assessment.evals
    wide = score_cost_chart(evals, production_cost=100.0, target=0.8, recommended="small/base")
    assert "(log scale)" in wide and "target 0.8" in wide and "production" in wide
    narrow = score_cost_chart(evals, production_cost=0.05)
    assert "(log scale)" not in narrow
    for e in evals:
        assert e.label in wide


def test_score_cost_chart_puts_unpriced_evaluations_aside() -> None:
    run = finished_run()
    assert run.assessment is not None
    unpriced = [
        e.model_copy(update={"cost": e.cost.model_copy(update={"cost_per_1k": None})})
        for e in run.assessment.evals
    ]
    chart = score_cost_chart(unpriced)
    assert "no price" in chart
    assert audit(chart).tags["circle"] >= len(unpriced)
    assert "<svg" in score_cost_chart([])


def test_latency_chart_draws_each_histogram() -> None:
    summary = LatencySummary(
        n=6,
        p50_s=0.3,
        p95_s=0.9,
        max_s=1.0,
        histogram_edges_s=[0.0, 0.5, 1.0],
        histogram_counts=[4, 2],
    )
    chart = latency_chart(
        [("small base", EvalKind.BASE, summary), ("a <b>", EvalKind.ICL, summary)]
    )
    found = audit(chart)
    assert found.tags["rect"] == 4 and "a &lt;b&gt;" in chart
    assert "p50" in chart and "p95" in chart


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(render_report(finished_run(), EXAMPLES), encoding="utf-8")
    args: list[Any] = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*args, "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    # The browser parsed the page into the same sections and drew the charts.
    found = audit(dom)
    assert [i for i in found.ids if i in SECTIONS] == list(SECTIONS)
    assert found.tags.get("svg", 0) >= 2
    assert "Recommendation: small (base" in dom
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [
            *args,
            "--hide-scrollbars",
            "--window-size=1200,1800",
            f"--screenshot={screenshot}",
            report.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a page with content, not blank
