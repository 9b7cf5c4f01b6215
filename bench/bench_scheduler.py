"""Scheduler benchmarks: poll cost with 10,000 active schedules, due-to-start latency.

Run from the repository root: `python -m bench scheduler` (or through `make bench`).
Prints figures; asserts nothing.

Sections:
1. Store: creating 10,000 active schedules (one transaction each, as the tool does), then
   the executor's poll — `due(now, limit)` with nothing due and with 100 due, `claim_run`,
   `next_due_at` — on the sync core and through the async facade (worker thread hop),
   plus the query plan showing the partial due index.
2. Due-to-start latency: with the injectable clock (simulated time: a run starts in the
   tick at its due time) and in real time (the executor sleeps until the next due time,
   so the latency is the wake-up, not the 15 s poll interval).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._timing import percentile  # noqa: E402
from oxydra.config.schema import SchedulerConfig  # noqa: E402
from oxydra.core.messages import Message, Response  # noqa: E402
from oxydra.memory import HashedEmbedder, Memory, MemoryStore  # noqa: E402
from oxydra.runtime.api import Approver, EventSink, TurnOutcome, TurnRequest  # noqa: E402
from oxydra.scheduler import (  # noqa: E402
    SCHEDULE_SCHEMA,
    Cron,
    Interval,
    Once,
    ScheduleDefinition,
    SchedulerExecutor,
    ScheduleStore,
    ScheduleTable,
)
from oxydra.scheduler._rules import stamp  # noqa: E402

ACTIVE = 10_000
DUE = 100
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class InstantRunner:
    """A `TurnRunner` that answers at once and records when each run started."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    async def run_turn(
        self, request: TurnRequest, sink: EventSink, approver: Approver | None = None
    ) -> TurnOutcome:
        self.started[request.session_id] = time.time()
        message = Message(role="assistant", content="ok")
        return TurnOutcome(reason="completed", response=Response(message=message))


def definition(i: int, next_run: datetime) -> ScheduleDefinition:
    cadences = [
        Interval(every_secs=3600),
        Cron(expression="*/15 * * * *", timezone="Europe/Berlin"),
        Once(at=stamp(next_run)),
    ]
    return ScheduleDefinition(
        schedule_id=f"s{i:05d}", user_id=f"user{i // 50}", name=f"job {i}", goal="check",
        cadence=cadences[i % 3], timezone="UTC", created_at=stamp(T0), updated_at=stamp(T0),
        next_run_at=stamp(next_run),
    )  # fmt: skip


def fill(table: ScheduleTable) -> float:
    """Create ACTIVE schedules, DUE of them overdue; returns seconds per create."""
    start = time.perf_counter()
    for i in range(ACTIVE):
        offset = -timedelta(minutes=i + 1) if i < DUE else timedelta(minutes=i % 10_080 + 1)
        table.create(definition(i, T0 + offset), max_per_user=50)
    return (time.perf_counter() - start) / ACTIVE


def timed(fn: object, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(label: str, times_ms: list[float]) -> None:
    print(
        f"  {label:<44} p50 {statistics.median(times_ms):7.3f} ms   "
        f"p99 {percentile(times_ms, 99):7.3f} ms"
    )


def store_section(path: Path) -> None:
    print(f"1. poll cost, {ACTIVE} active schedules ({DUE} overdue)")
    with MemoryStore(path, schemas=[SCHEDULE_SCHEMA]) as opened:
        table = ScheduleTable(opened.db)
        per_create = fill(table)
        print(f"  create (one transaction, fsync)               {per_create * 1000:7.3f} ms each")
        early = T0 - timedelta(days=1)
        report("due(now, 2), nothing due", timed(lambda: table.due(early, 2), 2000))
        report("due(now, 2), 100 overdue", timed(lambda: table.due(T0, 2), 2000))
        report("due(now, 100), 100 overdue", timed(lambda: table.due(T0, 100), 500))
        report("next_due_at()", timed(table.next_due_at, 2000))
        ids = iter(f"s{i:05d}" for i in range(DUE))
        claims = timed(lambda: table.claim_run(next(ids), f"run-{time.time_ns()}", T0), DUE)
        report("claim_run (write transaction, fsync)", claims)
        plan = opened.db.query(
            "EXPLAIN QUERY PLAN SELECT schedule_id FROM schedules WHERE status = 'active' "
            "AND next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at LIMIT 2",
            (stamp(T0),),
        )
        print(f"  plan: {' | '.join(str(row[-1]) for row in plan)}")


async def facade_section(path: Path) -> None:
    async with await Memory.open(
        path, embedder=HashedEmbedder(), schemas=[SCHEDULE_SCHEMA]
    ) as memory:
        store = ScheduleStore(memory)
        times = []
        for _ in range(1000):
            start = time.perf_counter()
            await store.due(T0 - timedelta(days=1), 2)
            times.append((time.perf_counter() - start) * 1000)
        report("async facade due(now, 2) (worker hop)", times)


async def latency_section(path: Path) -> None:
    print("2. due-to-start latency")
    async with await Memory.open(
        path, embedder=HashedEmbedder(), schemas=[SCHEDULE_SCHEMA]
    ) as memory:
        store = ScheduleStore(memory)
        await simulated_latency(store)
        await real_latency(store)


async def simulated_latency(store: ScheduleStore) -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    runner = InstantRunner()
    config = SchedulerConfig(enabled=True, max_concurrent=1)
    executor = SchedulerExecutor(store, runner, config, clock=lambda: now[0])
    created = await store.create(
        user_id="bench", goal="g", cadence=Interval(every_secs=600), timezone="UTC", now=now[0],
        max_per_user=1000, min_interval_secs=60,
    )  # fmt: skip
    ticks, walls = 0, []
    now[0] += timedelta(minutes=10)
    while True:
        ticks += 1
        start = time.perf_counter()
        started = await executor.tick()
        walls.append((time.perf_counter() - start) * 1000)
        if started:
            break
    await executor.drain()
    await store.delete("bench", created.schedule_id)
    print(
        f"  injectable clock: started in tick {ticks} at its due time "
        f"(0 s simulated latency); tick wall time {walls[-1]:.3f} ms (due + claim + spawn)"
    )


async def real_latency(store: ScheduleStore, samples: int = 5) -> None:
    runner = InstantRunner()
    config = SchedulerConfig(enabled=True, poll_interval_secs=15)
    executor = SchedulerExecutor(store, runner, config)
    executor.start()
    await asyncio.sleep(0.05)
    latencies = []
    for _ in range(samples):
        due = int(time.time()) + 2
        at = datetime.fromtimestamp(due, UTC)
        created = await store.create(
            user_id="bench", goal="g", cadence=Once(at=stamp(at)), timezone="UTC",
            now=datetime.now(UTC), max_per_user=1000, min_interval_secs=60,
        )  # fmt: skip
        session = f"scheduled:{created.schedule_id}"
        while session not in runner.started:
            await asyncio.sleep(0.01)
        latencies.append((runner.started[session] - due) * 1000)
    await executor.aclose()
    print(
        f"  real time (poll interval 15 s, sleeps until the next due time): median "
        f"{statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms over {samples} runs"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.db"
        store_section(path)
        asyncio.run(facade_section(path))
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(latency_section(Path(tmp) / "memory.db"))


if __name__ == "__main__":
    main()
