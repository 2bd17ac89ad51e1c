"""`flywheel schedule …`: periodic runs with Temporal Schedules (one per workload, overlap SKIP)."""

from __future__ import annotations

from pathlib import Path

import typer

from flywheel.api import FlywheelClient, Schedules, ScheduleSummary, parse_duration
from flywheel.cli import render
from flywheel.cli.common import EXIT_USAGE, console, fail, run_async, run_overrides, state
from flywheel.config import Settings
from flywheel.errors import ConfigError

app = typer.Typer(help="Periodic flywheel runs (Temporal Schedules).", no_args_is_help=True)


async def _schedules(settings: Settings) -> Schedules:
    fw = await FlywheelClient.connect(settings)
    return Schedules(fw.client, settings)


@app.command("create")
def create(
    ctx: typer.Context,
    workload_id: str = typer.Argument(..., help="the workload to run periodically"),
    client_id: str | None = typer.Option(None, help="only this client's logs"),
    cron: list[str] | None = typer.Option(None, help="cron expression, e.g. '0 3 * * *' (UTC)"),
    every: str | None = typer.Option(None, help="interval, e.g. 6h, 1d, 1w"),
    set_: list[str] | None = typer.Option(None, "--set", help="override KEY=VALUE for each run"),
    config_file: list[Path] | None = typer.Option(None, help="YAML overrides for each run"),
    candidate: list[str] | None = typer.Option(None, help="run only these candidates"),
    paused: bool = typer.Option(False, help="create the schedule paused"),
    note: str | None = typer.Option(None, help="a note shown with the schedule"),
    update_existing: bool = typer.Option(
        False,
        help="update the workload's schedule if it has one (its spec and what it runs; "
        "paused state and note are kept), so the command can be re-run safely",
    ),
) -> None:
    """Create the workload's schedule (runs that would overlap a running one are skipped)."""
    settings = state(ctx).settings()
    overrides = run_overrides(set_, config_file)
    try:
        interval = parse_duration(every) if every else None
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)

    async def go() -> tuple[str, bool]:
        schedules = await _schedules(settings)
        if update_existing:
            return await schedules.upsert(
                workload_id,
                client_id,
                cron=cron or [],
                every=interval,
                overrides=overrides,
                candidates=candidate,
                paused=paused,
                note=note,
            )
        sid = await schedules.create(
            workload_id,
            client_id,
            cron=cron or [],
            every=interval,
            overrides=overrides,
            candidates=candidate,
            paused=paused,
            note=note,
        )
        return sid, True

    sid, created = run_async(go())
    if created:
        console.print(f"created schedule {sid}" + (" (paused)" if paused else ""))
    else:
        console.print(f"updated schedule {sid}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every flywheel schedule with its spec, state and next run."""
    settings = state(ctx).settings()

    async def go() -> list[ScheduleSummary]:
        return await (await _schedules(settings)).list()

    schedules = run_async(go())
    if not schedules:
        console.print(
            "no schedules: create one with `flywheel schedule create WORKLOAD --every 1d`"
        )
        return
    console.print(render.schedules_table(schedules))


@app.command("describe")
def describe(
    ctx: typer.Context, workload_id: str = typer.Argument(..., help="workload or schedule id")
) -> None:
    """A schedule's spec, state, next runs and recent runs."""
    settings = state(ctx).settings()

    async def go() -> ScheduleSummary:
        return await (await _schedules(settings)).describe(workload_id)

    console.print(render.schedule_view(run_async(go())))


def _simple(name: str, verb: str, help_text: str) -> None:
    def command(
        ctx: typer.Context,
        workload_id: str = typer.Argument(..., help="workload or schedule id"),
    ) -> None:
        settings = state(ctx).settings()

        async def go() -> None:
            schedules = await _schedules(settings)
            await getattr(schedules, name)(workload_id)

        run_async(go())
        console.print(f"{verb} schedule for {workload_id}")

    command.__doc__ = help_text
    app.command(name)(command)


_simple("pause", "paused", "Pause a schedule (no runs start until unpaused).")
_simple("unpause", "unpaused", "Resume a paused schedule.")
_simple("trigger", "triggered", "Start a run now (skipped if the schedule's last run still runs).")
_simple("delete", "deleted", "Delete a schedule (runs already started go on).")
