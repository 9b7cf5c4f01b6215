"""Lanes: a turn sent while its session or its person is busy waits, in order, fairly."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from oxydra.config.schema import GatewayConfig
from oxydra.gateway import SESSION_SCHEMA
from oxydra.gateway._admission import RefusedError
from oxydra.gateway._lanes import Lanes, Ticket
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway.core import GatewayCore
from oxydra.memory import HashedEmbedder, Memory
from oxydra.runtime.api import Approver, EventSink, TurnOutcome, TurnRequest
from oxydra.testing.mock_provider import reply
from oxydra.wire import gateway as g


def tickets(user: str, session: str, n: int) -> list[Ticket]:
    return [Ticket(user, session, f"{user}/{session}/{i}") for i in range(n)]


class TestLanes:
    def test_a_busy_session_queues_in_order_with_positions(self) -> None:
        lanes = Lanes(per_user=10, total=10, queue_limit=50)
        first, *rest = tickets("a", "s", 4)
        assert lanes.submit(first) == 0
        assert [lanes.submit(t) for t in rest] == [1, 2, 3]
        order = [first]
        while order[-1] is not None:
            started = lanes.finish(order[-1])
            order.append(started[0] if started else None)  # type: ignore[arg-type]
        assert [t.turn_id for t in order[:-1]] == [f"a/s/{i}" for i in range(4)]

    def test_a_flood_of_one_person_cannot_starve_another(self) -> None:
        lanes = Lanes(per_user=2, total=2, queue_limit=100)
        flood = [t for s in range(10) for t in tickets("a", f"s{s}", 5)]
        positions = [lanes.submit(t) for t in flood]
        assert positions[:2] == [0, 0] or positions.count(0) == 2
        late = Ticket("b", "only", "b/only/0")
        assert lanes.submit(late) == 1  # the vm is full: it waits...
        running = [t for t in flood if t.started]
        assert lanes.finish(running[0]) == [late]  # ...and is the very next to start

    def test_fair_share_across_ten_people(self) -> None:
        lanes = Lanes(per_user=3, total=4, queue_limit=1000)
        running: list[Ticket] = []
        for person in range(10):
            for session in range(3):
                for t in tickets(f"p{person}", f"s{session}", 20 if person == 0 else 5):
                    if lanes.submit(t) == 0:
                        running.append(t)
        starts: Counter[str] = Counter()
        while running:
            done = running.pop(0)
            for started in lanes.finish(done):
                starts[started.user_id] += 1
                running.append(started)
            if sum(starts.values()) >= 100:
                break
        shares = [starts[f"p{i}"] for i in range(10)]
        assert max(shares) - min(shares) <= 1, shares  # round robin: equal shares

    def test_a_person_past_the_queue_limit_is_refused_clearly(self) -> None:
        lanes = Lanes(per_user=1, total=1, queue_limit=3)
        queue = tickets("a", "s", 5)
        assert [lanes.submit(t) for t in queue[:4]] == [0, 1, 2, 3]
        with pytest.raises(RefusedError, match=r"too many queued turns \(queue limit: 3\)") as exc:
            lanes.submit(queue[4])
        assert exc.value.code == "turn_queue_full"
        assert lanes.submit(Ticket("b", "t", "b")) == 1  # another person still gets in line

    def test_cancelling_waiting_tickets_never_starts_them(self) -> None:
        lanes = Lanes(per_user=1, total=5, queue_limit=10)
        a = tickets("a", "s", 3)
        b = tickets("a", "t", 2)
        for t in [*a, *b]:
            lanes.submit(t)
        assert lanes.cancel(a[1]) and not lanes.cancel(a[1]) and not lanes.cancel(a[0])
        assert lanes.cancel_session("a", "t") == b
        assert lanes.cancel_user("a") == [a[2]]
        assert lanes.finish(a[0]) == [] and lanes.waiting == 0 and lanes.running_total == 0


def logged(channel: Any) -> list[Any]:
    data, _gap = channel.log.replay(0)
    return [g.decode_server_frame(d) for d in data]


class GatedRunner:
    """Turns that end when the test says so; records what ran, in order."""

    def __init__(self) -> None:
        self.started: list[TurnRequest] = []
        self.release = asyncio.Event()

    async def run_turn(
        self, request: TurnRequest, sink: EventSink, approver: Approver | None = None
    ) -> TurnOutcome:
        self.started.append(request)
        await self.release.wait()
        return TurnOutcome(reason="completed", response=reply(request.prompt))


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[Memory]:
    opened = await Memory.open(
        tmp_path / "memory.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA]
    )
    yield opened
    await opened.close()


async def test_twenty_sends_to_one_session_all_run_in_order(memory: Memory) -> None:
    runner = GatedRunner()
    core = GatewayCore(runner, MemorySessionRecords(memory), GatewayConfig())
    channel = await core.open_session("alice", create_new=True)
    positions = [core.submit_turn(channel, f"r{i}", f"t{i}", f"prompt {i}") for i in range(20)]
    assert positions == list(range(20))
    runner.release.set()
    async with asyncio.timeout(30):  # a bound on a hang, not a timing
        while len(runner.started) < 20 or core.lanes.running_total:
            await asyncio.sleep(0.01)
    assert [r.prompt for r in runner.started] == [f"prompt {i}" for i in range(20)]
    kinds = [type(f).__name__ for f in logged(channel)]
    assert kinds.count("TurnQueued") == 19 and kinds.count("TurnCompleted") == 20
    await core.shutdown()


async def test_ten_people_at_once_lose_no_turn_and_keep_order(memory: Memory) -> None:
    runner = GatedRunner()
    config = GatewayConfig(max_concurrent_turns=4, max_concurrent_turns_per_user=2)
    core = GatewayCore(runner, MemorySessionRecords(memory), config)
    sent: dict[str, list[str]] = {}
    for person in range(10):
        for _ in range(2):
            channel = await core.open_session(f"p{person}", create_new=True)
            for i in range(5):
                prompt = f"{channel.session_id} {i}"
                sent.setdefault(channel.session_id, []).append(prompt)
                core.submit_turn(channel, uuid.uuid4().hex, uuid.uuid4().hex, prompt)
    first_wave = {r.user_id for r in runner.started}
    assert len(runner.started) == 4 and len(first_wave) == 2  # 2 people x 2: the vm is full
    runner.release.set()
    async with asyncio.timeout(30):  # a bound on a hang, not a timing
        while len(runner.started) < 100 or core.lanes.running_total:
            await asyncio.sleep(0.01)
    got: dict[str, list[str]] = {}
    for request in runner.started:
        got.setdefault(request.session_id, []).append(request.prompt)
    assert got == sent
    await core.shutdown()


async def test_cancel_all_empties_the_persons_lanes(memory: Memory) -> None:
    runner = GatedRunner()
    core = GatewayCore(runner, MemorySessionRecords(memory), GatewayConfig())
    channel = await core.open_session("alice", create_new=True)
    for i in range(4):
        core.submit_turn(channel, f"r{i}", f"t{i}", f"p{i}")
    await asyncio.sleep(0)
    assert core.cancel_all("alice") == 4
    async with asyncio.timeout(30):  # a bound on a hang, not a timing
        while core.lanes.running_total:
            await asyncio.sleep(0.01)
    frames = logged(channel)
    cancelled = [f.turn.turn_id for f in frames if isinstance(f, g.TurnCancelled)]
    assert sorted(cancelled) == ["t0", "t1", "t2", "t3"]
    assert len(runner.started) == 1  # the waiting ones never started
    await core.shutdown()


async def test_a_session_with_turns_waiting_is_never_evicted(memory: Memory) -> None:
    runner = GatedRunner()
    config = GatewayConfig(max_concurrent_turns_per_user=1)
    core = GatewayCore(runner, MemorySessionRecords(memory), config)
    busy = await core.open_session("alice", create_new=True)
    waiting = await core.open_session("alice", create_new=True)
    core.submit_turn(busy, "r1", "t1", "first")
    assert core.submit_turn(waiting, "r2", "t2", "second") == 1
    core.evict_idle(0, now=float("inf"))
    assert await core.resolve("alice", waiting.session_id) is waiting
    runner.release.set()
    async with asyncio.timeout(30):  # a bound on a hang, not a timing
        while len(runner.started) < 2 or core.lanes.running_total:
            await asyncio.sleep(0.01)
    assert [f.turn.turn_id for f in logged(waiting) if isinstance(f, g.TurnCompleted)] == ["t2"]
    await core.shutdown()
