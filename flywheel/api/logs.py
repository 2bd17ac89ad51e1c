"""Logs in the log store: load a JSONL file, list workloads, write a sample workload."""

from __future__ import annotations

from pathlib import Path

from flywheel.clients.logstore import WorkloadSummary, open_log_store
from flywheel.clients.logstore.loader import LoadReport, load_jsonl
from flywheel.config import Settings


async def load_logs(
    settings: Settings,
    path: Path,
    *,
    workload_id: str | None = None,
    client_id: str | None = None,
    batch_size: int = 1000,
) -> LoadReport:
    """Ingest a JSONL file of log records; every line is either stored or reported as rejected."""
    assert settings.log_store_url is not None
    store = open_log_store(settings.log_store_url)
    try:
        return await load_jsonl(
            path, store, workload_id=workload_id, client_id=client_id, batch_size=batch_size
        )
    finally:
        await store.aclose()


async def list_workloads(settings: Settings) -> list[WorkloadSummary]:
    assert settings.log_store_url is not None
    store = open_log_store(settings.log_store_url)
    try:
        return await store.workloads()
    finally:
        await store.aclose()
