"""When a cadence fires next, and whether a cadence is acceptable.

Cron expressions use the standard numbering users expect (0 or 7 = Sunday, as `croniter`
reads them) — unlike the Rust version, which used the Quartz numbering (1 = Sunday).
They are evaluated in local wall time of their time zone, so "09:00 daily" stays 09:00
across DST changes: a time skipped by spring-forward runs at the same offset after the gap
(02:30 becomes 03:30), and a time repeated by fall-back runs once, at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from oxydra.core.errors import SchedulerError
from oxydra.scheduler.types import Cadence, Cron, Interval, Once


def parse_instant(text: str) -> datetime:
    """An RFC 3339 timestamp with an offset, as an aware UTC datetime."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SchedulerError(f"{text!r} is not an RFC 3339 timestamp") from exc
    if value.tzinfo is None:
        raise SchedulerError(f"{text!r} has no UTC offset (write e.g. 2026-12-01T09:00:00+01:00)")
    return value.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """An aware datetime as RFC 3339 UTC with seconds."""
    return value.astimezone(UTC).isoformat(timespec="seconds")


def zone(name: str) -> ZoneInfo:
    """An IANA time zone, or a SchedulerError naming the bad value."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SchedulerError(f"unknown time zone {name!r}") from exc


def next_run(cadence: Cadence, after: datetime) -> datetime | None:
    """The first firing strictly after `after` (aware), in UTC; None when there is none."""
    match cadence:
        case Once(at=at):
            when = parse_instant(at)
            return when if when > after else None
        case Interval(every_secs=secs):
            return after + timedelta(seconds=secs)
        case Cron(expression=expression, timezone=tz):
            return _next_cron(expression, zone(tz), after)


def _next_cron(expression: str, tz: ZoneInfo, after: datetime) -> datetime:
    from croniter import croniter

    local = after.astimezone(tz).replace(tzinfo=None)
    schedule = croniter(expression, local)
    for _ in range(1000):
        candidate = schedule.get_next(datetime).replace(tzinfo=tz)
        instant = candidate.astimezone(UTC)
        if instant > after:
            return instant
    raise SchedulerError(f"cron {expression!r} found no time after {after}")


def validate(cadence: Cadence, *, now: datetime, min_interval_secs: int) -> None:
    """Refuse a cadence that is malformed, in the past, or fires too often."""
    match cadence:
        case Once(at=at):
            if parse_instant(at) <= now:
                raise SchedulerError(f"the time {at} is in the past")
        case Interval(every_secs=secs):
            if secs < min_interval_secs:
                raise SchedulerError(
                    f"interval of {secs}s is below the minimum of {min_interval_secs}s"
                )
        case Cron(expression=expression, timezone=tz):
            _validate_cron(expression, zone(tz), now, min_interval_secs)


def _validate_cron(expression: str, tz: ZoneInfo, now: datetime, min_interval_secs: int) -> None:
    from croniter import croniter

    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise SchedulerError(
            f"{expression!r} is not a five-field cron expression "
            "(minute hour day-of-month month day-of-week; 0 or 7 = Sunday)"
        )
    first = _next_cron(expression, tz, now)
    second = _next_cron(expression, tz, first)
    if (second - first).total_seconds() < min_interval_secs:
        raise SchedulerError(
            f"cron {expression!r} fires every {int((second - first).total_seconds())}s, "
            f"below the minimum of {min_interval_secs}s"
        )


def cadence_from_tool(kind: str, value: str, timezone: str) -> Cadence:
    """Build a cadence from the `schedule_create` tool's `cadence_type` and `cadence_value`."""
    match kind:
        case "once":
            return Once(at=format_instant(parse_instant(value)))
        case "interval":
            if not value.strip().isdigit():
                raise SchedulerError(f"interval must be a whole number of seconds, got {value!r}")
            return Interval(every_secs=int(value))
        case "cron":
            zone(timezone)
            return Cron(expression=" ".join(value.split()), timezone=timezone)
    raise SchedulerError(f"cadence_type must be cron, once or interval, got {kind!r}")
