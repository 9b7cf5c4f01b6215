"""The pure rules: edits, what a finished run does, summaries and output slices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from oxydra.core.errors import SchedulerError
from oxydra.scheduler._rules import (
    after_run,
    apply_patch,
    local_time,
    slice_output,
    stamp,
    stamp_up,
    summarize,
)
from oxydra.scheduler.types import (
    Cron,
    Interval,
    Once,
    RunStatus,
    ScheduleDefinition,
    SchedulePatch,
    ScheduleStatus,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = stamp(NOW + timedelta(hours=5))


def schedule(**fields: object) -> ScheduleDefinition:
    base: dict[str, object] = {
        "schedule_id": "s1",
        "user_id": "alice",
        "name": "daily",
        "goal": "check",
        "cadence": Cron(expression="0 9 * * *", timezone="UTC"),
        "timezone": "UTC",
        "created_at": stamp(NOW),
        "updated_at": stamp(NOW),
        "next_run_at": LATER,
    }
    return ScheduleDefinition(**{**base, **fields})  # type: ignore[arg-type]


def edit(current: ScheduleDefinition, **patch: object) -> ScheduleDefinition:
    return apply_patch(current, SchedulePatch(**patch), now=NOW, min_interval_secs=60)  # type: ignore[arg-type]


class TestEdits:
    def test_pausing_clears_the_next_run(self) -> None:
        assert edit(schedule(), status="paused").next_run_at is None

    def test_resuming_recomputes_the_next_run_and_resets_failures(self) -> None:
        paused = schedule(status="disabled", next_run_at=None, consecutive_failures=5)
        resumed = edit(paused, status="active")
        assert resumed.next_run_at == "2026-03-02T09:00:00+00:00"
        assert resumed.consecutive_failures == 0

    def test_a_name_change_keeps_the_next_run(self) -> None:
        renamed = edit(schedule(), name="other", goal="new goal")
        assert (renamed.name, renamed.goal, renamed.next_run_at) == ("other", "new goal", LATER)

    def test_a_new_cadence_recomputes_the_next_run(self) -> None:
        changed = edit(schedule(), cadence=Interval(every_secs=600))
        assert changed.next_run_at == stamp(NOW + timedelta(minutes=10))

    def test_a_timezone_only_change_rebuilds_the_cron(self) -> None:
        moved = edit(schedule(), timezone="Asia/Kolkata")
        assert moved.cadence == Cron(expression="0 9 * * *", timezone="Asia/Kolkata")
        assert moved.timezone == "Asia/Kolkata"
        assert moved.next_run_at == "2026-03-02T03:30:00+00:00"

    def test_a_timezone_change_leaves_an_interval_alone(self) -> None:
        interval = schedule(cadence=Interval(every_secs=600))
        moved = edit(interval, timezone="Europe/Berlin")
        assert moved.cadence == Interval(every_secs=600) and moved.next_run_at == LATER

    def test_a_new_cadence_of_a_paused_schedule_does_not_schedule_it(self) -> None:
        paused = schedule(status="paused", next_run_at=None)
        assert edit(paused, cadence=Interval(every_secs=600)).next_run_at is None

    @pytest.mark.parametrize(
        ("patch", "needle"),
        [
            ({"cadence": Interval(every_secs=5)}, "below the minimum"),
            ({"cadence": Once(at="2026-01-01T00:00:00+00:00")}, "in the past"),
            ({"timezone": "Nowhere/Land"}, "unknown time zone"),
        ],
    )
    def test_invalid_edits_are_refused(self, patch: dict[str, object], needle: str) -> None:
        with pytest.raises(SchedulerError, match=needle):
            edit(schedule(), **patch)

    def test_reactivating_a_spent_once_needs_a_new_time(self) -> None:
        spent = schedule(
            cadence=Once(at="2026-02-01T00:00:00+00:00"), status="completed", next_run_at=None
        )
        with pytest.raises(SchedulerError, match="no future run"):
            edit(spent, status="active")


class TestAfterRun:
    @pytest.mark.parametrize(
        ("outcome", "before", "failures", "status"),
        [
            ("success", 2, 0, "active"),
            ("failed", 0, 1, "active"),
            ("failed", 3, 4, "active"),
            ("failed", 4, 5, "disabled"),
            ("cancelled", 2, 2, "active"),
            ("interrupted", 4, 4, "active"),
        ],
    )
    def test_failure_counting_and_auto_disable(
        self, outcome: RunStatus, before: int, failures: int, status: ScheduleStatus
    ) -> None:
        current = schedule(cadence=Interval(every_secs=600), consecutive_failures=before)
        change = after_run(current, outcome, now=NOW, auto_disable_after_failures=5)
        assert (change.consecutive_failures, change.status) == (failures, status)
        expected = stamp(NOW + timedelta(minutes=10)) if status == "active" else None
        assert change.next_run_at == expected

    @pytest.mark.parametrize("outcome", ["success", "failed", "interrupted"])
    def test_a_once_schedule_completes_whatever_the_outcome(self, outcome: RunStatus) -> None:
        once = schedule(cadence=Once(at="2026-03-01T11:00:00+00:00"), next_run_at=None)
        change = after_run(once, outcome, now=NOW, auto_disable_after_failures=5)
        assert (change.status, change.next_run_at) == ("completed", None)

    def test_the_next_run_is_counted_from_the_end_not_from_missed_firings(self) -> None:
        cron = schedule(cadence=Cron(expression="*/5 * * * *", timezone="UTC"))
        finished = NOW + timedelta(days=3, minutes=2)
        change = after_run(cron, "success", now=finished, auto_disable_after_failures=5)
        assert change.next_run_at == stamp(NOW + timedelta(days=3, minutes=5))

    def test_a_schedule_paused_during_its_run_stays_paused(self) -> None:
        paused = schedule(status="paused", next_run_at=None)
        change = after_run(paused, "success", now=NOW, auto_disable_after_failures=5)
        assert (change.status, change.next_run_at) == ("paused", None)


class TestText:
    def test_stamps_round_up_so_a_schedule_is_never_early(self) -> None:
        assert stamp_up(NOW + timedelta(microseconds=1)) == "2026-03-01T12:00:01+00:00"
        assert stamp_up(NOW) == stamp(NOW) == "2026-03-01T12:00:00+00:00"

    def test_summaries_keep_500_bytes_and_cut_on_a_character(self) -> None:
        assert summarize("x" * 500) == "x" * 500
        cut = summarize("é" * 400)
        assert cut.endswith("...") and len(cut.encode()) <= 500
        assert cut[:-3] == "é" * 248

    @pytest.mark.parametrize("offset", range(0, 14))
    def test_output_slices_start_on_a_character_from_any_byte_offset(self, offset: int) -> None:
        text = "aé€😀b" * 2  # 1, 2, 3, 4 and 1 bytes per character
        chunk, start, remaining, total = slice_output(text, offset, 3)
        data = text.encode()
        assert total == len(data) == 22
        assert data[start:].decode().startswith(chunk)
        assert start >= offset and len(chunk) <= 3
        assert remaining == total - start - len(chunk.encode())

    def test_reading_slice_after_slice_returns_the_whole_text(self) -> None:
        text = "día 😀 " * 50
        offset, parts = 0, []
        while True:
            chunk, start, remaining, _ = slice_output(text, offset, 7)
            parts.append(chunk)
            offset = start + len(chunk.encode())
            if not remaining:
                break
        assert "".join(parts) == text

    def test_local_time_shows_the_schedule_zone(self) -> None:
        assert local_time("2026-03-01T12:00:00+00:00", "Asia/Kolkata") == (
            "2026-03-01T17:30:00+05:30"
        )
        assert local_time(None, "UTC") is None


def test_edits_round_trip_through_json() -> None:
    moved = edit(schedule(), timezone="Asia/Kolkata")
    data = msgspec.json.encode(moved)
    assert msgspec.json.decode(data, type=ScheduleDefinition) == moved
