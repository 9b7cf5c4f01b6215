"""A client that moves to another host resumes after what it saw, even when the host it left
has not stored those frames yet (its writer batches them).

Before, the new host counted the client's `last_seq` as beyond the session's numbers and
replayed the whole turn from the first frame (seen under load in
test_two_hosts.py::test_a_client_moving_to_the_other_host_mid_turn_loses_and_repeats_nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from oxydra.config.schema import GatewayConfig
from oxydra.gateway import SESSION_SCHEMA, FrameRelay, GatewayCore, MemorySessionRecords
from oxydra.gateway._table import SessionRecord
from oxydra.memory import HashedEmbedder, Memory
from oxydra.memory._pg import PgDatabase
from oxydra.wire import gateway as g
from tests.runtime.support import scripted_runtime


async def _core(pg_url: str) -> tuple[GatewayCore, FrameRelay, Memory]:
    memory = await Memory.open(
        PgDatabase(pg_url), embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA]
    )
    runtime = scripted_runtime()
    relay = FrameRelay(memory)
    core = GatewayCore(
        runtime, MemorySessionRecords(memory), GatewayConfig(), relay=relay, data=memory
    )
    return core, relay, memory


@pytest.fixture
async def hosts(pg_url: str) -> AsyncIterator[tuple[GatewayCore, FrameRelay, GatewayCore]]:
    a, a_relay, a_memory = await _core(pg_url)
    b, b_relay, b_memory = await _core(pg_url)
    b_relay.start()
    yield a, a_relay, b
    for core, memory in ((a, a_memory), (b, b_memory)):
        await core.shutdown()
        await memory.close()


def _delta(session: g.GatewaySession, index: int) -> g.AssistantDelta:
    turn = g.TurnStatus(turn_id="t", state="running")
    return g.AssistantDelta(request_id="r", session=session, turn=turn, delta=f"w{index} ")


async def test_the_new_host_waits_for_the_frames_the_client_saw(
    hosts: tuple[GatewayCore, FrameRelay, GatewayCore],
) -> None:
    a, a_relay, b = hosts
    await a.store.create(SessionRecord(session_id="s", user_id="alice"))
    on_a = await a._find("alice", "s")
    assert on_a is not None
    for index in range(1, 21):  # the client saw all 20 on host a; none is stored yet
        on_a.publish(_delta(on_a.ref, index))
    on_b = await b._find("alice", "s")
    assert on_b is not None and on_b.seq == 0

    async def store_later() -> None:
        await asyncio.sleep(0.2)
        a_relay.start()  # host a's writer catches up

    later = asyncio.create_task(store_later())
    await b.caught_up(on_b, 12, on_a.epoch)
    await later
    _subscriber, replay, gap = b.subscribe(on_b, 12, on_a.epoch)
    seqs = [getattr(g.decode_server_frame(data), "seq", None) for data in replay]
    assert not gap and seqs and seqs[0] == 13, "resumed after what the client saw"
    assert seqs == list(range(13, seqs[-1] + 1))
