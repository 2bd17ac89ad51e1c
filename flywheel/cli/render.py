"""How the CLI shows runs, progress, results, schedules and log loads (rich tables)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from flywheel.api import RunSummary, ScheduleSummary
from flywheel.clients.logstore import WorkloadSummary
from flywheel.clients.logstore.loader import LoadReport
from flywheel.schemas import (
    CurationReport,
    CustomizationResult,
    EvalProgress,
    EvalResult,
    FlywheelRunResult,
    RunProgress,
    StepStatus,
)

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
    if run.error:
        parts.append(Text(f"error: {run.error}", style="red"))
    if run.datasets:
        parts.extend(curation_view(run.datasets.report))
    if run.candidates:
        parts.append(results_table(run))
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
    parts = [f"LoRA {result.steps_completed} steps, {result.epochs_completed} epoch(s)"]
    if result.train_loss is not None:
        parts.append(f"train loss {result.train_loss:.3f}")
    if result.val_loss is not None:
        parts.append(f"val loss {result.val_loss:.3f}")
    if result.resumed_from_step:
        parts.append(f"resumed from the step-{result.resumed_from_step} checkpoint")
    if result.job_id:
        parts.append(f"job {result.job_id}")
    return ", ".join(parts)


def results_table(run: FlywheelRunResult) -> Table:
    present = {name for c in run.candidates for result in c.evals for name in result.metrics}
    metric_names = [name for name in METRIC_LABELS if name in present]
    table = Table(title="Scores against the production model's logged answers")
    table.add_column("candidate")
    table.add_column("eval")
    table.add_column("status")
    for name in metric_names:
        table.add_column(METRIC_LABELS[name], justify="right")
    table.add_column("n", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("p50/p95 s", justify="right")
    table.add_column("tokens in/out", justify="right")
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
                    "",
                )
                continue
            table.add_row(
                name,
                result.kind.value,
                _eval_status(result),
                *[_metric(result, m) for m in metric_names],
                str(result.n_scored) if result.n_total else "",
                str(result.n_failed) if result.n_total else "",
                _latency(result),
                _tokens(result),
            )
    return table


def _eval_status(result: EvalResult) -> Text:
    return status_text(result.status.value)


def _metric(result: EvalResult, name: str) -> str:
    value = result.metrics.get(name)
    return "" if value is None else f"{value:.3f}"


def _latency(result: EvalResult) -> str:
    if result.latency_p50_s is None:
        return ""
    p95 = f"{result.latency_p95_s:.2f}" if result.latency_p95_s is not None else "-"
    return f"{result.latency_p50_s:.2f}/{p95}"


def _tokens(result: EvalResult) -> str:
    if not result.n_total:
        return ""
    return f"{result.tokens_in}/{result.tokens_out}"


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
    for run in runs:
        table.add_row(
            run.run_id,
            run.workload_id or "",
            status_text(run.status),
            run.started_at.strftime("%Y-%m-%d %H:%M:%S") if run.started_at else "",
            duration(run.started_at, run.closed_at),
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
