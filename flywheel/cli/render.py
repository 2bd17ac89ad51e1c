"""How the CLI shows runs, progress, results, schedules and log loads (rich tables)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from flywheel.api import HistoryEntry, RunSummary, ScheduleSummary
from flywheel.clients.logstore import WorkloadSummary
from flywheel.clients.logstore.loader import LoadReport
from flywheel.report.summary import interval_text, money, percent, recommendation_line
from flywheel.schemas import (
    CurationReport,
    CustomizationResult,
    EvalAssessment,
    EvalProgress,
    EvalResult,
    FlywheelRunResult,
    Recommendation,
    RunAssessment,
    RunProgress,
    RunStatus,
    StepStatus,
    TargetVerdict,
    Verdict,
)
from flywheel.scoring.recommendation import assessment_of

STATUS_STYLE = {
    "completed": "green",
    "running": "cyan",
    "pending": "dim",
    "skipped": "yellow",
    "failed": "red",
    "cancelled": "magenta",
    "canceled": "magenta",
    "terminated": "red",
    "timed_out": "red",
}

METRIC_LABELS = {
    "function_name_accuracy": "tool name",
    "function_name_and_args_accuracy": "name+args",
    "no_tool_accuracy": "no-tool",
    "rouge_l": "ROUGE-L",
    "token_f1": "token F1",
    "embedding_cosine": "embed cos",
    "llm_judge_score": "judge 1-10",
}
"""The metrics the results table shows, in this order (every metric is in ``--json``)."""

VERDICT_STYLE = {
    Verdict.MEETS: "green",
    Verdict.BELOW: "red",
    Verdict.INCONCLUSIVE: "yellow",
}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "-"
    end = end or datetime.now(UTC)
    seconds = max(0, int((end - start).total_seconds()))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def curation_line(report: CurationReport) -> str:
    dropped = ", ".join(f"{reason} {count}" for reason, count in report.dropped.items() if count)
    return (
        f"{report.total_records} logs → {report.selected} selected"
        + (f" (dropped: {dropped})" if dropped else "")
        + f" · eval {report.eval_records} · train {report.train_records} · val "
        f"{report.val_records} · {report.workload_type.value} · seed {report.seed}"
    )


def curation_view(report: CurationReport) -> list[RenderableType]:
    """The curation report: the summary line, records per tool and set, ICL, PII, warnings."""
    parts: list[RenderableType] = [Text(f"Datasets: {curation_line(report)}")]
    if report.tool_splits:
        table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 2))
        table.add_column("label")
        for column in ("eval", "train", "val"):
            table.add_column(column, justify="right")
        for label, counts in report.tool_splits.items():
            table.add_row(label, *(str(counts.get(c, 0)) for c in ("eval", "train", "val")))
        parts.append(table)
    for name, stats in report.icl.items():
        method = "semantic" if stats.get("semantic") else "uniform"
        parts.append(
            Text(
                f"  ICL ({name.replace('_', ' ')}, {method}): "
                f"{stats.get('mean_examples', 0):.1f} examples and "
                f"{stats.get('mean_tokens_used', 0):.0f} tokens per record, "
                f"{int(stats.get('unchanged', 0))} records without examples"
            )
        )
    if report.pii_redactions:
        redacted = ", ".join(f"{name} {count}" for name, count in report.pii_redactions.items())
        parts.append(Text(f"  PII redacted: {redacted}"))
    for warning in report.warnings:
        parts.append(Text(f"  warning: {warning}", style="yellow"))
    return parts


def results_view(run: FlywheelRunResult) -> RenderableType:
    """A run's results: the recommendation first, then curation, scores with their intervals
    and verdicts, cost and latency, recall per tool, and notes on what failed."""
    assessment, recommendation = assessment_of(run)
    header = Text.assemble(
        ("Run ", "bold"),
        (run.run_id, "bold cyan"),
        f"  workload {run.workload_id}",
        (f"  client {run.client_id}" if run.client_id else ""),
        "  ",
        status_text(run.status.value),
        f"  ({duration(run.started_at, run.finished_at)})",
    )
    parts: list[RenderableType] = [header]
    if run.candidates or run.recommendation is not None:
        provisional = run.status == RunStatus.RUNNING and run.recommendation is None
        parts.extend(recommendation_view(recommendation, assessment, provisional=provisional))
    if run.error:
        parts.append(Text(f"error: {run.error}", style="red"))
    if run.datasets:
        parts.extend(curation_view(run.datasets.report))
    if run.candidates:
        parts.append(results_table(run, assessment))
        if assessment.evals:
            parts.append(cost_table(assessment))
            parts.extend(cost_notes(assessment))
            parts.extend(production_lines(assessment))
        tools = per_tool_table(run)
        if tools is not None:
            parts.append(tools)
        parts.extend(result_notes(run))
    return Group(*parts)


def per_tool_table(run: FlywheelRunResult) -> Table | None:
    """Recall of each tool (first call; ``no_tool`` included) per candidate and eval."""
    columns = [(c.name, e) for c in run.candidates for e in c.evals if e.per_tool]
    if not columns:
        return None
    labels = sorted(
        {label for _, e in columns for label in e.per_tool},
        key=lambda label: (
            -max(int(e.per_tool.get(label, {}).get("support") or 0) for _, e in columns),
            label,
        ),
    )
    table = Table(title="Recall per tool (first call)")
    table.add_column("tool")
    table.add_column("n", justify="right")
    for name, result in columns:
        table.add_column(f"{name} {result.kind.value}", justify="right")
    for label in labels:
        support = max(int(e.per_tool.get(label, {}).get("support") or 0) for _, e in columns)
        cells = []
        for _, result in columns:
            recall = result.per_tool.get(label, {}).get("recall")
            cells.append("" if recall is None else f"{recall:.2f}")
        table.add_row(label, str(support), *cells)
    return table


def result_notes(run: FlywheelRunResult) -> list[Text]:
    """Why a candidate or an eval failed or was skipped, one line each, below the table."""
    notes: list[Text] = []
    for candidate in run.candidates:
        if candidate.error:
            notes.append(Text(f"{candidate.name}: {candidate.error}", style="red"))
        tuned = candidate.customization
        if tuned is not None and tuned.status == StepStatus.COMPLETED:
            notes.append(Text(f"{candidate.name}: {customization_line(tuned)}", style="dim"))
        for result in candidate.evals:
            reason = result.error or result.skipped_reason
            if reason and result.status != StepStatus.COMPLETED:
                style = "red" if result.status == StepStatus.FAILED else "yellow"
                notes.append(
                    Text(
                        f"{candidate.name} {result.kind.value}: {result.status.value}: {reason}",
                        style=style,
                    )
                )
    return notes


def customization_line(result: CustomizationResult) -> str:
    """One line on a finished fine-tuning: steps, epochs, losses, and any resumption."""
    parts = [f"LoRA {result.steps_completed} steps"]
    if result.epochs_completed:
        parts[0] += f", {result.epochs_completed} epoch(s)"
    if result.train_loss is not None:
        parts.append(f"train loss {result.train_loss:.3f}")
    if result.val_loss is not None:
        parts.append(f"val loss {result.val_loss:.3f}")
    if result.resumed_from_step:
        parts.append(f"resumed from the step-{result.resumed_from_step} checkpoint")
    if result.job_id:
        parts.append(f"job {result.job_id}")
    return ", ".join(parts)


def recommendation_view(
    rec: Recommendation, assessment: RunAssessment, *, provisional: bool = False
) -> list[Text]:
    """The recommendation (or why there is none), its reason and the targets it was held to.

    ``provisional``: the run is still running, so this is what its results so far support.
    """
    style = "bold green" if rec.candidate else "bold yellow"
    line = recommendation_line(rec)
    if provisional:
        line = f"(so far; the run is still running) {line}"
    lines = [Text(line, style=style)]
    if rec.candidate:
        lines.append(Text(f"  {rec.reason}", style="dim"))
    targets = "; ".join(str(t) for t in assessment.targets)
    if targets:
        lines.append(
            Text(f"  targets: {targets} (95% intervals; nothing is deployed automatically)")
        )
    return lines


def results_table(run: FlywheelRunResult, assessment: RunAssessment | None = None) -> Table:
    """Scores per candidate and evaluation, each with its interval, and the verdicts."""
    present = {name for c in run.candidates for result in c.evals for name in result.metrics}
    metric_names = [name for name in METRIC_LABELS if name in present]
    table = Table(title="Scores against the production model's logged answers [95% CI]")
    table.add_column("candidate")
    table.add_column("eval")
    table.add_column("status")
    for name in metric_names:
        table.add_column(METRIC_LABELS[name], justify="right")
    table.add_column("n", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("verdict")
    for candidate in run.candidates:
        evals = candidate.evals or [None]
        for index, result in enumerate(evals):
            name = candidate.name if index == 0 else ""
            if result is None:
                table.add_row(
                    name,
                    "-",
                    status_text(candidate.status.value),
                    *["" for _ in metric_names],
                    "",
                    "",
                    "",
                )
                continue
            assessed = (
                assessment.find(candidate.name, result.kind) if assessment is not None else None
            )
            table.add_row(
                name,
                result.kind.value,
                _eval_status(result),
                *[_metric(result, m) for m in metric_names],
                str(result.n_scored) if result.n_total else "",
                str(result.n_failed) if result.n_total else "",
                verdict_text(assessed.verdicts) if assessed is not None else Text(""),
            )
    return table


def verdict_text(verdicts: Sequence[TargetVerdict]) -> Text:
    """``meets`` when every target is met; else each target not met, e.g.
    ``below name+args ≥ 0.95``."""
    if not verdicts:
        return Text("")
    if all(v.verdict is Verdict.MEETS for v in verdicts):
        return Text("meets", style=VERDICT_STYLE[Verdict.MEETS])
    text = Text()
    for verdict in verdicts:
        if verdict.verdict is Verdict.MEETS:
            continue
        if text:
            text.append("\n")
        symbol = "≥" if verdict.op == ">=" else "≤"
        label = METRIC_LABELS.get(verdict.metric, verdict.metric)
        text.append(verdict.verdict.value, style=VERDICT_STYLE[verdict.verdict])
        text.append(f" {label} {symbol} {verdict.target:g}")
    return text


def cost_table(assessment: RunAssessment) -> Table:
    """Cost per 1,000 requests and savings against production, latency and throughput (time
    to first token only when some evaluation streamed)."""
    currency = assessment.currency
    streamed = any(e.ttft_p50_s is not None for e in assessment.evals)
    table = Table(title=f"Cost ({currency} per 1,000 requests) and latency")
    columns = [
        ("candidate", "left"),
        ("eval", "left"),
        ("cost/1k", "right"),
        ("savings", "right"),
        ("p50/p95 s", "right"),
        *([("TTFT p50", "right")] if streamed else []),
        ("out tok/req", "right"),
        ("tok/s", "right"),
        ("fail rate", "right"),
    ]
    for column, justify in columns:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for e in assessment.evals:
        savings = (
            f"{money(e.cost.savings_per_1k, currency)} ({percent(e.cost.savings_fraction)})"
            if e.cost.savings_per_1k is not None
            else "-"
        )
        ttft = ["-" if e.ttft_p50_s is None else f"{e.ttft_p50_s:.2f}"] if streamed else []
        table.add_row(
            e.candidate,
            e.kind.value,
            money(e.cost.cost_per_1k, currency),
            savings,
            _seconds_pair(e),
            *ttft,
            "-" if e.tokens_out_per_request is None else f"{e.tokens_out_per_request:.1f}",
            "-" if e.tokens_per_s is None else f"{e.tokens_per_s:.1f}",
            percent(e.failure_rate),
        )
    return table


def cost_notes(assessment: RunAssessment) -> list[Text]:
    """How costs were worked out, or why one is missing: each distinct note once."""
    notes = dict.fromkeys(e.cost.note for e in assessment.evals if e.cost.note)
    return [Text(f"Cost: {note}", style="dim") for note in notes]


def production_lines(assessment: RunAssessment) -> list[Text]:
    """The production model's cost, or why it is unknown."""
    production = assessment.production
    if production is None:
        return []
    if production.cost_per_1k is not None:
        return [
            Text(
                f"Production ({production.model}): "
                f"{money(production.cost_per_1k, assessment.currency)} per 1,000 requests "
                f"(logged usage of {production.requests} eval records: "
                f"{production.tokens_in_per_request or 0:.0f} tokens in, "
                f"{production.tokens_out_per_request or 0:.0f} out per request)"
            )
        ]
    return [Text(f"Production cost unknown: {production.note}", style="yellow")]


def examples_view(examples: dict[str, list[dict[str, Any]]]) -> RenderableType:
    """Divergent examples per evaluation, for review: prompt, both answers, the reason."""
    if not examples:
        return Text("no divergent examples were saved for this run", style="yellow")
    parts: list[RenderableType] = []
    for label, lines in examples.items():
        parts.append(Text(f"Divergent examples: {label} ({len(lines)})", style="bold"))
        for line in lines:
            parts.append(
                Text.assemble(
                    (f"  #{line.get('index')} ", "bold"),
                    (f"[{line.get('reason', '')}]", "magenta"),
                    f" divergence {float(line.get('divergence') or 0):.2f}",
                )
            )
            parts.append(Text(f"    prompt:     {_short(str(line.get('prompt', '')), 300)}"))
            parts.append(Text(f"    production: {_message_text(line.get('expected'))}"))
            parts.append(Text(f"    candidate:  {_message_text(line.get('candidate'))}"))
    return Group(*parts)


def history_table(workload_id: str, entries: Sequence[HistoryEntry]) -> Table:
    """A workload's runs over time: the recommendation and its numbers, regressions flagged."""
    table = Table(title=f"History of workload {workload_id} (oldest first)")
    for column, justify in (
        ("started (UTC)", "left"),
        ("run id", "left"),
        ("status", "left"),
        ("recommended", "left"),
        ("score [95% CI]", "right"),
        ("cost/1k", "right"),
        ("savings", "right"),
        ("flag", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for entry in entries:
        flag = Text()
        if entry.regression:
            flag.append(f"REGRESSION: {entry.regression}", style="bold red")
        elif entry.changed:
            flag.append("recommendation changed", style="yellow")
        score = (
            f"{entry.score:.3f} {interval_text(entry.interval)}".strip()
            if entry.score is not None
            else "-"
        )
        table.add_row(
            entry.started_at.strftime("%Y-%m-%d %H:%M"),
            entry.run_id,
            status_text(entry.status.value),
            entry.recommended or Text("none", style="dim"),
            score,
            money(entry.cost_per_1k, entry.currency),
            percent(entry.savings_fraction),
            flag,
        )
    return table


def _seconds_pair(e: EvalAssessment) -> str:
    if e.latency_p50_s is None:
        return "-"
    p95 = f"{e.latency_p95_s:.2f}" if e.latency_p95_s is not None else "-"
    return f"{e.latency_p50_s:.2f}/{p95}"


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return "(none)"
    parts = []
    if message.get("content"):
        parts.append(_short(str(message["content"]), 300))
    for call in message.get("tool_calls") or []:
        arguments = call.get("arguments")
        parts.append(f"{call.get('name')}({_short(_json(arguments), 200)})")
    return " ".join(parts) or "(empty)"


def _json(value: Any) -> str:
    import orjson

    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return repr(value)


def _eval_status(result: EvalResult) -> Text:
    return status_text(result.status.value)


def _metric(result: EvalResult, name: str) -> str:
    value = result.metrics.get(name)
    if value is None:
        return ""
    interval = result.intervals.get(name)
    return f"{value:.3f} {interval_text(interval)}" if interval is not None else f"{value:.3f}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_view(progress: RunProgress) -> RenderableType:
    running = progress.status.value == "running"
    header = Text.assemble(
        ("Run ", "bold"),
        (progress.run_id, "bold cyan"),
        "  ",
        status_text(progress.status.value),
        f"  stage: {progress.stage}",
        f"  ({duration(progress.started_at, None)})" if running else "",
    )
    parts: list[RenderableType] = [header]
    if progress.datasets:
        parts.append(Text(f"Datasets: {curation_line(progress.datasets)}"))
    if progress.candidates:
        table = Table()
        for column in ("candidate", "status", "stage", "evaluations", "customization", "activity"):
            table.add_column(column)
        for candidate in progress.candidates:
            details = dict(candidate.detail)
            evals = []
            for kind, eval_progress in candidate.evals.items():
                live = details.pop(f"evaluate_candidate ({kind.value})", None)
                evals.append(_eval_progress(kind.value, eval_progress, live))
            activity = "; ".join(
                f"{name}: " + ", ".join(f"{k}={v}" for k, v in detail.items())
                for name, detail in details.items()
            )
            table.add_row(
                candidate.name,
                status_text(candidate.status.value),
                candidate.stage,
                "\n".join(evals),
                candidate.customization.value if candidate.customization else "",
                _short(activity, 80),
            )
        parts.append(table)
    if progress.error:
        parts.append(Text(f"error: {progress.error}", style="red"))
    return Group(*parts)


def _eval_progress(kind: str, progress: EvalProgress, live: dict[str, Any] | None) -> str:
    """``base 12/60 (1 failed)`` from the latest heartbeat, else ``base completed 60/60``."""
    if live and "done" in live and "total" in live:
        failed = live.get("failed") or 0
        return f"{kind} {live['done']}/{live['total']}" + (f" ({failed} failed)" if failed else "")
    text = f"{kind} {progress.status.value}"
    return text + (f" {progress.done}/{progress.total}" if progress.total else "")


def runs_table(runs: Sequence[RunSummary]) -> Table:
    table = Table(title="Flywheel runs (newest first)")
    table.add_column("run id")
    table.add_column("workload")
    table.add_column("status")
    table.add_column("started (UTC)")
    table.add_column("took", justify="right")
    table.add_column("recommended")
    for run in runs:
        best = run.best_candidate or ""
        if run.best_kind:
            best += f" ({run.best_kind})"
        if run.best_score is not None:
            best += f" {run.best_score:.3f}"
        table.add_row(
            run.run_id,
            run.workload_id or "",
            status_text(run.status),
            run.started_at.strftime("%Y-%m-%d %H:%M:%S") if run.started_at else "",
            duration(run.started_at, run.closed_at),
            best,
        )
    return table


def schedules_table(schedules: Sequence[ScheduleSummary]) -> Table:
    table = Table(title="Flywheel schedules")
    table.add_column("schedule id")
    table.add_column("workload")
    table.add_column("spec")
    table.add_column("state")
    table.add_column("next run (UTC)")
    table.add_column("runs", justify="right")
    for schedule in schedules:
        table.add_row(
            schedule.schedule_id,
            schedule.workload_id or "",
            schedule.spec,
            Text("paused", style="yellow") if schedule.paused else Text("active", style="green"),
            schedule.next_runs[0].strftime("%Y-%m-%d %H:%M:%S") if schedule.next_runs else "-",
            str(schedule.total_runs),
        )
    return table


def schedule_view(schedule: ScheduleSummary) -> RenderableType:
    lines = [
        f"schedule  {schedule.schedule_id}",
        f"workload  {schedule.workload_id}",
        f"spec      {schedule.spec}",
        f"state     {'paused' if schedule.paused else 'active'}"
        + (f" ({schedule.note})" if schedule.note else ""),
        f"runs      {schedule.total_runs} started",
    ]
    lines += [f"next      {t.strftime('%Y-%m-%d %H:%M:%S')} UTC" for t in schedule.next_runs]
    lines += [f"recent    {run}" for run in schedule.recent_runs]
    lines += [f"running   {run}" for run in schedule.running]
    return Text("\n".join(lines))


def workloads_table(workloads: Sequence[WorkloadSummary]) -> Table:
    table = Table(title="Workloads in the log store")
    table.add_column("workload")
    table.add_column("client")
    table.add_column("records", justify="right")
    table.add_column("oldest (UTC)")
    table.add_column("newest (UTC)")
    for w in workloads:
        table.add_row(
            w.workload_id,
            w.client_id,
            str(w.records),
            w.oldest.strftime("%Y-%m-%d %H:%M:%S") if w.oldest else "",
            w.newest.strftime("%Y-%m-%d %H:%M:%S") if w.newest else "",
        )
    return table


def load_report_lines(report: LoadReport, *, show: int = 100) -> list[str]:
    lines = [f"accepted {report.accepted}, rejected {report.rejected}"]
    for rejection in report.rejections[:show]:
        lines.append(f"  line {rejection.line_no}: {rejection.reason}")
    hidden = report.rejected - min(show, len(report.rejections))
    if hidden > 0:
        lines.append(f"  … {hidden} more rejected line(s); --errors-file writes them to a file")
    return lines
