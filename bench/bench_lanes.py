"""Lanes under load: queue wait and fairness across 10 people on one gateway core.

The real `GatewayCore` and store (SQLite in a temp dir); the runner stands in for the model
with a fixed 20 ms turn, so the figures measure the queueing, not a provider.
* 10 people; person 0 floods (200 turns over 10 sessions), the 9 others send 20 turns each
  over 2 sessions, all at once; the `vm` runs 4 turns at a time, 2 per person at most.
* wait = submit -> the runner starts the turn; p50 / p99 per person group.
* fairness = the max / min number of starts per person while every person still had
  turns waiting (1.00 is a perfectly even share; before lanes, turns past the limit were
  refused, so a flood took every slot it could and the others were turned away).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench._timing import percentile
from oxydra.config.schema import GatewayConfig
from oxydra.gateway import SESSION_SCHEMA, GatewayCore, MemorySessionRecords
from oxydra.memory import HashedEmbedder, Memory
from oxydra.runtime.api import Approver, EventSink, TurnOutcome, TurnRequest
from oxydra.testing.mock_provider import reply

TURN_SECS = 0.02


class _Runner:
    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.waits: dict[str, list[float]] = {}
        self.order: list[str] = []

    async def run_turn(
        self, request: TurnRequest, sink: EventSink, approver: Approver | None = None
    ) -> TurnOutcome:
        waited = time.perf_counter() - self.sent[request.turn_id]
        self.waits.setdefault(request.user_id, []).append(waited)
        self.order.append(request.user_id)
        await asyncio.sleep(TURN_SECS)
        return TurnOutcome(reason="completed", response=reply("ok"))


async def _run(folder: Path) -> None:
    memory = await Memory.open(folder / "m.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA])
    runner = _Runner()
    config = GatewayConfig(
        max_concurrent_turns=4, max_concurrent_turns_per_user=2, max_queued_turns_per_user=500
    )
    core = GatewayCore(runner, MemorySessionRecords(memory), config)
    plan = {"p0": (10, 20)} | {f"p{i}": (2, 10) for i in range(1, 10)}
    channels = {
        p: [await core.open_session(p, create_new=True) for _ in range(n)]
        for p, (n, _) in plan.items()
    }
    total = 0
    for person, (_sessions, per_session) in plan.items():
        for channel in channels[person]:
            for i in range(per_session):
                turn_id = f"{channel.session_id}-{i}"
                runner.sent[turn_id] = time.perf_counter()
                core.submit_turn(channel, turn_id, turn_id, "go")
                total += 1
    while len(runner.order) < total or core.lanes.running_total:
        await asyncio.sleep(0.05)
    await core.shutdown()
    await memory.close()
    contended = runner.order[: 9 * 20]  # until the first of the 9 has sent all its turns
    starts = Counter(contended)
    shares = [starts[p] for p in plan]
    flood = runner.waits["p0"]
    others = [w for p, ws in runner.waits.items() if p != "p0" for w in ws]
    print(f"turns: {total} (lost: {total - len(runner.order)})")
    print(
        f"wait, the 9 others: p50 {percentile(others, 50) * 1000:.0f} ms, "
        f"p99 {percentile(others, 99) * 1000:.0f} ms"
    )
    print(
        f"wait, the flooding person: p50 {percentile(flood, 50) * 1000:.0f} ms, "
        f"p99 {percentile(flood, 99) * 1000:.0f} ms"
    )
    print(f"fairness while all wait: max/min starts per person = {max(shares)}/{min(shares)}")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_run(Path(folder)))


if __name__ == "__main__":
    main()
