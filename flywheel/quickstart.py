"""`flywheel quickstart`: the whole loop on one machine, with nothing to install or configure.

Starts the embedded Temporal dev server and a worker, writes and loads a sample customer-service
workload, runs the flywheel against the candidate endpoint you name, and shows the results.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from flywheel.api import FlywheelClient, load_logs
from flywheel.clients.logstore.loader import LoadReport
from flywheel.config import Settings
from flywheel.devserver import DevServer, free_port, port_is_free
from flywheel.sample_data import generate_customer_service_logs, write_jsonl
from flywheel.schemas import FlywheelRunResult

QUICKSTART_WORKLOAD = "customer-service"
QUICKSTART_CLIENT = "quickstart"


@dataclass
class QuickstartEvents:
    """Callbacks through which the CLI shows what the quickstart is doing."""

    say: Callable[[str], None]
    watch: Callable[[FlywheelClient, str], Awaitable[FlywheelRunResult]]
    wait_for_exit: Callable[[], Awaitable[None]] | None = None


async def run_quickstart(
    settings: Settings,
    *,
    candidate: dict[str, Any],
    records: int = 400,
    port: int | None = None,
    ui_port: int | None = None,
    overrides: dict[str, Any] | None = None,
    events: QuickstartEvents,
) -> FlywheelRunResult:
    """Run the quickstart end to end; the server and worker stop when this returns."""
    from flywheel.worker import run_worker

    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    server = DevServer(
        db_file=data_dir / "temporal.db",
        port=port or _preferred_port(7233),
        ui_port=ui_port or _preferred_port(8233),
        namespace=settings.temporal.namespace,
    )
    await server.start()
    temporal = settings.temporal.model_copy(
        update={"address": server.address, "ui_url": server.ui_url}
    )
    local = settings.model_copy(update={"temporal": temporal})
    stop = asyncio.Event()
    worker_task = asyncio.create_task(run_worker(local, stop=stop))
    try:
        events.say(f"Temporal dev server at {server.address}, Web UI at {server.ui_url}")
        logs_file = data_dir / "sample-customer-service.jsonl"
        write_jsonl(
            logs_file,
            generate_customer_service_logs(
                records, workload_id=QUICKSTART_WORKLOAD, client_id=QUICKSTART_CLIENT
            ),
        )
        report: LoadReport = await load_logs(local, logs_file)
        events.say(f"loaded {report.accepted} sample log records from {logs_file}")
        run_overrides = dict(overrides or {})
        run_overrides["candidates"] = [candidate]
        async with await FlywheelClient.connect(local) as fw:
            run_id = await fw.start_run(
                QUICKSTART_WORKLOAD, QUICKSTART_CLIENT, overrides=run_overrides
            )
            events.say(
                f"started run {run_id}: "
                f"{server.ui_url}/namespaces/{temporal.namespace}/workflows/{run_id}"
            )
            result = await events.watch(fw, run_id)
        if events.wait_for_exit is not None:
            await events.wait_for_exit()
        return result
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await worker_task
        await server.stop()


def _preferred_port(port: int) -> int:
    return port if port_is_free("127.0.0.1", port) else free_port()
