"""``flywheel report RUN --out report.html``: one self-contained HTML page about a run.

Everything is in the one file (inline CSS, inline SVG charts, no script, no link, no image to
fetch), so it can be mailed, attached to a ticket or opened offline. Sections, in order:
the recommendation, scores and costs (table and score-vs-cost chart), per-tool accuracy,
latency distribution, the curation report, the divergent examples and the effective
configuration. Pure: it takes the run's results and its examples and returns the HTML text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

import orjson
import yaml

from flywheel.report.charts import KIND_COLOURS, latency_chart, score_cost_chart
from flywheel.report.summary import interval_text, money, percent, recommendation_line
from flywheel.schemas import (
    CurationReport,
    FlywheelRunResult,
    Recommendation,
    RunAssessment,
    RunStatus,
)
from flywheel.scoring.recommendation import assessment_of

__all__ = ["SECTIONS", "render_report"]

SECTIONS = (
    "recommendation",
    "scores",
    "per-tool",
    "latency",
    "curation",
    "examples",
    "configuration",
)
"""The ``id`` of each section, in page order."""

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;
 padding:0 1rem;color:#111;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;
 border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#555;font-size:.9rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.rec{border-left:6px solid #059669;background:#ecfdf5;padding:.8rem 1rem}
.rec.none{border-color:#d97706;background:#fffbeb}
.meets{color:#047857;font-weight:600}.below{color:#b91c1c;font-weight:600}
.inconclusive{color:#b45309;font-weight:600}
.status-completed{color:#047857}.status-failed{color:#b91c1c}.status-skipped{color:#b45309}
pre{background:#f8f8f8;border:1px solid #e5e5e5;padding:.6rem;overflow:auto;font-size:.8rem}
.example{border:1px solid #e5e5e5;margin:.5rem 0;padding:.5rem .8rem}
.example .why{font-weight:600}.muted{color:#666}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.3em}
"""


def render_report(
    run: FlywheelRunResult,
    examples: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    generated_at: datetime | None = None,
) -> str:
    """The report's HTML. ``examples``: ``candidate/kind`` → divergent example lines."""
    assessment, recommendation = assessment_of(run)
    generated = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    started = run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    finished = run.finished_at.strftime("%Y-%m-%d %H:%M:%S UTC") if run.finished_at else "-"
    title = f"Flywheel run {run.run_id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">workload <b>{escape(run.workload_id)}</b>'
        + (f" · client {escape(run.client_id)}" if run.client_id else "")
        + f" · status <b>{escape(run.status.value)}</b> · started {started} · finished "
        f"{finished} · report generated {generated}</p>",
    ]
    if run.error:
        parts.append(f'<p class="below">error: {escape(run.error)}</p>')
    provisional = run.status == RunStatus.RUNNING and run.recommendation is None
    parts += _recommendation(recommendation, assessment, provisional=provisional)
    parts += _scores(assessment, recommendation)
    parts += _per_tool(run)
    parts += _latency(run)
    parts += _curation(run.datasets.report if run.datasets else None)
    parts += _examples(examples or {})
    parts += _configuration(run)
    parts.append("</body></html>")
    return "\n".join(parts)


# --- sections ----------------------------------------------------------------------------------


def _recommendation(
    rec: Recommendation, assessment: RunAssessment, *, provisional: bool = False
) -> list[str]:
    targets = ", ".join(escape(str(t)) for t in assessment.targets) or "none"
    css = "rec" if rec.candidate else "rec none"
    out = ['<section id="recommendation"><h2>Recommendation</h2>', f'<div class="{css}">']
    out.append(f"<p><b>{escape(recommendation_line(rec))}</b></p>")
    if provisional:
        out.append("<p><b>The run is still running: this is what its results so far say.</b></p>")
    if rec.candidate:
        out.append(f"<p>{escape(rec.reason)}</p>")
    out.append(
        f'<p class="muted">Acceptance targets: {targets}. Nothing is deployed automatically: '
        "a person decides.</p>"
    )
    production = assessment.production
    if production is not None:
        if production.cost_per_1k is not None:
            out.append(
                f"<p>Production ({escape(production.model or '?')}): "
                f"{escape(money(production.cost_per_1k, assessment.currency))} per 1,000 "
                f"requests, from the logged usage of {production.requests} eval records "
                f"({production.tokens_in_per_request or 0:.0f} tokens in, "
                f"{production.tokens_out_per_request or 0:.0f} out per request).</p>"
            )
        elif production.note:
            out.append(f'<p class="muted">Production cost unknown: {escape(production.note)}</p>')
    out.append("</div></section>")
    return out


def _scores(assessment: RunAssessment, rec: Recommendation) -> list[str]:
    out = ['<section id="scores"><h2>Scores, confidence and cost</h2>']
    if not assessment.evals:
        out.append("<p>No evaluation completed.</p></section>")
        return out
    head = (
        "<tr><th>candidate</th><th>eval</th><th>status</th><th>headline score [95% CI]</th>"
        "<th>n</th><th>verdicts</th><th>$ / 1k requests</th><th>savings</th>"
        "<th>latency p50 / p95</th><th>TTFT p50</th><th>output tokens / request</th>"
        "<th>tokens / s</th><th>failure rate</th></tr>"
    )
    rows = []
    notes: list[str] = []
    for e in assessment.evals:
        verdicts = "<br>".join(
            f'<span class="{v.verdict.value}">{v.verdict.value}</span> {escape(v.describe())}'
            for v in e.verdicts
        )
        star = " ★" if e.label == rec.label else ""
        swatch = f'<span class="swatch" style="background:{KIND_COLOURS.get(e.kind, "#111")}">'
        rows.append(
            f"<tr><td>{escape(e.candidate)}{star}</td><td>{swatch}</span>"
            f"{escape(e.kind.value)}</td>"
            f'<td class="status-{e.status.value}">{escape(e.status.value)}</td>'
            f'<td class="num">{_num(e.score)} {escape(interval_text(e.interval))}</td>'
            f'<td class="num">{e.n}</td><td>{verdicts}</td>'
            f'<td class="num">{escape(money(e.cost.cost_per_1k, assessment.currency))}'
            + (f"<sup>{_footnote(notes, e.cost.note)}</sup>" if e.cost.note else "")
            + "</td>"
            f'<td class="num">{escape(money(e.cost.savings_per_1k, assessment.currency))} '
            f"({escape(percent(e.cost.savings_fraction))})</td>"
            f'<td class="num">{_seconds(e.latency_p50_s)} / {_seconds(e.latency_p95_s)}</td>'
            f'<td class="num">{_seconds(e.ttft_p50_s)}</td>'
            f'<td class="num">{_num(e.tokens_out_per_request, 1)}</td>'
            f'<td class="num">{_num(e.tokens_per_s, 1)}</td>'
            f'<td class="num">{escape(percent(e.failure_rate))}</td></tr>'
        )
    out.append(f"<table>{head}{''.join(rows)}</table>")
    if notes:
        out.append(
            '<ol class="muted notes">'
            + "".join(f"<li>{escape(note)}</li>" for note in notes)
            + "</ol>"
        )
    headline = next((t for t in assessment.targets if t.metric == assessment.evals[0].metric), None)
    out.append("<h3>Score against cost</h3>")
    out.append(
        score_cost_chart(
            assessment.evals,
            currency=assessment.currency,
            target=headline.value if headline is not None else None,
            production_cost=assessment.production.cost_per_1k if assessment.production else None,
            recommended=rec.label,
        )
    )
    out.append(
        '<p class="muted">Bars: 95% confidence intervals. Costs use the price table '
        "(pricing.models); self-hosted models are priced per GPU-hour at the throughput the "
        "evaluation measured.</p></section>"
    )
    return out


def _per_tool(run: FlywheelRunResult) -> list[str]:
    columns = [(c.name, e) for c in run.candidates for e in c.evals if e.per_tool]
    out = ['<section id="per-tool"><h2>Per-tool accuracy</h2>']
    if not columns:
        out.append(
            "<p>No per-tool scores (not a tool-calling workload, or no evaluation "
            "completed).</p></section>"
        )
        return out
    labels = sorted(
        {label for _, e in columns for label in e.per_tool},
        key=lambda label: (
            -max(int(e.per_tool.get(label, {}).get("support") or 0) for _, e in columns),
            label,
        ),
    )
    head = "<tr><th>tool (first call)</th><th>n</th>" + "".join(
        f"<th>{escape(name)} {escape(e.kind.value)}<br>recall / F1</th>" for name, e in columns
    )
    rows = []
    for label in labels:
        support = max(int(e.per_tool.get(label, {}).get("support") or 0) for _, e in columns)
        cells = []
        for _, e in columns:
            score = e.per_tool.get(label, {})
            recall, f1 = score.get("recall"), score.get("f1")
            shade = _shade(recall)
            cells.append(
                f'<td class="num" style="background:{shade}">{_num(recall, 2)} / {_num(f1, 2)}</td>'
            )
        rows.append(
            f'<tr><td>{escape(label)}</td><td class="num">{support}</td>{"".join(cells)}</tr>'
        )
    out.append(f"<table>{head}</tr>{''.join(rows)}</table></section>")
    return out


def _latency(run: FlywheelRunResult) -> list[str]:
    rows = [
        (f"{c.name} {e.kind.value}", e.kind, e.latency)
        for c in run.candidates
        for e in c.evals
        if e.latency is not None and e.latency.n
    ]
    out = ['<section id="latency"><h2>Latency distribution</h2>']
    if not rows:
        out.append("<p>No latencies recorded.</p></section>")
        return out
    out.append(latency_chart(rows))
    table = [
        "<table><tr><th>evaluation</th><th>n</th><th>mean</th><th>p25</th><th>p50</th>"
        "<th>p75</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>"
    ]
    for label, _, s in rows:
        values = (s.mean_s, s.p25_s, s.p50_s, s.p75_s, s.p90_s, s.p95_s, s.p99_s, s.max_s)
        table.append(
            f'<tr><td>{escape(label)}</td><td class="num">{s.n}</td>'
            + "".join(f'<td class="num">{_seconds(v)}</td>' for v in values)
            + "</tr>"
        )
    out.append("".join(table) + "</table></section>")
    return out


def _curation(report: CurationReport | None) -> list[str]:
    out = ['<section id="curation"><h2>Curation</h2>']
    if report is None:
        out.append("<p>No datasets were built.</p></section>")
        return out
    out.append(
        f"<p>{report.total_records} logged calls → {report.selected} selected · eval "
        f"{report.eval_records} · train {report.train_records} · val {report.val_records} · "
        f"{escape(report.workload_type.value)} · seed {report.seed}</p>"
    )
    if report.dropped:
        out.append("<table><tr><th>dropped because</th><th>records</th></tr>")
        out += [
            f'<tr><td>{escape(reason)}</td><td class="num">{count}</td></tr>'
            for reason, count in report.dropped.items()
        ]
        out.append("</table>")
    if report.tool_splits:
        out.append("<table><tr><th>label</th><th>eval</th><th>train</th><th>val</th></tr>")
        for label, counts in report.tool_splits.items():
            out.append(
                f"<tr><td>{escape(label)}</td>"
                + "".join(
                    f'<td class="num">{counts.get(s, 0)}</td>' for s in ("eval", "train", "val")
                )
                + "</tr>"
            )
        out.append("</table>")
    for name, stats in report.icl.items():
        out.append(
            f"<p>ICL ({escape(name.replace('_', ' '))}): {stats.get('mean_examples', 0):.1f} "
            f"examples and {stats.get('mean_tokens_used', 0):.0f} tokens per record</p>"
        )
    if report.pii_redactions:
        redacted = ", ".join(f"{escape(k)} {v}" for k, v in report.pii_redactions.items())
        out.append(f"<p>PII redacted: {redacted}</p>")
    out += [f'<p class="inconclusive">warning: {escape(w)}</p>' for w in report.warnings]
    out.append("</section>")
    return out


def _examples(examples: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    out = [
        '<section id="examples"><h2>Divergent examples</h2>',
        '<p class="muted">Where each candidate differs most from the production model\'s '
        "logged answers: read these before trusting a score.</p>",
    ]
    if not any(examples.values()):
        out.append("<p>No divergent examples were saved.</p></section>")
        return out
    for label, lines in examples.items():
        out.append(f"<h3>{escape(label)} ({len(lines)})</h3>")
        for line in lines:
            out.append(
                '<div class="example">'
                f'<div class="why">#{escape(str(line.get("index")))} · '
                f"{escape(str(line.get('reason', '')))} · divergence "
                f"{_num(line.get('divergence'), 2)}</div>"
                f"<div><b>prompt</b>: {escape(str(line.get('prompt', '')))}</div>"
                f"<div><b>production</b>: {_message(line.get('expected'))}</div>"
                f"<div><b>candidate</b>: {_message(line.get('candidate'))}</div></div>"
            )
    out.append("</section>")
    return out


def _configuration(run: FlywheelRunResult) -> list[str]:
    out = ['<section id="configuration"><h2>Effective configuration</h2>']
    if run.config is None:
        out.append("<p>The run ended before its configuration was resolved.</p></section>")
        return out
    text = yaml.safe_dump(run.config.model_dump(mode="json"), sort_keys=False)
    out.append(f"<pre>{escape(text)}</pre></section>")
    return out


# --- helpers -----------------------------------------------------------------------------------


def _message(message: Any) -> str:
    if not isinstance(message, Mapping):
        return '<span class="muted">(none)</span>'
    parts = []
    if message.get("content"):
        parts.append(escape(str(message["content"])))
    for call in message.get("tool_calls") or []:
        arguments = orjson.dumps(call.get("arguments")).decode()
        parts.append(f"<code>{escape(str(call.get('name')))}({escape(arguments)})</code>")
    return " ".join(parts) or '<span class="muted">(empty)</span>'


def _footnote(notes: list[str], note: str) -> str:
    """The number of ``note`` in ``notes`` (added when new), for a cost's footnote mark."""
    if note not in notes:
        notes.append(note)
    return str(notes.index(note) + 1)


def _num(value: Any, digits: int = 3) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.{digits}f}"


def _seconds(value: float | None) -> str:
    """``1.25 s``, or milliseconds below a second (``12.3 ms``)."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.3g} ms"
    return f"{value:.2f} s"


def _shade(value: Any) -> str:
    """A background from red (0) to green (1) for a 0–1 score; none when unknown."""
    if not isinstance(value, int | float):
        return "transparent"
    value = min(1.0, max(0.0, float(value)))
    hue = int(120 * value)
    return f"hsl({hue}, 70%, 88%)"
