"""The schedule tools the model calls: create, search, edit, delete, runs, run output.

Every tool acts for `ctx.user_id` (the caller, never an argument), so a user can neither
see nor change another user's schedules; the store reports someone else's schedule as
missing. A schedule remembers where it was created (`ctx.channel` and `ctx.session_id`),
which is where its notifications go. Parameters and outputs follow the Rust version's
tools (reference §6); a bad cadence is an arguments error the model can correct.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from oxydra.config.schema import SchedulerConfig
from oxydra.core.errors import SchedulerError, ToolArgumentsError, ToolError
from oxydra.core.tiers import SafetyTier
from oxydra.scheduler._rules import local_time
from oxydra.scheduler._store import ScheduleStore
from oxydra.scheduler.cadence import cadence_from_tool, validate, zone
from oxydra.scheduler.executor import Clock, utc_now
from oxydra.scheduler.types import (
    Cadence,
    CadenceType,
    NotificationPolicy,
    OutputChunk,
    RunStatus,
    ScheduleDefinition,
    ScheduleFilters,
    SchedulePatch,
    ScheduleRun,
    ScheduleStatus,
)
from oxydra.tools import FunctionTool, ToolExecutionContext, tool

SEARCH_MAX = 50
CadenceValue = str | int
Offset = Annotated[int, msgspec.Meta(ge=0)]
RUNS_MAX = 20
MIN_CHARS, MAX_CHARS = 200, 8000
Positive = Annotated[int, msgspec.Meta(ge=1)]
Goal = Annotated[str, msgspec.Meta(min_length=1)]


class ScheduleView(msgspec.Struct, kw_only=True):
    """A schedule as the tools show it (`next_run_local` is in the schedule's time zone)."""

    schedule_id: str
    name: str | None
    goal: str
    cadence: Cadence
    timezone: str
    notification_policy: NotificationPolicy
    status: ScheduleStatus
    created_at: str
    updated_at: str
    next_run_at: str | None
    next_run_local: str | None
    last_run_at: str | None
    last_run_status: RunStatus | None
    consecutive_failures: int


class SearchPage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`schedule_search` output."""

    schedules: list[ScheduleView]
    total: int
    offset: int
    limit: int
    remaining: int
    hint: str | None = None


class Deleted(msgspec.Struct, kw_only=True):
    """`schedule_delete` output."""

    schedule_id: str
    deleted: bool
    message: str


class RunList(msgspec.Struct, kw_only=True):
    """`schedule_runs` output."""

    schedule_id: str
    runs: list[ScheduleRun]


def view(schedule: ScheduleDefinition) -> ScheduleView:
    """The tool view of a stored schedule."""
    return ScheduleView(
        schedule_id=schedule.schedule_id, name=schedule.name, goal=schedule.goal,
        cadence=schedule.cadence, timezone=schedule.timezone,
        notification_policy=schedule.notification_policy, status=schedule.status,
        created_at=schedule.created_at, updated_at=schedule.updated_at,
        next_run_at=schedule.next_run_at,
        next_run_local=local_time(schedule.next_run_at, schedule.timezone),
        last_run_at=schedule.last_run_at, last_run_status=schedule.last_run_status,
        consecutive_failures=schedule.consecutive_failures,
    )  # fmt: skip


def _cadence(kind: CadenceType, value: CadenceValue, timezone: str) -> Cadence:
    try:
        return cadence_from_tool(kind, str(value), timezone)
    except SchedulerError as exc:
        raise ToolArgumentsError(exc.message) from exc


def schedule_tools(
    store: ScheduleStore, config: SchedulerConfig, *, clock: Clock = utc_now
) -> tuple[FunctionTool, ...]:
    """The six schedule tools over `store`, with the limits of `[scheduler]`."""

    @tool(name="schedule_create", timeout=10, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def schedule_create(
        ctx: ToolExecutionContext,
        goal: Goal,
        cadence_type: CadenceType,
        cadence_value: CadenceValue,
        name: str | None = None,
        timezone: str | None = None,
        notification: NotificationPolicy = "always",
    ) -> ScheduleView:
        """Schedule a goal to run later or repeatedly as its own agent turn.

        Args:
            goal: What the scheduled run should do, written as an instruction to yourself.
            cadence_type: cron (5 fields, 0 or 7 = Sunday), once, or interval.
            cadence_value: The cron expression, an RFC 3339 time with offset (once), or
                whole seconds (interval).
            name: A short name to find the schedule by.
            timezone: IANA time zone for cron and for showing times; the configured
                default if omitted.
            notification: always (send every result), conditional (only replies that
                start with [NOTIFY]), or never.
        """
        zone_name = timezone or config.default_timezone
        cadence = _cadence(cadence_type, cadence_value, zone_name)
        now = clock()
        try:
            zone(zone_name)
            validate(cadence, now=now, min_interval_secs=config.min_interval_secs)
        except SchedulerError as exc:
            raise ToolArgumentsError(exc.message) from exc
        try:
            created = await store.create(
                user_id=ctx.user_id, goal=goal, cadence=cadence, timezone=zone_name,
                now=now, max_per_user=config.max_schedules_per_user,
                min_interval_secs=config.min_interval_secs, name=name,
                notification_policy=notification, channel_id=ctx.channel,
                channel_context_id=ctx.session_id,
            )  # fmt: skip
        except SchedulerError as exc:
            raise ToolError(exc.message) from exc
        return view(created)

    @tool(name="schedule_search", timeout=10, safety_tier=SafetyTier.READ_ONLY)
    async def schedule_search(
        ctx: ToolExecutionContext,
        name: str | None = None,
        status: ScheduleStatus | None = None,
        cadence_type: CadenceType | None = None,
        notification: NotificationPolicy | None = None,
        limit: Positive = 20,
        offset: Offset = 0,
    ) -> SearchPage:
        """List your schedules, newest first.

        Args:
            name: Part of the schedule's name.
            status: active, paused, completed or disabled.
            cadence_type: cron, once or interval.
            notification: always, conditional or never.
            limit: How many to return (at most 50; larger values are cut to 50).
            offset: How many to skip, for the next page.
        """
        limit = min(limit, SEARCH_MAX)
        filters = ScheduleFilters(
            name=name, status=status, cadence_type=cadence_type, notification=notification,
            limit=limit, offset=offset,
        )  # fmt: skip
        found, total = await store.search(ctx.user_id, filters)
        remaining = max(total - offset - len(found), 0)
        following = offset + len(found)
        hint = f"{remaining} more; call again with offset={following}" if remaining else None
        return SearchPage(
            schedules=[view(s) for s in found], total=total, offset=offset, limit=limit,
            remaining=remaining, hint=hint,
        )  # fmt: skip

    @tool(name="schedule_edit", timeout=10, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def schedule_edit(
        ctx: ToolExecutionContext,
        schedule_id: str,
        name: str | None = None,
        goal: str | None = None,
        cadence_type: CadenceType | None = None,
        cadence_value: CadenceValue | None = None,
        timezone: str | None = None,
        notification: NotificationPolicy | None = None,
        status: Literal["active", "paused"] | None = None,
    ) -> ScheduleView:
        """Change one of your schedules; omitted fields stay as they are.

        Args:
            schedule_id: The schedule to change.
            name: A new name.
            goal: A new goal.
            cadence_type: A new cadence type; give cadence_value with it.
            cadence_value: A new cadence value; give cadence_type with it.
            timezone: A new IANA time zone (a cron schedule is re-timed in it).
            notification: always, conditional or never.
            status: paused stops the schedule; active resumes it (and resets its failure count).
        """
        if (cadence_type is None) != (cadence_value is None):
            raise ToolArgumentsError("give cadence_type and cadence_value together, or neither")
        try:
            cadence = None
            if cadence_type is not None and cadence_value is not None:
                current = await store.get(ctx.user_id, schedule_id)
                cadence = _cadence(cadence_type, cadence_value, timezone or current.timezone)
            patch = SchedulePatch(
                name=name, goal=goal, cadence=cadence, timezone=timezone,
                notification_policy=notification, status=status,
            )  # fmt: skip
            updated = await store.edit(
                ctx.user_id, schedule_id, patch, now=clock(),
                min_interval_secs=config.min_interval_secs,
            )  # fmt: skip
        except SchedulerError as exc:
            raise ToolError(exc.message) from exc
        return view(updated)

    @tool(name="schedule_delete", timeout=10, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def schedule_delete(ctx: ToolExecutionContext, schedule_id: str) -> Deleted:
        """Delete one of your schedules and its run history.

        Args:
            schedule_id: The schedule to delete.
        """
        try:
            await store.delete(ctx.user_id, schedule_id)
        except SchedulerError as exc:
            raise ToolError(exc.message) from exc
        return Deleted(schedule_id=schedule_id, deleted=True, message="schedule deleted")

    @tool(name="schedule_runs", timeout=10, safety_tier=SafetyTier.READ_ONLY)
    async def schedule_runs(
        ctx: ToolExecutionContext, schedule_id: str, limit: Positive = 5
    ) -> RunList:
        """Show the latest runs of one of your schedules, newest first.

        Args:
            schedule_id: The schedule.
            limit: How many runs (at most 20).
        """
        try:
            runs = await store.runs(ctx.user_id, schedule_id, min(limit, RUNS_MAX))
        except SchedulerError as exc:
            raise ToolError(exc.message) from exc
        return RunList(schedule_id=schedule_id, runs=runs)

    @tool(name="schedule_run_output", timeout=10, safety_tier=SafetyTier.READ_ONLY)
    async def schedule_run_output(
        ctx: ToolExecutionContext, run_id: str, offset: Offset = 0, max_chars: Positive = 4000
    ) -> OutputChunk:
        """Read the full output of a scheduled run, a piece at a time.

        Args:
            run_id: The run (from schedule_runs).
            offset: Byte offset to start at (0 first; then offset plus the bytes read).
            max_chars: Most characters to return (kept within 200-8000).
        """
        chars = min(max(max_chars, MIN_CHARS), MAX_CHARS)
        try:
            return await store.run_output(ctx.user_id, run_id, offset, chars)
        except SchedulerError as exc:
            raise ToolError(exc.message) from exc

    return (
        schedule_create,
        schedule_search,
        schedule_edit,
        schedule_delete,
        schedule_runs,
        schedule_run_output,
    )
