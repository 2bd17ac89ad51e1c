"""The async Python API that the CLI is a thin layer over (usable from notebooks and services)."""

from flywheel.api.logs import list_workloads, load_logs
from flywheel.api.runs import FlywheelClient, RunSummary, make_run_id
from flywheel.api.schedules import Schedules, ScheduleSummary, parse_duration, schedule_id

__all__ = [
    "FlywheelClient",
    "RunSummary",
    "ScheduleSummary",
    "Schedules",
    "list_workloads",
    "load_logs",
    "make_run_id",
    "parse_duration",
    "schedule_id",
]
