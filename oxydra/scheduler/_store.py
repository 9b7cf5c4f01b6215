"""`ScheduleStore`: the scheduler's async store over the memory database.

Every call runs `ScheduleTable` on the memory store's single worker thread (`Memory.call`),
so the scheduler adds no second writer and never blocks the event loop. The store also is
the gateway's notification outbox (`put` / `take`) and wakes the executor (`changed`)
when a schedule is created or edited.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Concatenate, ParamSpec, TypeVar

from oxydra.core.messages import Message
from oxydra.memory import Database, Memory
from oxydra.scheduler._rules import first_run, stamp
from oxydra.scheduler._table import InterruptedRun, ScheduleTable
from oxydra.scheduler.cadence import parse_instant, validate, zone
from oxydra.scheduler.types import (
    Cadence,
    NotificationPolicy,
    OutputChunk,
    RunResult,
    ScheduleDefinition,
    ScheduleFilters,
    SchedulePatch,
    ScheduleRun,
)
from oxydra.wire.gateway import ScheduledNotification

P = ParamSpec("P")
T = TypeVar("T")


def _on_table(
    method: Callable[Concatenate[ScheduleTable, P], T],
) -> Callable[Concatenate[Database, P], T]:
    def run(db: Database, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return method(ScheduleTable(db), *args, **kwargs)

    return run


class ScheduleStore:
    """Schedules, runs and kept notifications (async; see `ScheduleTable` for semantics).

    Args:
        memory: the open memory store; its worker thread runs every call.
        holder: this host's id when several hosts share the store (PostgreSQL): claimed
            runs then carry a lease of `lease_secs` that the executor renews.
        lease_secs: how long a claimed run's lease lasts without renewal.
    """

    def __init__(
        self, memory: Memory, *, holder: str | None = None, lease_secs: float = 60.0
    ) -> None:
        self._memory = memory
        self.holder = holder
        self.lease_secs = lease_secs
        self.changed = asyncio.Event()

    async def create(
        self,
        *,
        user_id: str,
        goal: str,
        cadence: Cadence,
        timezone: str,
        now: datetime,
        max_per_user: int,
        min_interval_secs: int,
        name: str | None = None,
        notification_policy: NotificationPolicy = "always",
        channel_id: str | None = None,
        channel_context_id: str | None = None,
    ) -> ScheduleDefinition:
        """Validate and store a new active schedule.

        Raises:
            SchedulerError: bad cadence or time zone, or the user is at the limit.
        """
        zone(timezone)
        validate(cadence, now=now, min_interval_secs=min_interval_secs)
        definition = ScheduleDefinition(
            schedule_id=str(uuid.uuid4()), user_id=user_id, name=name, goal=goal,
            cadence=cadence, timezone=timezone, notification_policy=notification_policy,
            created_at=stamp(now), updated_at=stamp(now), next_run_at=first_run(cadence, now),
            channel_id=channel_id, channel_context_id=channel_context_id,
        )  # fmt: skip
        created = await self._memory.call(
            _on_table(ScheduleTable.create), definition, max_per_user=max_per_user
        )
        self.changed.set()
        return created

    async def get(self, user_id: str, schedule_id: str) -> ScheduleDefinition:
        """The user's schedule (SchedulerError when it is not theirs or missing)."""
        return await self._memory.call(_on_table(ScheduleTable.get), user_id, schedule_id)

    async def search(
        self, user_id: str, filters: ScheduleFilters
    ) -> tuple[list[ScheduleDefinition], int]:
        """A page of the user's schedules (newest first) and the total that match."""
        return await self._memory.call(_on_table(ScheduleTable.search), user_id, filters)

    async def edit(
        self,
        user_id: str,
        schedule_id: str,
        patch: SchedulePatch,
        *,
        now: datetime,
        min_interval_secs: int,
    ) -> ScheduleDefinition:
        """Apply an edit atomically (rules in `_rules.apply_patch`)."""
        updated = await self._memory.call(
            _on_table(ScheduleTable.edit), user_id, schedule_id, patch, now=now,
            min_interval_secs=min_interval_secs,
        )  # fmt: skip
        self.changed.set()
        return updated

    async def delete(self, user_id: str, schedule_id: str) -> None:
        """Delete the user's schedule with its runs."""
        await self._memory.call(_on_table(ScheduleTable.delete), user_id, schedule_id)

    async def runs(self, user_id: str, schedule_id: str, limit: int = 5) -> list[ScheduleRun]:
        """The schedule's latest runs, newest first."""
        return await self._memory.call(_on_table(ScheduleTable.runs), user_id, schedule_id, limit)

    async def run_output(
        self, user_id: str, run_id: str, offset: int = 0, max_chars: int = 4000
    ) -> OutputChunk:
        """A slice of a run's full output from a UTF-8 byte offset."""
        return await self._memory.call(
            _on_table(ScheduleTable.run_output), user_id, run_id, offset, max_chars
        )

    async def due(self, now: datetime, limit: int) -> list[ScheduleDefinition]:
        """Active schedules due at `now`, most overdue first."""
        return await self._memory.call(_on_table(ScheduleTable.due), now, limit)

    async def next_due_at(self) -> str | None:
        """The earliest next run of any active schedule (stored RFC 3339 text)."""
        return await self._memory.call(_on_table(ScheduleTable.next_due_at))

    async def retime(self, now: datetime, jump_secs: float = 0.0) -> int:
        """Move next runs after a wall-clock jump (see `_rules.retimed`)."""
        return await self._memory.call(_on_table(ScheduleTable.retime), now, jump_secs)

    async def claim_run(
        self, schedule_id: str, now: datetime, run_id: str | None = None
    ) -> tuple[str, ScheduleDefinition] | None:
        """Start a run of a due schedule: (run id, schedule), or None if another got it."""
        rid = run_id or str(uuid.uuid4())
        until = now.timestamp() + self.lease_secs if self.holder else None
        claimed = await self._memory.call(
            _on_table(ScheduleTable.claim_run), schedule_id, rid, now, self.holder, until
        )
        return None if claimed is None else (rid, claimed)

    async def renew_leases(self, run_ids: list[str], now: datetime) -> int:
        """Extend this host's leases on `run_ids`; how many it still holds (0 without one)."""
        if self.holder is None:
            return 0
        until = now.timestamp() + self.lease_secs
        return await self._memory.call(
            _on_table(ScheduleTable.renew_leases), run_ids, self.holder, until
        )

    async def record_run_and_reschedule(
        self,
        result: RunResult,
        *,
        now: datetime,
        max_run_history: int,
        auto_disable_after_failures: int,
    ) -> ScheduleDefinition | None:
        """Finish a run, update the schedule and prune its history, in one transaction."""
        return await self._memory.call(
            _on_table(ScheduleTable.finish_run), result, now=now,
            max_run_history=max_run_history,
            auto_disable_after_failures=auto_disable_after_failures,
        )  # fmt: skip

    async def recover(
        self, *, now: datetime, max_run_history: int, auto_disable_after_failures: int
    ) -> list[ScheduleDefinition]:
        """Record runs left `running` by a previous process as interrupted."""
        return await self._memory.call(
            _on_table(ScheduleTable.recover), now=now, max_run_history=max_run_history,
            auto_disable_after_failures=auto_disable_after_failures,
        )  # fmt: skip

    async def interrupted_runs(self, expired_at: datetime | None = None) -> list[InterruptedRun]:
        """Runs a previous process left `running`; with `expired_at`, only those whose lease
        ended before it (a dead host's)."""
        at = None if expired_at is None else expired_at.timestamp()
        return await self._memory.call(_on_table(ScheduleTable.interrupted_runs), at)

    async def finish_interrupted(
        self,
        run_id: str,
        *,
        retry: bool,
        output: str,
        now: datetime,
        max_run_history: int,
        auto_disable_after_failures: int,
        expired_at: datetime | None = None,
    ) -> ScheduleDefinition | None:
        """Finish an interrupted run; with `retry` its schedule is due at once. With
        `expired_at`, only if its lease is still expired then."""
        at = None if expired_at is None else expired_at.timestamp()
        return await self._memory.call(
            _on_table(ScheduleTable.finish_interrupted), run_id, retry=retry, output=output,
            now=now, max_run_history=max_run_history,
            auto_disable_after_failures=auto_disable_after_failures, expired_at=at,
        )  # fmt: skip

    async def run_events(self, schedule_id: str, since: str) -> list[Message]:
        """The messages the schedule's session stored from `since` (a run's start) on.

        Read once per interrupted run at start-up, so the whole session log is scanned.
        """
        start = parse_instant(since)
        events = await self._memory.recall(f"scheduled:{schedule_id}")
        return [e.message for e in events if parse_instant(e.created_at) >= start]

    # ---- the gateway's outbox ---------------------------------------------------------

    async def put(self, user_id: str, frame: ScheduledNotification) -> None:
        """Keep a notification no client received, for the user's next hello."""
        await self._memory.call(
            _on_table(ScheduleTable.put_notification),
            user_id, frame.schedule_id, frame.schedule_name, frame.message,
        )  # fmt: skip

    async def take(self, user_id: str) -> list[ScheduledNotification]:
        """Remove and return the user's kept notifications, oldest first."""
        rows = await self._memory.call(_on_table(ScheduleTable.take_notifications), user_id)
        return [
            ScheduledNotification(schedule_id=sid, schedule_name=name, message=message)
            for sid, name, message in rows
        ]
