"""Scheduler: durable schedules, their cadences, the executor in `vm`, and the model's tools.

Owns the `schedules`, `schedule_runs` and `scheduled_notifications` tables (its migration
`oxydra/scheduler/migrations/0004_schedules.sql`, named by `SCHEDULE_SCHEMA` when the app
opens the memory database; SQL through `Memory.call`). Runs turns only
through the runtime's `TurnRunner`; reaches clients only through a `Notifier` (the
gateway's `GatewayCore`). See docs/scheduler.md.

Facade: `ScheduleStore` (async store and notification outbox), `SchedulerExecutor`,
`schedule_tools(store, config)`; cadence helpers `next_run`, `validate`,
`cadence_from_tool`; types in `oxydra.scheduler.types`.
"""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
    from oxydra.scheduler._store import ScheduleStore
    from oxydra.scheduler._table import SCHEDULE_SCHEMA, ScheduleTable
    from oxydra.scheduler.cadence import (
        cadence_from_tool,
        format_instant,
        next_run,
        parse_instant,
        validate,
    )
    from oxydra.scheduler.executor import Notifier, SchedulerExecutor, utc_now
    from oxydra.scheduler.tools import schedule_tools
    from oxydra.scheduler.types import (
        Cadence,
        Cron,
        Interval,
        Once,
        OutputChunk,
        RunResult,
        ScheduleDefinition,
        ScheduleFilters,
        SchedulePatch,
        ScheduleRun,
    )

__all__ = [
    "Cadence",
    "Cron",
    "Interval",
    "Notifier",
    "Once",
    "OutputChunk",
    "RunResult",
    "SCHEDULE_SCHEMA",
    "ScheduleDefinition",
    "ScheduleFilters",
    "SchedulePatch",
    "ScheduleRun",
    "ScheduleStore",
    "ScheduleTable",
    "SchedulerExecutor",
    "cadence_from_tool",
    "format_instant",
    "next_run",
    "parse_instant",
    "schedule_tools",
    "utc_now",
    "validate",
]

__getattr__ = _lazy_getattr(
    globals(),
    {
        "Cadence": "oxydra.scheduler.types",
        "Cron": "oxydra.scheduler.types",
        "Interval": "oxydra.scheduler.types",
        "Notifier": "oxydra.scheduler.executor",
        "Once": "oxydra.scheduler.types",
        "OutputChunk": "oxydra.scheduler.types",
        "RunResult": "oxydra.scheduler.types",
        "SCHEDULE_SCHEMA": "oxydra.scheduler._table",
        "ScheduleDefinition": "oxydra.scheduler.types",
        "ScheduleFilters": "oxydra.scheduler.types",
        "SchedulePatch": "oxydra.scheduler.types",
        "ScheduleRun": "oxydra.scheduler.types",
        "ScheduleStore": "oxydra.scheduler._store",
        "ScheduleTable": "oxydra.scheduler._table",
        "SchedulerExecutor": "oxydra.scheduler.executor",
        "cadence_from_tool": "oxydra.scheduler.cadence",
        "format_instant": "oxydra.scheduler.cadence",
        "next_run": "oxydra.scheduler.cadence",
        "parse_instant": "oxydra.scheduler.cadence",
        "schedule_tools": "oxydra.scheduler.tools",
        "utc_now": "oxydra.scheduler.executor",
        "validate": "oxydra.scheduler.cadence",
    },
)
