"""The scheduler's rules as pure functions: edits, what a finished run does, output slices.

Theory of operation (the store applies these inside one transaction):

1. `next_run_at` is set only while a schedule is `active`; `paused`, `completed` and
   `disabled` schedules have none, so the due index never sees them.
2. An edit that changes the cadence, or moves the status to `active`, recomputes the next
   run from now; pausing clears it; any other edit leaves it. A timezone-only edit rebuilds
   an existing cron cadence in the new zone. Re-activating resets the failure count.
3. After a run, the next run is computed from the time the run finished (an interval
   re-anchors; missed firings are not replayed). A `once` cadence has no next run and
   completes. `success` resets the failure count, `failed` increments it (and disables the
   schedule at `auto_disable_after_failures`), `cancelled`/`interrupted` leave it.
4. Stored instants are whole seconds; a next run is rounded *up* so that a schedule is
   never due before its time.
5. Clock jumps (`retimed`): an interval follows elapsed time, so its next run moves with a
   jump the executor measured against the monotonic clock; a cron follows the wall clock, so
   a next run later than the cron's next firing from now (the clock went back) is pulled in
   to that firing; a `once` keeps its instant. Whatever was measured, an interval's next run
   is never more than one interval away (start-up cannot measure a jump made while down).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from oxydra.core.errors import SchedulerError
from oxydra.scheduler.cadence import format_instant, next_run, validate, zone
from oxydra.scheduler.types import (
    Cadence,
    Cron,
    Interval,
    RunStatus,
    ScheduleDefinition,
    SchedulePatch,
    ScheduleStatus,
)

SUMMARY_BYTES = 500
SUMMARY_HEAD_BYTES = 497


def stamp(value: datetime) -> str:
    """An instant as stored (RFC 3339 UTC, seconds truncated)."""
    return format_instant(value)


def stamp_up(value: datetime) -> str:
    """An instant as stored, rounded up to the next whole second."""
    if value.microsecond:
        value = value + timedelta(microseconds=1_000_000 - value.microsecond)
    return format_instant(value)


def first_run(cadence: Cadence, now: datetime) -> str:
    """The first run of a new or re-timed schedule.

    Raises:
        SchedulerError: the cadence never fires again (a `once` in the past).
    """
    found = next_run(cadence, now)
    if found is None:
        raise SchedulerError("this cadence has no future run; give a time in the future")
    return stamp_up(found)


def retimed(cadence: Cadence, current: datetime, now: datetime, jump_secs: float) -> str | None:
    """The next run after a wall-clock jump of `jump_secs` (rule 5); None when unchanged."""
    match cadence:
        case Interval(every_secs=secs):
            wanted = min(current + timedelta(seconds=jump_secs), now + timedelta(seconds=secs))
        case Cron():
            upcoming = next_run(cadence, now)
            if upcoming is None or upcoming >= current:
                return None
            wanted = upcoming
        case _:
            return None
    text = stamp_up(wanted)
    return None if text == stamp_up(current) else text


def apply_patch(
    current: ScheduleDefinition,
    patch: SchedulePatch,
    *,
    now: datetime,
    min_interval_secs: int,
) -> ScheduleDefinition:
    """The schedule after an edit (rule 2).

    Raises:
        SchedulerError: a new cadence or timezone is invalid, or re-activating a schedule
            whose cadence has no future run.
    """
    timezone = patch.timezone or current.timezone
    zone(timezone)
    cadence = patch.cadence
    if cadence is None and patch.timezone and isinstance(current.cadence, Cron):
        cadence = Cron(expression=current.cadence.expression, timezone=patch.timezone)
    if cadence is not None:
        validate(cadence, now=now, min_interval_secs=min_interval_secs)
    status: ScheduleStatus = patch.status or current.status
    reactivated = patch.status == "active" and current.status != "active"
    new_cadence = cadence or current.cadence
    next_at = current.next_run_at
    if status != "active":
        next_at = None
    elif cadence is not None or reactivated:
        next_at = first_run(new_cadence, now)
    return msgspec.structs.replace(
        current,
        name=patch.name if patch.name is not None else current.name,
        goal=patch.goal if patch.goal is not None else current.goal,
        cadence=new_cadence,
        timezone=timezone,
        notification_policy=patch.notification_policy or current.notification_policy,
        status=status,
        next_run_at=next_at,
        consecutive_failures=0 if reactivated else current.consecutive_failures,
        updated_at=stamp(now),
    )


class AfterRun(msgspec.Struct, frozen=True, kw_only=True):
    """What a finished run does to its schedule (rule 3)."""

    status: ScheduleStatus
    next_run_at: str | None
    consecutive_failures: int


def after_run(
    current: ScheduleDefinition,
    outcome: RunStatus,
    *,
    now: datetime,
    auto_disable_after_failures: int,
) -> AfterRun:
    """The schedule's status, next run and failure count once a run ended."""
    failures = current.consecutive_failures
    if outcome == "success":
        failures = 0
    elif outcome == "failed":
        failures += 1
    status = current.status
    following = next_run(current.cadence, now) if status == "active" else None
    if status == "active" and following is None:
        status = "completed"
    elif status == "active" and outcome == "failed" and failures >= auto_disable_after_failures:
        status = "disabled"
    next_at = stamp_up(following) if status == "active" and following is not None else None
    return AfterRun(status=status, next_run_at=next_at, consecutive_failures=failures)


def summarize(output: str) -> str:
    """The stored summary of a run's output: at most 500 UTF-8 bytes, cut on a character."""
    data = output.encode("utf-8")
    if len(data) <= SUMMARY_BYTES:
        return output
    return data[:SUMMARY_HEAD_BYTES].decode("utf-8", errors="ignore") + "..."


def slice_output(text: str, offset: int, max_chars: int) -> tuple[str, int, int, int]:
    """Up to `max_chars` characters of `text` from a UTF-8 byte offset.

    An offset inside a multi-byte character moves forward to the next character, so any
    offset is safe; the next offset to ask for is `start + len(chunk.encode())`.

    Returns:
        (chunk, start offset actually used, bytes remaining after the chunk, total bytes).
    """
    data = text.encode("utf-8")
    total = len(data)
    start = min(max(offset, 0), total)
    while start < total and _is_continuation(data[start]):
        start += 1
    chunk = data[start : start + 4 * max_chars].decode("utf-8", errors="ignore")[:max_chars]
    end = start + len(chunk.encode("utf-8"))
    return chunk, start, total - end, total


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def local_time(instant: str | None, timezone: str) -> str | None:
    """A stored instant shown in the schedule's own zone."""
    if instant is None:
        return None
    value = datetime.fromisoformat(instant).astimezone(UTC)
    return value.astimezone(zone(timezone)).isoformat(timespec="seconds")
