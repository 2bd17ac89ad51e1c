"""Logs in the log store: load a JSONL file, list workloads, write a sample workload."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flywheel.clients.logstore import LogStore, WorkloadSummary, open_log_store
from flywheel.clients.logstore.loader import LoadReport, load_jsonl
from flywheel.config import Settings, read_secret


async def load_logs(
    settings: Settings,
    path: Path,
    *,
    workload_id: str | None = None,
    client_id: str | None = None,
    batch_size: int = 1000,
) -> LoadReport:
    """Ingest a JSONL file of log records; every line is either stored or reported as rejected."""
    store = _open(settings)
    try:
        return await load_jsonl(
            path, store, workload_id=workload_id, client_id=client_id, batch_size=batch_size
        )
    finally:
        await store.aclose()


async def list_workloads(
    settings: Settings, *, since: datetime | None = None, until: datetime | None = None
) -> list[WorkloadSummary]:
    """One summary per (workload, client), counting only records in [since, until) if given."""
    store = _open(settings)
    try:
        return await store.workloads(since=since, until=until)
    finally:
        await store.aclose()


def _open(settings: Settings) -> LogStore:
    assert settings.log_store_url is not None
    return open_log_store(
        settings.log_store_url, api_key=read_secret(settings.log_store_api_key_env)
    )
