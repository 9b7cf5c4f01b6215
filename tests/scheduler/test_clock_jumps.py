"""Wall-clock jumps: intervals follow elapsed time, crons the wall clock, restarts too."""

from __future__ import annotations

from datetime import datetime, timedelta

from oxydra.scheduler import Interval, SchedulerExecutor, ScheduleStore
from oxydra.scheduler.cadence import parse_instant
from oxydra.scheduler.types import Cron
from oxydra.testing.mock_provider import MockProvider, reply
from tests.scheduler.conftest import T0, make_schedule, runtime, scheduler_config


class JumpyClock:
    """A wall clock that can jump, beside a monotonic clock that never does."""

    def __init__(self, now: datetime = T0) -> None:
        self.now, self.elapsed = now, 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, secs: float) -> None:
        self.now += timedelta(seconds=secs)
        self.elapsed += secs

    def jump(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _executor(store: ScheduleStore, clock: JumpyClock, answers: int) -> SchedulerExecutor:
    provider = MockProvider([reply(f"run {i}") for i in range(answers)])
    return SchedulerExecutor(
        store,
        runtime(provider),
        scheduler_config(),
        clock=clock,
        monotonic=clock.monotonic,
        timeout_secs=30,
    )


async def _runs(ex: SchedulerExecutor) -> int:
    started = await ex.tick()
    await ex.drain()
    return len(started)


async def test_an_interval_keeps_its_elapsed_rhythm_when_the_clock_goes_back_a_day(
    store: ScheduleStore,
) -> None:
    clock = JumpyClock()
    ex = _executor(store, clock, 3)
    made = await make_schedule(store, clock.now, cadence=Interval(every_secs=60))
    assert await _runs(ex) == 0
    clock.advance(60)
    assert await _runs(ex) == 1
    clock.jump(days=-1)
    clock.advance(30)
    assert await _runs(ex) == 0, "not early: only 30 s elapsed since the last run"
    clock.advance(30)
    assert await _runs(ex) == 1, "a minute of elapsed time later, whatever the wall clock says"
    after = await store.get("alice", made.schedule_id)
    assert after.next_run_at is not None
    assert parse_instant(after.next_run_at) - clock.now == timedelta(seconds=60)


async def test_an_interval_does_not_fire_early_when_the_clock_leaps_forward(
    store: ScheduleStore,
) -> None:
    clock = JumpyClock()
    ex = _executor(store, clock, 2)
    await make_schedule(store, clock.now, cadence=Interval(every_secs=3600))
    assert await _runs(ex) == 0
    clock.advance(600)
    clock.jump(days=1)
    assert await _runs(ex) == 0, "ten minutes elapsed, not an hour"
    clock.advance(3000)
    assert await _runs(ex) == 1


async def test_an_every_minute_cron_runs_at_the_next_wall_minute_after_going_back(
    store: ScheduleStore,
) -> None:
    clock = JumpyClock()
    ex = _executor(store, clock, 3)
    await make_schedule(store, clock.now, cadence=Cron(expression="* * * * *", timezone="UTC"))
    clock.advance(60)
    assert await _runs(ex) == 1
    clock.jump(days=-1)
    assert await _runs(ex) == 0
    clock.advance(60)
    assert await _runs(ex) == 1, "silent for a minute, not for a day"


async def test_a_restart_after_the_clock_went_back_pulls_next_runs_in(
    store: ScheduleStore,
) -> None:
    clock = JumpyClock()
    interval = await make_schedule(store, clock.now, cadence=Interval(every_secs=120))
    cron = await make_schedule(
        store, clock.now, cadence=Cron(expression="*/5 * * * *", timezone="UTC")
    )
    clock.jump(days=-1)  # while no process was running: nothing measured it
    ex = _executor(store, clock, 0)
    await ex.recover()
    for made, most in ((interval, 120), (cron, 300)):
        after = await store.get("alice", made.schedule_id)
        assert after.next_run_at is not None
        assert parse_instant(after.next_run_at) - clock.now <= timedelta(seconds=most)
