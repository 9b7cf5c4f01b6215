"""The scheduler on several hosts sharing one PostgreSQL store: each occurrence fires once,
and a dead host's claimed run is taken over once after its lease expires.

Each "host" is its own `Memory` (own connection and worker thread) with its own executor,
as in separate `vm` processes; the kill -9 case uses a real separate process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from oxydra.core.messages import Message, Response
from oxydra.memory import HashedEmbedder, Memory
from oxydra.memory._pg import PgDatabase
from oxydra.runtime.api import TurnOutcome, TurnRequest
from oxydra.scheduler import SCHEDULE_SCHEMA, SchedulerExecutor, ScheduleStore
from tests.scheduler.conftest import T0, FakeClock, make_schedule, scheduler_config

ROOT = Path(__file__).resolve().parents[2]


class CountingRunner:
    """A `TurnRunner` that answers at once and records which schedule each turn ran for."""

    def __init__(self, ran: list[str]) -> None:
        self.ran = ran

    async def run_turn(self, request: TurnRequest, sink: Any, approver: Any = None) -> Any:
        self.ran.append(request.session_id)
        await asyncio.sleep(0)
        return TurnOutcome(
            reason="completed", response=Response(message=Message(role="assistant", content="ok"))
        )


async def _open(url: str) -> Memory:
    return await Memory.open(PgDatabase(url), embedder=HashedEmbedder(), schemas=[SCHEDULE_SCHEMA])


@pytest.fixture
async def memories(pg_url: str) -> AsyncIterator[list[Memory]]:
    opened = [await _open(pg_url) for _ in range(3)]
    yield opened
    for memory in opened:
        await memory.close()


async def test_two_hundred_firings_across_three_hosts_each_run_once(
    memories: list[Memory],
) -> None:
    clock = FakeClock()
    stores = [ScheduleStore(m, holder=f"host{i}") for i, m in enumerate(memories)]
    schedules = [
        await make_schedule(stores[i % 3], T0, goal=f"job {i}", max_per_user=500)
        for i in range(200)
    ]
    ran: list[str] = []
    config = scheduler_config(max_concurrent=25)
    executors = [
        SchedulerExecutor(s, CountingRunner(ran), config, clock=clock, monotonic=clock.monotonic)
        for s in stores
    ]
    clock.advance(seconds=3601)  # every schedule is due once
    for _ in range(40):
        await asyncio.gather(*(e.tick() for e in executors))
        await asyncio.gather(*(e.drain() for e in executors))
        if len(ran) >= 200:
            break
    await asyncio.gather(*(e.tick() for e in executors))  # nothing is due twice
    await asyncio.gather(*(e.drain() for e in executors))
    assert sorted(ran) == sorted(f"scheduled:{s.schedule_id}" for s in schedules)
    rows = await memories[0].call(
        lambda db: db.query("SELECT lease_holder, count(*) FROM schedule_runs GROUP BY 1")
    )
    per_host = dict(rows)
    assert sum(per_host.values()) == 200 and len(per_host) >= 2, per_host


_DEAD_HOST = """
import asyncio, sys
from datetime import datetime, timezone
from oxydra.memory import HashedEmbedder, Memory
from oxydra.memory._pg import PgDatabase
from oxydra.scheduler import SCHEDULE_SCHEMA, ScheduleStore

async def main():
    memory = await Memory.open(PgDatabase(sys.argv[1]), embedder=HashedEmbedder(),
                               schemas=[SCHEDULE_SCHEMA])
    store = ScheduleStore(memory, holder="doomed", lease_secs=float(sys.argv[3]))
    now = datetime.fromisoformat(sys.argv[4])
    claimed = await store.claim_run(sys.argv[2], now)
    print("claimed" if claimed else "missed", flush=True)
    await asyncio.Event().wait()  # "running" until killed

asyncio.run(main())
"""


async def test_a_killed_hosts_run_is_taken_over_once_after_its_lease(
    memories: list[Memory], pg_url: str
) -> None:
    clock = FakeClock()
    stores = [ScheduleStore(m, holder=f"live{i}") for i, m in enumerate(memories[:2])]
    schedule = await make_schedule(stores[0], T0)
    clock.advance(seconds=3601)
    doomed = subprocess.Popen(
        [sys.executable, "-c", _DEAD_HOST, pg_url, schedule.schedule_id, "30",
         clock.now.isoformat()],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        line = await asyncio.to_thread(doomed.stdout.readline)  # type: ignore[union-attr]
        assert line.strip() == "claimed"
        doomed.send_signal(signal.SIGKILL)
        await asyncio.to_thread(doomed.wait, 20)
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait(20)
        doomed.stdout.close()  # type: ignore[union-attr]
    ran: list[str] = []
    config = scheduler_config(on_interrupted="retry_if_clean")
    executors = [
        SchedulerExecutor(s, CountingRunner(ran), config, clock=clock, monotonic=clock.monotonic)
        for s in stores
    ]
    await asyncio.gather(*(e.recover() for e in executors))
    await asyncio.gather(*(e.tick() for e in executors))
    assert ran == [], "the lease is still live: nobody takes the run"
    clock.advance(seconds=31)
    await asyncio.gather(*(e.tick() for e in executors))
    await asyncio.gather(*(e.drain() for e in executors))
    await asyncio.gather(*(e.tick() for e in executors))
    await asyncio.gather(*(e.drain() for e in executors))
    assert ran == [f"scheduled:{schedule.schedule_id}"], "retried exactly once, by one host"
    runs = await stores[0].runs("alice", schedule.schedule_id)
    assert sorted(r.status for r in runs) == ["interrupted", "success"]
