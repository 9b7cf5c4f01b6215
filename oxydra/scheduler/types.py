"""Schedule types, in the Rust version's JSON shapes (`cadence_json`, lowercase statuses)."""

from __future__ import annotations

from typing import Literal

import msgspec

NotificationPolicy = Literal["always", "conditional", "never"]
ScheduleStatus = Literal["active", "paused", "completed", "disabled"]
RunStatus = Literal["success", "failed", "cancelled", "interrupted"]
CadenceType = Literal["cron", "once", "interval"]


class Once(msgspec.Struct, frozen=True, tag="once", tag_field="type"):
    """Run once at `at` (RFC 3339, with an offset)."""

    at: str


class Cron(msgspec.Struct, frozen=True, tag="cron", tag_field="type"):
    """A five-field cron expression (standard numbering: 0 or 7 = Sunday) in a time zone."""

    expression: str
    timezone: str


class Interval(msgspec.Struct, frozen=True, tag="interval", tag_field="type"):
    """Every `every_secs` seconds, re-anchored after each run."""

    every_secs: int


Cadence = Once | Cron | Interval


class ScheduleDefinition(msgspec.Struct, frozen=True, kw_only=True):
    """A stored schedule."""

    schedule_id: str
    user_id: str
    name: str | None
    goal: str
    cadence: Cadence
    timezone: str = "UTC"
    notification_policy: NotificationPolicy = "always"
    status: ScheduleStatus = "active"
    created_at: str
    updated_at: str
    next_run_at: str | None = None
    last_run_at: str | None = None
    last_run_status: RunStatus | None = None
    consecutive_failures: int = 0
    channel_id: str | None = None
    channel_context_id: str | None = None


class ScheduleRun(msgspec.Struct, frozen=True, kw_only=True):
    """One run of a schedule."""

    run_id: str
    schedule_id: str
    started_at: str
    finished_at: str | None
    status: RunStatus | Literal["running"]
    output_summary: str | None = None
    output: str | None = None
    turn_count: int = 0
    cost: float = 0.0
    notified: bool = False


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    """How a claimed run ended, as the executor hands it to the store."""

    run_id: str
    status: RunStatus
    output: str
    turn_count: int = 0
    cost: float = 0.0
    notified: bool = False


class OutputChunk(msgspec.Struct, frozen=True, kw_only=True):
    """A slice of a run's full output (`schedule_run_output`); offsets count UTF-8 bytes."""

    run_id: str
    offset: int
    max_chars: int
    chunk: str
    remaining: int
    total_length: int


class ScheduleFilters(msgspec.Struct, frozen=True, kw_only=True):
    """`schedule_search` filters."""

    name: str | None = None
    status: ScheduleStatus | None = None
    cadence_type: CadenceType | None = None
    notification: NotificationPolicy | None = None
    limit: int = 20
    offset: int = 0


class SchedulePatch(msgspec.Struct, frozen=True, kw_only=True):
    """`schedule_edit` changes; `None` leaves a field as it is."""

    name: str | None = None
    goal: str | None = None
    cadence: Cadence | None = None
    timezone: str | None = None
    notification_policy: NotificationPolicy | None = None
    status: Literal["active", "paused"] | None = None
