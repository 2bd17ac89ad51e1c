"""The async Python API that the CLI is a thin layer over (usable from notebooks and services)."""

from flywheel.api.logs import list_workloads, load_logs
from flywheel.api.results import HistoryEntry, load_examples, run_history
from flywheel.api.runs import FlywheelClient, RunSummary, make_run_id
from flywheel.api.schedules import Schedules, ScheduleSummary, parse_duration, schedule_id

__all__ = [
    "FlywheelClient",
    "HistoryEntry",
    "RunSummary",
    "ScheduleSummary",
    "Schedules",
    "list_workloads",
    "load_examples",
    "load_logs",
    "make_run_id",
    "parse_duration",
    "run_history",
    "schedule_id",
]
