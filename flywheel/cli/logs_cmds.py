"""`flywheel logs …`: load log files into the log store, list workloads, write a sample workload."""

from __future__ import annotations

from pathlib import Path

import typer

from flywheel.api import list_workloads, load_logs
from flywheel.cli import render
from flywheel.cli.common import EXIT_FAILED, console, err_console, run_async, state
from flywheel.sample_data import (
    generate_customer_service_logs,
    generate_generic_logs,
    write_jsonl,
)

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
def list_(ctx: typer.Context) -> None:
    """Workloads in the log store, with record counts and time range."""
    workloads = run_async(list_workloads(state(ctx).settings()))
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
) -> None:
    """Write a realistic sample workload (a customer-service agent with tools, by default)."""
    if generic:
        logs = generate_generic_logs(
            records, seed=seed, workload_id=workload_id or "faq-answers", client_id=client_id
        )
    else:
        logs = generate_customer_service_logs(
            records, seed=seed, workload_id=workload_id or "customer-service", client_id=client_id
        )
    count = write_jsonl(out, logs)
    console.print(f"wrote {count} log records to {out} (workload {logs[0]['workload_id']})")
