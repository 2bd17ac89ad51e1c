"""Periodic flywheel runs with Temporal Schedules: one schedule per workload, overlap SKIP."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from flywheel.clients.temporal import run_search_attributes
from flywheel.config import Settings
from flywheel.errors import ConfigError, FlywheelError, NotFoundError
from flywheel.schemas import FlywheelRunInput
from flywheel.workflows.flywheel import FlywheelWorkflow

SCHEDULE_PREFIX = "flywheel-schedule-"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class ScheduleSummary(BaseModel):
    schedule_id: str
    workload_id: str | None
    spec: str
    paused: bool
    note: str | None = None
    next_runs: list[datetime] = []
    recent_runs: list[str] = []
    running: list[str] = []
    total_runs: int = 0


def schedule_id(workload_id: str) -> str:
    """The id of a workload's schedule (``flywheel-schedule-{workload_id}``)."""
    return workload_id if workload_id.startswith(SCHEDULE_PREFIX) else SCHEDULE_PREFIX + workload_id


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``6h``, ``1d``, ``2w`` → timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"invalid interval {text!r}: use a number and a unit, e.g. 30m, 6h, 1d")
    value = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if value < 60:
        raise ConfigError(f"invalid interval {text!r}: the shortest interval is 1m")
    return timedelta(seconds=value)


class Schedules:
    """Create and manage the schedules that start FlywheelWorkflow periodically."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    async def create(
        self,
        workload_id: str,
        client_id: str | None = None,
        *,
        cron: Sequence[str] = (),
        every: timedelta | None = None,
        overrides: Mapping[str, Any] | None = None,
        candidates: Sequence[str] | None = None,
        paused: bool = False,
        note: str | None = None,
    ) -> str:
        """Create the workload's schedule; runs are ``flywheel-{workload_id}-<scheduled time>``."""
        sid, schedule = self._schedule(
            workload_id, client_id, cron, every, overrides, candidates, paused, note
        )
        try:
            await self.client.create_schedule(sid, schedule)
        except ScheduleAlreadyRunningError:
            raise FlywheelError(
                f"workload {workload_id!r} already has a schedule ({sid}); delete it first"
            ) from None
        except RPCError as exc:
            raise FlywheelError(f"cannot create schedule {sid}: {exc.message}") from None
        return sid

    async def upsert(
        self,
        workload_id: str,
        client_id: str | None = None,
        *,
        cron: Sequence[str] = (),
        every: timedelta | None = None,
        overrides: Mapping[str, Any] | None = None,
        candidates: Sequence[str] | None = None,
        paused: bool = False,
        note: str | None = None,
    ) -> tuple[str, bool]:
        """Create the workload's schedule, or update the one it has; return (id, created).

        An update replaces what runs and when (action, spec, overlap policy) and keeps the
        schedule's state, so a schedule an operator paused stays paused (``paused`` and
        ``note`` apply on creation only). Re-running it with the same arguments is harmless.
        """
        sid, schedule = self._schedule(
            workload_id, client_id, cron, every, overrides, candidates, paused, note
        )
        try:
            await self.client.create_schedule(sid, schedule)
            return sid, True
        except ScheduleAlreadyRunningError:
            pass
        except RPCError as exc:
            raise FlywheelError(f"cannot create schedule {sid}: {exc.message}") from None

        async def keep_state(update: ScheduleUpdateInput) -> ScheduleUpdate:
            state = update.description.schedule.state
            return ScheduleUpdate(schedule=dataclasses.replace(schedule, state=state))

        try:
            await self.client.get_schedule_handle(sid).update(keep_state)
        except RPCError as exc:
            raise _schedule_error(sid, exc) from None
        return sid, False

    def _schedule(
        self,
        workload_id: str,
        client_id: str | None,
        cron: Sequence[str],
        every: timedelta | None,
        overrides: Mapping[str, Any] | None,
        candidates: Sequence[str] | None,
        paused: bool,
        note: str | None,
    ) -> tuple[str, Schedule]:
        """The schedule's id and definition; raises ConfigError for a bad spec or overrides."""
        if not cron and every is None:
            raise ConfigError("a schedule needs --cron EXPRESSION or --every INTERVAL")
        self.settings.run_config(overrides)
        request = FlywheelRunInput(
            workload_id=workload_id,
            client_id=client_id,
            config_overrides=dict(overrides or {}),
            candidates=list(candidates) if candidates is not None else None,
        )
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                FlywheelWorkflow.run,
                request,
                id=f"flywheel-{workload_id}",
                task_queue=self.settings.temporal.task_queue,
                typed_search_attributes=run_search_attributes(workload_id, client_id),
                static_summary=f"Scheduled flywheel run for workload {workload_id}",
            ),
            spec=ScheduleSpec(
                cron_expressions=list(cron),
                intervals=[ScheduleIntervalSpec(every=every)] if every else [],
            ),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(paused=paused, note=note),
        )
        return schedule_id(workload_id), schedule

    async def list(self) -> list[ScheduleSummary]:
        summaries = []
        async for entry in await self.client.list_schedules():
            if entry.id.startswith(SCHEDULE_PREFIX):
                summaries.append(await self.describe(entry.id))
        return summaries

    async def describe(self, workload_or_id: str) -> ScheduleSummary:
        sid = schedule_id(workload_or_id)
        handle = self.client.get_schedule_handle(sid)
        try:
            description = await handle.describe()
        except RPCError as exc:
            raise _schedule_error(sid, exc) from None
        spec = description.schedule.spec
        parts = [f"cron {c}" for c in spec.cron_expressions]
        parts += [f"every {i.every}" for i in spec.intervals]
        info = description.info
        return ScheduleSummary(
            schedule_id=sid,
            workload_id=sid.removeprefix(SCHEDULE_PREFIX),
            spec=", ".join(parts) or "(calendar spec)",
            paused=description.schedule.state.paused,
            note=description.schedule.state.note or None,
            next_runs=list(info.next_action_times[:3]),
            recent_runs=[
                a.action.workflow_id
                for a in info.recent_actions[-5:]
                if hasattr(a.action, "workflow_id")
            ],
            running=[r.workflow_id for r in info.running_actions],
            total_runs=info.num_actions,
        )

    async def pause(self, workload_or_id: str, note: str | None = None) -> None:
        await self._call(workload_or_id, lambda h: h.pause(note=note or "paused with flywheel"))

    async def unpause(self, workload_or_id: str, note: str | None = None) -> None:
        await self._call(workload_or_id, lambda h: h.unpause(note=note or "unpaused with flywheel"))

    async def trigger(self, workload_or_id: str) -> None:
        """Start a run now (skipped if one of this schedule's runs is still running)."""
        await self._call(workload_or_id, lambda h: h.trigger())

    async def delete(self, workload_or_id: str) -> None:
        await self._call(workload_or_id, lambda h: h.delete())

    async def _call(self, workload_or_id: str, action: Any) -> None:
        sid = schedule_id(workload_or_id)
        handle: ScheduleHandle = self.client.get_schedule_handle(sid)
        try:
            await action(handle)
        except RPCError as exc:
            raise _schedule_error(sid, exc) from None


def _schedule_error(sid: str, exc: RPCError) -> FlywheelError:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return NotFoundError(f"no schedule named {sid} (see `flywheel schedule list`)")
    return FlywheelError(f"schedule {sid}: {exc.message}")
