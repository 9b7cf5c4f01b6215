"""Cadences: DST, month ends, leap days, time zones, and validation."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from oxydra.core.errors import SchedulerError
from oxydra.scheduler.cadence import cadence_from_tool, next_run, parse_instant, validate
from oxydra.scheduler.types import Cadence, Cron, Interval, Once


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class TestCron:
    @pytest.mark.parametrize(
        ("expression", "tz", "after", "expected"),
        [
            # 09:00 in New York: EST (-5) before 2026-03-08, EDT (-4) after.
            ("0 9 * * *", "America/New_York", utc(2026, 3, 7, 15), utc(2026, 3, 8, 13)),
            ("0 9 * * *", "America/New_York", utc(2026, 3, 6, 15), utc(2026, 3, 7, 14)),
            # 02:30 does not exist on 2026-03-08 in New York: runs at 03:30 EDT.
            ("30 2 * * *", "America/New_York", utc(2026, 3, 8, 5), utc(2026, 3, 8, 7, 30)),
            # 01:30 happens twice on 2026-11-01: first occurrence (EDT, -4).
            ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 4), utc(2026, 11, 1, 5, 30)),
            # Leap day only on leap years.
            ("0 12 29 2 *", "UTC", utc(2026, 3, 1), utc(2028, 2, 29, 12)),
            # Last days of months: the 31st skips short months.
            ("0 0 31 * *", "UTC", utc(2026, 4, 1), utc(2026, 5, 31)),
            # Standard day-of-week numbering: 0 and 7 are Sunday (2026-11-29 is a Sunday).
            ("0 8 * * 0", "UTC", utc(2026, 11, 27), utc(2026, 11, 29, 8)),
            ("0 8 * * 7", "UTC", utc(2026, 11, 27), utc(2026, 11, 29, 8)),
            ("0 8 * * 1", "UTC", utc(2026, 11, 27), utc(2026, 11, 30, 8)),
            # Time zones east of UTC: Kolkata is +05:30.
            ("0 9 * * *", "Asia/Kolkata", utc(2026, 1, 1), utc(2026, 1, 1, 3, 30)),
        ],
    )
    def test_next_firing(
        self, expression: str, tz: str, after: datetime, expected: datetime
    ) -> None:
        assert next_run(Cron(expression=expression, timezone=tz), after) == expected

    def test_repeated_hour_fires_once(self) -> None:
        cadence = Cron(expression="30 * * * *", timezone="America/New_York")
        first = next_run(cadence, utc(2026, 11, 1, 5, 0))
        assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
        second = next_run(cadence, first)
        assert second is not None and second > first
        assert second.astimezone(UTC) != utc(2026, 11, 1, 6, 30)  # not 01:30 EST again

    def test_next_is_always_strictly_later(self) -> None:
        cadence = Cron(expression="*/5 * * * *", timezone="Europe/Berlin")
        t = utc(2026, 3, 29, 0)
        for _ in range(100):
            nxt = next_run(cadence, t)
            assert nxt is not None and nxt > t
            t = nxt


class TestOnceAndInterval:
    def test_once_in_the_future_fires_then_never(self) -> None:
        at = "2026-12-01T09:00:00+01:00"
        assert next_run(Once(at=at), utc(2026, 11, 27)) == utc(2026, 12, 1, 8)
        assert next_run(Once(at=at), utc(2026, 12, 2)) is None

    def test_interval_reanchors_after_the_given_time(self) -> None:
        assert next_run(Interval(every_secs=90), utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 1, 30)


class TestValidation:
    NOW = utc(2026, 11, 27, 12)

    @pytest.mark.parametrize(
        ("cadence", "needle"),
        [
            (Once(at="2026-11-27T11:00:00Z"), "in the past"),
            (Interval(every_secs=30), "below the minimum"),
            (Cron(expression="* * * * *", timezone="UTC"), "fires every 60s"),
            (Cron(expression="61 * * * *", timezone="UTC"), "five-field"),
            (Cron(expression="0 9 * *", timezone="UTC"), "five-field"),
            (Cron(expression="0 9 * * * *", timezone="UTC"), "five-field"),
            (Cron(expression="0 9 * * *", timezone="Mars/Olympus"), "unknown time zone"),
        ],
    )
    def test_bad_cadences_are_refused_with_a_clear_reason(
        self, cadence: Cadence, needle: str
    ) -> None:
        with pytest.raises(SchedulerError, match=needle):
            validate(cadence, now=self.NOW, min_interval_secs=120)

    @pytest.mark.parametrize(
        "cadence",
        [
            Once(at="2026-11-28T00:00:00Z"),
            Interval(every_secs=120),
            Cron(expression="*/5 * * * *", timezone="UTC"),
            Cron(expression="0 9 * * 1-5", timezone="Asia/Kolkata"),
        ],
    )
    def test_good_cadences_pass(self, cadence: Cadence) -> None:
        validate(cadence, now=self.NOW, min_interval_secs=120)

    @pytest.mark.parametrize("text", ["tomorrow", "2026-12-01 09:00", "2026-13-01T00:00:00Z"])
    def test_timestamps_need_rfc3339_with_an_offset(self, text: str) -> None:
        with pytest.raises(SchedulerError):
            parse_instant(text)


class TestToolInput:
    def test_cadences_from_tool_arguments(self) -> None:
        assert cadence_from_tool("interval", "300", "UTC") == Interval(every_secs=300)
        assert cadence_from_tool("cron", " 0  9 * * 1 ", "UTC") == Cron(
            expression="0 9 * * 1", timezone="UTC"
        )
        assert cadence_from_tool("once", "2026-12-01T09:00:00+01:00", "UTC") == Once(
            at="2026-12-01T08:00:00+00:00"
        )

    @pytest.mark.parametrize(
        ("kind", "value"), [("interval", "5m"), ("weekly", "x"), ("cron", "0 9 * * *")]
    )
    def test_bad_tool_arguments_are_refused(self, kind: str, value: str) -> None:
        with pytest.raises(SchedulerError):
            cadence_from_tool(kind, value, "Nowhere/Land" if kind == "cron" else "UTC")

    def test_cadence_json_matches_the_rust_shape(self) -> None:
        assert (
            msgspec.json.encode(Interval(every_secs=60)) == b'{"type":"interval","every_secs":60}'
        )
        decoded = msgspec.json.decode(
            b'{"type":"cron","expression":"0 9 * * *","timezone":"UTC"}', type=Cadence
        )
        assert decoded == Cron(expression="0 9 * * *", timezone="UTC")
