"""PostgreSQL backend vs SQLite: store latency per turn, hybrid search, scheduler claims,
frame fan-out across hosts (docs/postgres.md). Prints figures; asserts nothing.

Run: `python -m bench postgres` (starts its own PostgreSQL 16 + pgvector on 127.0.0.1 from
the `pgserver` wheel, `fsync=off`: figures are CPU and round trips, not disk). Chunk count
for the search section: `OXY_BENCH_PG_CHUNKS` (default 100000).

Sections:
1. The store's share of a turn: `append_events` of a user and an assistant message with
   indexing (hashed embedder), p50/p99 over 300 turns, SQLite (WAL, synchronous=FULL) vs
   PostgreSQL.
2. Hybrid search p50/p99 at N chunks on both (user filter, one session, unfiltered).
3. Scheduler claims: 10,000 due schedules claimed by 3 hosts (3 connections) at once:
   claims per second and that each was claimed once.
4. Frames fanned out across 3 hosts through `FrameRelay` (store + LISTEN/NOTIFY): frames
   per second from the publishing host until both other hosts mirrored the last one.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_memory import Corpus, _ingest, _latency, _percentiles  # noqa: E402
from oxydra.core import Message  # noqa: E402
from oxydra.gateway import SESSION_SCHEMA  # noqa: E402
from oxydra.gateway._hub import SessionChannel  # noqa: E402
from oxydra.gateway._relay import FrameRelay  # noqa: E402
from oxydra.memory import HashedEmbedder, Memory, MemoryStore  # noqa: E402
from oxydra.memory._pg import PgDatabase  # noqa: E402
from oxydra.scheduler import SCHEDULE_SCHEMA, Interval, ScheduleStore  # noqa: E402
from oxydra.testing.postgres import LocalPostgres  # noqa: E402
from oxydra.wire import gateway as g  # noqa: E402

SCHEMAS = (SESSION_SCHEMA, SCHEDULE_SCHEMA)


def _turns(store: MemoryStore, label: str) -> None:
    store.events.create_session("turns", user_id="bench")
    samples = []
    for i in range(300):
        pair = [
            Message(role="user", content=f"question {i}: where did I put the blue folder?"),
            Message(role="assistant", content=f"answer {i}: in the second drawer, left side"),
        ]
        began = time.perf_counter()
        store.append_events("turns", pair)
        samples.append(time.perf_counter() - began)
    print(f"  store per turn (2 events indexed), {label:<10} {_percentiles(samples)}")


def _search(store: MemoryStore, label: str, size: int) -> None:
    corpus = Corpus()
    for s in range(100):
        store.events.create_session(f"s{s}", user_id="bench")
    rate = _ingest(store, 0, size, corpus)
    print(f"  ingest {label}: {rate:,.0f} chunks/s")
    _latency(store, corpus, size)


async def _claims(url: str) -> None:
    hosts = [
        await Memory.open(PgDatabase(url), embedder=HashedEmbedder(), schemas=SCHEMAS)
        for _ in range(3)
    ]
    stores = [ScheduleStore(m, holder=f"h{i}") for i, m in enumerate(hosts)]
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(10_000):
        await stores[0].create(
            user_id=f"u{i % 100}", goal="g", cadence=Interval(every_secs=3600), timezone="UTC",
            now=t0, max_per_user=1000, min_interval_secs=60,
        )  # fmt: skip
    due_at = t0 + timedelta(seconds=3601)
    claimed: list[str] = []

    async def host(store: ScheduleStore) -> None:
        while batch := await store.due(due_at, 50):
            for schedule in batch:
                if await store.claim_run(schedule.schedule_id, due_at) is not None:
                    claimed.append(schedule.schedule_id)

    began = time.perf_counter()
    await asyncio.gather(*(host(s) for s in stores))
    elapsed = time.perf_counter() - began
    once = len(claimed) == len(set(claimed)) == 10_000
    print(f"  scheduler: 10,000 claims by 3 hosts in {elapsed:.1f} s "
          f"({10_000 / elapsed:,.0f}/s), each once: {once}")  # fmt: skip
    for m in hosts:
        await m.close()


async def _fanout(url: str, frames: int = 5000) -> None:
    hosts = [
        await Memory.open(PgDatabase(url), embedder=HashedEmbedder(), schemas=SCHEMAS)
        for _ in range(3)
    ]
    relays, channels = [], []
    for memory in hosts:
        relay = FrameRelay(memory)
        channel = SessionChannel(user_id="u", session_id="fan")
        relay.attach(channel)
        relay.channels["fan"] = channel
        relay.start()
        relays.append(relay)
        channels.append(channel)
    await asyncio.sleep(0.5)  # LISTEN established
    session = channels[0].ref
    turn = g.TurnStatus(turn_id="t", state="running")
    began = time.perf_counter()
    for i in range(frames):
        channels[0].publish(
            g.AssistantDelta(request_id="r", session=session, turn=turn, delta=f"w{i} ")
        )
        if i % 100 == 0:
            await asyncio.sleep(0)
    while min(c.seq for c in channels[1:]) < frames:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - began
    print(f"  fan-out: {frames} frames from 1 host to 2 others in {elapsed:.2f} s "
          f"({frames / elapsed:,.0f} frames/s)")  # fmt: skip
    for relay in relays:
        await relay.aclose()
    for m in hosts:
        await m.close()


def main() -> None:
    size = int(os.environ.get("OXY_BENCH_PG_CHUNKS", "100000"))
    with tempfile.TemporaryDirectory() as tmp, LocalPostgres.start() as pg:
        with MemoryStore(Path(tmp) / "t.db", embedder=HashedEmbedder()) as lite:
            _turns(lite, "SQLite")
        with MemoryStore(PgDatabase(pg.create_database("turns")), embedder=HashedEmbedder()) as p:
            _turns(p, "PostgreSQL")
        with MemoryStore(Path(tmp) / "s.db", embedder=HashedEmbedder()) as lite:
            _search(lite, "SQLite", size)
        with MemoryStore(PgDatabase(pg.create_database("search")), embedder=HashedEmbedder()) as p:
            _search(p, "PostgreSQL", size)
        asyncio.run(_claims(pg.create_database("claims")))
        asyncio.run(_fanout(pg.create_database("fanout")))


if __name__ == "__main__":
    main()
