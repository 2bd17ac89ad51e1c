"""The `flywheel` command line: a thin layer over :mod:`flywheel.api`.

flywheel dev                          # Temporal dev server + Web UI + a worker
flywheel logs load app-logs.jsonl     # ingest logged LLM calls
flywheel run customer-service --wait  # one flywheel run, with live progress
flywheel results RUN_ID               # recommendation, scores with intervals, cost, latency
flywheel history WORKLOAD             # every run's headline numbers, regressions flagged
flywheel report RUN_ID --out r.html   # one self-contained HTML report
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.text import Text

from flywheel.api import FlywheelClient, HistoryEntry, RunSummary, run_history
from flywheel.cli import logs_cmds, render, schedule_cmds
from flywheel.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    CliState,
    console,
    fail,
    run_async,
    run_overrides,
    setup_logging,
    state,
)
from flywheel.clients.artifacts import ArtifactStore
from flywheel.clients.temporal import connect, ensure_search_attributes
from flywheel.config import Settings
from flywheel.devserver import DevServer
from flywheel.platforms import build_platforms
from flywheel.schemas import FlywheelRunResult, RunStatus, utcnow
from flywheel.time_window import resolve_window

app = typer.Typer(
    help="Find a smaller, cheaper model that does your LLM application's job.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(logs_cmds.app, name="logs")
app.add_typer(schedule_cmds.app, name="schedule")
config_app = typer.Typer(help="Inspect and check the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML config file (default: $FLYWHEEL_CONFIG, ./flywheel.yaml)"
    ),
    data_dir: Path | None = typer.Option(None, help="where the embedded stores live"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log what happens"),
) -> None:
    ctx.obj = CliState(config_file=config, data_dir=data_dir, verbose=verbose)
    setup_logging(verbose)


# --- servers --------------------------------------------------------------------------------


def _with_address(settings: Settings, address: str, ui_url: str) -> Settings:
    temporal = settings.temporal.model_copy(update={"address": address, "ui_url": ui_url})
    return settings.model_copy(update={"temporal": temporal})


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


@app.command()
def dev(
    ctx: typer.Context,
    port: int = typer.Option(7233, help="Temporal frontend port"),
    ui_port: int = typer.Option(8233, help="Temporal Web UI port"),
    worker: bool = typer.Option(True, help="also run a worker in this process"),
) -> None:
    """Start a Temporal dev server (SQLite in the data directory, Web UI) and a worker.

    Ctrl-C stops the worker, then the server. Runs and their history survive a restart.
    """
    settings = state(ctx).settings()

    async def go() -> None:
        from flywheel.worker import run_worker

        server = DevServer(
            db_file=settings.data_dir / "temporal.db",
            port=port,
            ui_port=ui_port,
            namespace=settings.temporal.namespace,
        )
        await server.start()
        local = _with_address(settings, server.address, server.ui_url)
        stop = asyncio.Event()
        _stop_on_signals(stop)
        try:
            console.print(f"Temporal dev server at {server.address} (data in {server.db_file})")
            console.print(f"Web UI: [bold]{server.ui_url}[/bold]")
            if server.address != settings.temporal.address:
                console.print(
                    "other commands reach this server with: export "
                    f"FLYWHEEL_TEMPORAL__ADDRESS={server.address} "
                    f"FLYWHEEL_TEMPORAL__UI_URL={server.ui_url}",
                    highlight=False,
                    soft_wrap=True,
                )
            if worker:
                console.print(
                    f"worker on task queue {settings.temporal.task_queue!r}; Ctrl-C stops"
                )
                await run_worker(local, stop=stop)
            else:
                console.print("Ctrl-C stops the server")
                await stop.wait()
        finally:
            await server.stop()
            console.print("stopped")

    run_async(go())


@app.command()
def worker(ctx: typer.Context) -> None:
    """Run a worker against the configured Temporal (temporal.address) until Ctrl-C/SIGTERM."""
    settings = state(ctx).settings()

    async def go() -> None:
        from flywheel.worker import run_worker

        stop = asyncio.Event()
        _stop_on_signals(stop)
        console.print(
            f"worker for {settings.temporal.address} (namespace {settings.temporal.namespace}, "
            f"task queue {settings.temporal.task_queue!r}); Ctrl-C stops"
        )
        await run_worker(settings, stop=stop)

    run_async(go())


@app.command()
def setup(ctx: typer.Context) -> None:
    """Register the search attributes (WorkloadId, ClientId, BestCandidate, BestEvalKind,
    BestScore) on the configured Temporal."""
    settings = state(ctx).settings()

    async def go() -> list[str]:
        return await ensure_search_attributes(await connect(settings.temporal))

    added = run_async(go())
    console.print(
        f"registered: {', '.join(added)}" if added else "search attributes already registered"
    )


# --- runs -----------------------------------------------------------------------------------


def endpoint_candidate(endpoint: str, model: str, api_key_env: str | None) -> dict[str, Any]:
    """A candidate dict for an already-running OpenAI-compatible endpoint."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-._") or "endpoint"
    candidate: dict[str, Any] = {
        "name": name,
        "model": model,
        "platform": "endpoints",
        "base_url": endpoint,
    }
    if api_key_env:
        candidate["api_key_env"] = api_key_env
    return candidate


def ui_link(settings: Settings, run_id: str) -> str | None:
    base = settings.temporal.ui_url
    if base is None and settings.temporal.address == "127.0.0.1:7233":
        base = "http://127.0.0.1:8233"
    if base is None:
        return None
    return f"{base.rstrip('/')}/namespaces/{settings.temporal.namespace}/workflows/{run_id}"


async def watch(fw: FlywheelClient, run_id: str, *, interval_s: float = 1.0) -> FlywheelRunResult:
    """Show live progress until the run ends; return its results."""
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            summary = await fw.describe(run_id)
            if summary.status != "running":
                break
            progress = await fw.progress(run_id)
            if progress is not None:
                live.update(render.progress_view(progress))
            await asyncio.sleep(interval_s)
    return await fw.wait(run_id)


@app.command()
def run(
    ctx: typer.Context,
    workload_id: str = typer.Argument(..., help="the workload whose logs to use"),
    client_id: str | None = typer.Option(None, help="only this client's logs (default: all)"),
    set_: list[str] | None = typer.Option(
        None, "--set", help="override KEY=VALUE, e.g. data_split_config.eval_size=50"
    ),
    config_file: list[Path] | None = typer.Option(None, help="YAML file of overrides for this run"),
    candidate: list[str] | None = typer.Option(None, help="run only these configured candidates"),
    endpoint: str | None = typer.Option(
        None, help="evaluate this OpenAI-compatible endpoint (…/v1) instead of the configured ones"
    ),
    model: str | None = typer.Option(None, help="model name at --endpoint"),
    api_key_env: str | None = typer.Option(None, help="env var holding --endpoint's API key"),
    since: str | None = typer.Option(
        None, help="only logs from this ISO date/time, or this long before now (7d, 12h)"
    ),
    until: str | None = typer.Option(None, help="only logs before this ISO date/time or span"),
    wait: bool = typer.Option(False, help="show live progress, then the results"),
    json_: bool = typer.Option(False, "--json", help="with --wait: print results as JSON"),
) -> None:
    """Start a flywheel run for a workload."""
    settings = state(ctx).settings()
    overrides = run_overrides(set_, config_file)
    if endpoint or model:
        if not (endpoint and model):
            fail("--endpoint and --model go together", EXIT_USAGE)
        if candidate:
            fail("use either --candidate or --endpoint/--model, not both", EXIT_USAGE)
        overrides["candidates"] = [endpoint_candidate(endpoint, model, api_key_env)]

    async def go() -> FlywheelRunResult | None:
        settings.run_config(overrides)  # a bad override is reported before connecting
        resolve_window(since, until, utcnow())
        async with await FlywheelClient.connect(settings) as fw:
            run_id = await fw.start_run(
                workload_id,
                client_id,
                overrides=overrides,
                candidates=candidate,
                since=since,
                until=until,
            )
            if not json_:
                console.print(f"started run [bold]{run_id}[/bold]")
                link = ui_link(settings, run_id)
                if link:
                    console.print(f"Web UI: {link}", soft_wrap=True, highlight=False)
            if not wait:
                console.print(f"follow it with `flywheel status {run_id}`")
                return None
            return await watch(fw, run_id)

    result = run_async(go())
    if result is not None:
        _show_results(result, json_)
        if result.status != RunStatus.COMPLETED:
            raise typer.Exit(EXIT_FAILED)


def _show_results(
    result: FlywheelRunResult,
    as_json: bool,
    examples: dict[str, list[dict[str, Any]]] | None = None,
) -> None:
    if as_json:
        payload = result.model_dump(mode="json")
        if examples is not None:
            payload["examples"] = examples
        console.print_json(data=payload)
    else:
        console.print(render.results_view(result))
        if examples is not None:
            console.print(render.examples_view(examples))


@app.command()
def status(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="run id (see `flywheel list`)"),
    json_: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """A run's status and, while it runs, each candidate's stage and latest heartbeat."""
    settings = state(ctx).settings()

    async def go() -> tuple[RunSummary, Any]:
        async with await FlywheelClient.connect(settings) as fw:
            summary = await fw.describe(run_id)
            progress = await fw.progress(run_id)
            return summary, progress

    summary, progress = run_async(go())
    if json_:
        payload = {
            "run": summary.model_dump(mode="json"),
            "progress": progress.model_dump(mode="json") if progress else None,
        }
        console.print_json(data=payload)
        return
    console.print(render.runs_table([summary]))
    if progress is not None:
        console.print(render.progress_view(progress))


@app.command("list")
def list_runs(
    ctx: typer.Context,
    workload: str | None = typer.Option(None, help="only this workload's runs"),
    status_: str | None = typer.Option(
        None, "--status", help="running, completed, failed, canceled, terminated, timed_out"
    ),
    limit: int = typer.Option(20, min=1, help="at most this many runs"),
    json_: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """Recent runs, newest first."""
    settings = state(ctx).settings()

    async def go() -> list[RunSummary]:
        async with await FlywheelClient.connect(settings) as fw:
            return await fw.list_runs(workload_id=workload, status=status_, limit=limit)

    runs = run_async(go())
    if json_:
        console.print_json(data=[r.model_dump(mode="json") for r in runs])
    elif not runs:
        console.print("no runs found")
    else:
        console.print(render.runs_table(runs))


@app.command()
def cancel(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="run id"),
    wait: bool = typer.Option(False, help="wait until every candidate has torn down"),
) -> None:
    """Cancel a running run: candidates tear down their deployments before it ends."""
    settings = state(ctx).settings()

    async def go() -> None:
        async with await FlywheelClient.connect(settings) as fw:
            await fw.cancel(run_id)
            console.print(f"cancellation requested for {run_id}")
            if wait:
                await fw.wait(run_id)
                console.print("cancelled; teardown finished")

    run_async(go())


@app.command()
def delete(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="run id"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Delete what a finished run created: NeMo datasets, customized models and evaluation
    jobs, its artifacts, stored results and Temporal history. Refuses a running run."""
    settings = state(ctx).settings()
    if not yes:
        if not sys.stdin.isatty():
            fail(f"deleting {run_id} cannot be undone: pass --yes to confirm", EXIT_USAGE)
        typer.confirm(f"Delete run {run_id} and everything it created?", abort=True)

    async def go() -> list[str]:
        assert settings.artifact_store_uri is not None
        platforms = build_platforms(settings, ArtifactStore(settings.artifact_store_uri))
        try:
            async with await FlywheelClient.connect(settings) as fw:
                return (await fw.delete(run_id, platforms=platforms)).deleted
        finally:
            for platform in platforms.values():
                await platform.aclose()

    deleted = run_async(go())
    for line in deleted:
        console.print(f"deleted {line}" if not line.startswith("(") else line)
    console.print(f"run {run_id} deleted" if deleted else f"nothing left of run {run_id}")


@app.command()
def results(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="run id"),
    json_: bool = typer.Option(False, "--json", help="print everything as JSON"),
    examples: bool = typer.Option(
        False, "--examples", help="also show where each candidate differs most from production"
    ),
) -> None:
    """A run's results: the recommendation first, then curation counts and, per candidate and
    eval, scores with 95% intervals and verdicts, cost and savings, latency."""
    settings = state(ctx).settings()

    async def go() -> tuple[FlywheelRunResult, dict[str, list[dict[str, Any]]] | None]:
        async with await FlywheelClient.connect(settings) as fw:
            result = await fw.results(run_id)
            return result, (await fw.examples(result) if examples else None)

    result, found = run_async(go())
    _show_results(result, json_, found)


@app.command()
def history(
    ctx: typer.Context,
    workload_id: str = typer.Argument(..., help="the workload"),
    limit: int = typer.Option(50, min=1, help="the newest this many runs"),
    json_: bool = typer.Option(False, "--json", help="print as JSON"),
) -> None:
    """Every stored run of a workload, oldest first: the recommendation with its score,
    interval, cost and savings; a regression of the previously recommended candidate is
    flagged. Reads the result store only (no Temporal server needed)."""
    settings = state(ctx).settings()

    async def go() -> list[HistoryEntry]:
        return await run_history(settings, workload_id, limit=limit)

    entries = run_async(go())
    if json_:
        console.print_json(data=[e.model_dump(mode="json") for e in entries])
    elif not entries:
        console.print(f"no stored runs of workload {workload_id}")
    else:
        console.print(render.history_table(workload_id, entries))
        regressions = [e for e in entries if e.regression]
        if regressions:
            latest = regressions[-1]
            console.print(
                Text(f"regression in {latest.run_id}: {latest.regression}", style="bold red")
            )


@app.command()
def report(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="run id"),
    out: Path = typer.Option(..., "--out", "-o", help="the HTML file to write"),
) -> None:
    """Write one self-contained HTML report of a run (no external assets): recommendation,
    score-vs-cost chart, per-tool accuracy, latency, curation, divergent examples, config."""
    from flywheel.report.html import render_report

    settings = state(ctx).settings()
    target = out.expanduser()
    if target.is_dir():
        fail(f"--out {out} is a directory: name the HTML file to write", EXIT_USAGE)
    if not target.parent.is_dir():
        fail(f"cannot write {out}: the folder {target.parent} does not exist", EXIT_USAGE)

    async def go() -> str:
        async with await FlywheelClient.connect(settings) as fw:
            result = await fw.results(run_id)
            return render_report(result, await fw.examples(result))

    page = run_async(go())
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    console.print(f"wrote {target} ({len(page.encode()) // 1024 + 1} KiB)", highlight=False)


@app.command()
def quickstart(
    ctx: typer.Context,
    endpoint: str | None = typer.Option(
        None, help="evaluate this OpenAI-compatible endpoint (…/v1) instead of local SmolLM2"
    ),
    model: str | None = typer.Option(None, help="the candidate's model name at --endpoint"),
    api_key_env: str | None = typer.Option(None, help="env var holding the endpoint's API key"),
    records: int = typer.Option(320, min=60, help="sample log records to generate"),
    port: int | None = typer.Option(None, help="Temporal port (default 7233, else a free one)"),
    ui_port: int | None = typer.Option(None, help="Web UI port (default 8233, else a free one)"),
    set_: list[str] | None = typer.Option(None, "--set", help="override KEY=VALUE for the run"),
    keep_running: bool | None = typer.Option(
        None, help="keep the server up after the run (default: when run in a terminal)"
    ),
) -> None:
    """Run the whole flywheel on this machine: a sample workload, SmolLM2 on the local platform
    (base, few-shot, LoRA-tuned) or the endpoint you name, the results and the Web UI."""
    import sys

    from flywheel.quickstart import QuickstartEvents, run_quickstart, smollm2_candidate

    if bool(endpoint) != bool(model):
        fail("--endpoint and --model go together", EXIT_USAGE)
    settings = state(ctx).settings()
    overrides = run_overrides(set_, None)
    keep = sys.stdin.isatty() if keep_running is None else keep_running

    async def wait_for_exit() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        console.print("the run stays inspectable in the Web UI; Ctrl-C stops the server")
        await stop.wait()

    async def watch_and_show(fw: FlywheelClient, run_id: str) -> FlywheelRunResult:
        result = await watch(fw, run_id)
        _show_results(result, False)
        return result

    events = QuickstartEvents(
        say=lambda text: console.print(text, highlight=False, soft_wrap=True),
        watch=watch_and_show,
        wait_for_exit=wait_for_exit if keep else None,
    )

    async def go() -> FlywheelRunResult:
        if endpoint and model:
            candidate = endpoint_candidate(endpoint, model, api_key_env)
        else:
            candidate = smollm2_candidate()
        return await run_quickstart(
            settings,
            candidate=candidate,
            records=records,
            compact=candidate["platform"] == "local",
            port=port,
            ui_port=ui_port,
            overrides=overrides,
            events=events,
        )

    result = run_async(go())
    if result.status != RunStatus.COMPLETED:
        raise typer.Exit(EXIT_FAILED)


# --- configuration --------------------------------------------------------------------------


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    set_: list[str] | None = typer.Option(None, "--set", help="override KEY=VALUE"),
    config_file: list[Path] | None = typer.Option(None, help="YAML file of overrides"),
) -> None:
    """Print the effective run configuration (file + environment + overrides) as YAML."""
    import yaml

    settings = state(ctx).settings()
    overrides = run_overrides(set_, config_file)

    async def go() -> dict[str, Any]:
        return settings.run_config(overrides).model_dump(mode="json")

    snapshot = run_async(go())
    stores = {
        "temporal": settings.temporal.model_dump(mode="json"),
        "log_store_url": settings.log_store_url,
        "result_store_url": settings.result_store_url,
        "artifact_store_uri": settings.artifact_store_uri,
    }
    typer.echo(yaml.safe_dump({**stores, **snapshot}, sort_keys=False), nl=False)


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the configuration; exit 2 with the offending key when it is invalid."""
    settings = state(ctx).settings()

    async def go() -> int:
        return len(settings.run_config().candidates)

    count = run_async(go())
    console.print(f"configuration is valid ({count} candidate(s))")


def main() -> None:
    """Entry point. Exits through ``os._exit`` once output is flushed: the Temporal SDK's
    background threads can otherwise abort the interpreter while it shuts down."""
    import os
    import sys

    # Model libraries draw progress bars (GGUF conversion, weight loading); the CLI shows its own
    # progress, and a worker's output is logs. Read by tqdm when it is imported, so set it first.
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
