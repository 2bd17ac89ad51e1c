"""`flywheel logs …`: load log files into the log store, list workloads, write a sample workload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from flywheel.api import list_workloads, load_logs
from flywheel.cli import render
from flywheel.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    console,
    err_console,
    fail,
    run_async,
    state,
)
from flywheel.sample_data import (
    DEFAULT_START,
    generate_customer_service_logs,
    generate_generic_logs,
    write_jsonl,
)

SINCE_HELP = "only records at or after this time (ISO date or datetime; no zone means UTC)"
UNTIL_HELP = "only records before this time (ISO date or datetime; no zone means UTC)"

app = typer.Typer(
    help="Log records in the log store (the blueprint's log schema).", no_args_is_help=True
)


@app.command("load")
def load(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="JSONL file, one log record per line"),
    workload_id: str | None = typer.Option(None, help="set/override every record's workload_id"),
    client_id: str | None = typer.Option(None, help="set/override every record's client_id"),
    batch_size: int = typer.Option(1000, min=1, help="records per insert"),
    errors_file: Path | None = typer.Option(
        None, help="write every rejected line number and reason here"
    ),
) -> None:
    """Ingest log records. Good lines are stored; each bad line is reported with its reason.

    Exit code 0 when every line was accepted, 1 when some were rejected (the rest are stored).
    """
    settings = state(ctx).settings()
    report = run_async(
        load_logs(
            settings, file, workload_id=workload_id, client_id=client_id, batch_size=batch_size
        )
    )
    lines = render.load_report_lines(report)
    console.print(lines[0], highlight=False)
    for line in lines[1:]:
        err_console.print(line, highlight=False, soft_wrap=True)
    if errors_file is not None and report.rejections:
        errors_file.write_text(
            "".join(f"line {r.line_no}: {r.reason}\n" for r in report.rejections), encoding="utf-8"
        )
        err_console.print(f"rejected lines written to {errors_file}")
    if report.rejections_truncated:
        err_console.print(
            f"(kept the first {len(report.rejections)} rejected lines; the counts are complete)"
        )
    if report.rejected:
        raise typer.Exit(EXIT_FAILED)


@app.command("list")
def list_(
    ctx: typer.Context,
    since: str | None = typer.Option(None, help=SINCE_HELP),
    until: str | None = typer.Option(None, help=UNTIL_HELP),
) -> None:
    """Workloads in the log store, with record counts and time range."""
    window = _window(since, until)
    workloads = run_async(list_workloads(state(ctx).settings(), since=window[0], until=window[1]))
    if not workloads and (since or until):
        console.print("no records in that time window")
        return
    if not workloads:
        console.print("the log store is empty: load logs with `flywheel logs load FILE.jsonl`")
        return
    console.print(render.workloads_table(workloads))


@app.command("sample")
def sample(
    out: Path = typer.Argument(..., help="JSONL file to write"),
    records: int = typer.Option(400, min=1, help="number of log records"),
    seed: int = typer.Option(0, help="random seed (same seed, same file)"),
    generic: bool = typer.Option(False, help="a generic (no tools) FAQ workload instead"),
    workload_id: str | None = typer.Option(None, help="workload_id of the records"),
    client_id: str = typer.Option("sample-app", help="client_id of the records"),
    since: str | None = typer.Option(
        None, help="traffic starts after this time (ISO; default 2025-05-05T07:30:00Z)"
    ),
    until: str | None = typer.Option(
        None, help="traffic ends before this time (ISO; default: about five days after the start)"
    ),
) -> None:
    """Write a realistic sample workload (a customer-service agent with tools, by default)."""
    start, end = _window(since, until)
    if start is None:
        start = DEFAULT_START if end is None else end - timedelta(days=5)
    if generic:
        logs = generate_generic_logs(
            records,
            seed=seed,
            workload_id=workload_id or "faq-answers",
            client_id=client_id,
            start=start,
        )
    else:
        logs = generate_customer_service_logs(
            records,
            seed=seed,
            workload_id=workload_id or "customer-service",
            client_id=client_id,
            start=start,
        )
    if end is not None:
        _fit_into(logs, start, end)
    count = write_jsonl(out, logs)
    console.print(f"wrote {count} log records to {out} (workload {logs[0]['workload_id']})")


def _when(value: str, option: str) -> datetime:
    """An ISO date or datetime as aware UTC (no zone means UTC); a bad value exits with code 2."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(
            f"{option}: {value!r} is not an ISO date or datetime "
            "(for example 2025-05-01 or 2025-05-01T12:00:00Z)",
            EXIT_USAGE,
        )
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The parsed ``--since``/``--until`` pair; since must come before until."""
    start = _when(since, "--since") if since is not None else None
    end = _when(until, "--until") if until is not None else None
    if start is not None and end is not None and start >= end:
        fail(f"--since ({since}) must be before --until ({until})", EXIT_USAGE)
    return start, end


def _fit_into(logs: list[dict[str, Any]], start: datetime, end: datetime) -> None:
    """Rescale the records' timestamps (whole seconds, order kept) into [start, end)."""
    if not logs:
        return
    window = int((end - start).total_seconds())
    times = [datetime.fromisoformat(r["timestamp"]) for r in logs]
    span = max(int((times[-1] - start).total_seconds()), 0) + 1
    for record, when in zip(logs, times, strict=True):
        offset = int((when - start).total_seconds())
        moved = start + timedelta(seconds=max(offset, 0) * window // span)
        if moved.microsecond:  # printed in whole seconds: never before start
            moved += timedelta(microseconds=1_000_000 - moved.microsecond)
        record["timestamp"] = moved.strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(record["response"].get("created"), int):
            record["response"]["created"] += int((moved - when).total_seconds())
