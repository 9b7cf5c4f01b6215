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

from oxydra.scheduler._store import ScheduleStore
from oxydra.scheduler._table import SCHEDULE_SCHEMA, ScheduleTable
from oxydra.scheduler.cadence import (
    cadence_from_tool,
    format_instant,
    next_run,
    parse_instant,
    validate,
)
from oxydra.scheduler.executor import Notifier, Outbox, SchedulerExecutor, utc_now
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
    "Outbox",
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
