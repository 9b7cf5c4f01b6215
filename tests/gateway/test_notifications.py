"""Scheduled notifications through the gateway: live delivery, routing, and kept for later."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from oxydra.config.schema import GatewayConfig
from oxydra.gateway import SESSION_SCHEMA
from oxydra.gateway._hub import SessionChannel, Subscriber
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway.core import GatewayCore
from oxydra.gateway.server import GatewayServer
from oxydra.memory import HashedEmbedder, Memory
from oxydra.scheduler import SCHEDULE_SCHEMA, ScheduleStore
from oxydra.wire.gateway import (
    PROTOCOL_VERSION,
    Hello,
    HelloAck,
    ScheduledNotification,
    decode_server_frame,
    encode_frame,
)
from tests.runtime.support import scripted_runtime

SCHEMAS = [SESSION_SCHEMA, SCHEDULE_SCHEMA]


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[Memory]:
    opened = await Memory.open(tmp_path / "memory.db", embedder=HashedEmbedder(), schemas=SCHEMAS)
    yield opened
    await opened.close()


@pytest.fixture
def outbox(memory: Memory) -> ScheduleStore:
    return ScheduleStore(memory)


@pytest.fixture
def core(memory: Memory, outbox: ScheduleStore) -> GatewayCore:
    runtime = scripted_runtime()
    gateway = GatewayCore(runtime, MemorySessionRecords(memory), GatewayConfig())
    gateway.attach_outbox(outbox)
    return gateway


def note(message: str = "backup done") -> ScheduledNotification:
    return ScheduledNotification(schedule_id="sched-1", schedule_name="backup", message=message)


async def follow(
    core: GatewayCore, user: str, session: str | None = None
) -> tuple[SessionChannel, Subscriber]:
    if session is None:
        channel = await core.open_session(user, create_new=True)
    else:
        channel = await core.open_session(user, session)
    subscriber, _, _ = core.subscribe(channel, None)
    return channel, subscriber


def received(subscriber: Subscriber) -> list[str]:
    frames = []
    while not subscriber.queue.empty():
        frame = decode_server_frame(subscriber.queue.get_nowait())
        if isinstance(frame, ScheduledNotification):
            frames.append(frame.message)
    return frames


class TestCore:
    async def test_the_originating_session_gets_it_when_a_client_follows_it(
        self, core: GatewayCore
    ) -> None:
        origin, origin_sub = await follow(core, "alice")
        _, other_sub = await follow(core, "alice")
        assert await core.notify("alice", note(), origin.session_id) is True
        assert received(origin_sub) == ["backup done"]
        assert received(other_sub) == []

    async def test_without_the_origin_every_followed_session_of_the_user_gets_it(
        self, core: GatewayCore
    ) -> None:
        _, first = await follow(core, "alice")
        _, second = await follow(core, "alice")
        _, bobs = await follow(core, "bob")
        assert await core.notify("alice", note(), "scheduled:sched-1") is True
        assert received(first) == received(second) == ["backup done"]
        assert received(bobs) == []

    async def test_a_session_nobody_follows_does_not_count_as_delivered(
        self, core: GatewayCore, outbox: ScheduleStore
    ) -> None:
        origin, subscriber = await follow(core, "alice")
        origin.unsubscribe(subscriber)
        assert await core.notify("alice", note(), origin.session_id) is False
        assert [f.message for f in await outbox.take("alice")] == ["backup done"]

    async def test_kept_notifications_reach_the_next_client_once(self, core: GatewayCore) -> None:
        await core.notify("alice", note("first"))
        await core.notify("alice", note("second"))
        channel, subscriber = await follow(core, "alice")
        assert await core.deliver_pending(channel) == 2
        assert received(subscriber) == ["first", "second"]
        assert await core.deliver_pending(channel) == 0

    async def test_a_hello_while_it_is_being_stored_still_gets_it(
        self, core: GatewayCore, outbox: ScheduleStore
    ) -> None:
        class SlowOutbox:
            """Stores like the real one, but lets a hello run while the write is under way."""

            def __init__(self) -> None:
                self.writing, self.go_on = asyncio.Event(), asyncio.Event()

            async def put(self, user_id: str, frame: ScheduledNotification) -> None:
                self.writing.set()
                await self.go_on.wait()
                await outbox.put(user_id, frame)

            async def take(self, user_id: str) -> list[ScheduledNotification]:
                return await outbox.take(user_id)

        slow = SlowOutbox()
        core.attach_outbox(slow)
        sending = asyncio.create_task(core.notify("alice", note()))
        await slow.writing.wait()
        channel, subscriber = await follow(core, "alice")  # the hello, mid-write
        assert await core.deliver_pending(channel) == 0  # too early: nothing stored yet
        slow.go_on.set()
        assert await sending is True
        assert received(subscriber) == ["backup done"]
        assert await outbox.take("alice") == []  # handed over, not left for the next hello

    async def test_a_notification_is_logged_for_replay_by_sequence(self, core: GatewayCore) -> None:
        channel, _ = await follow(core, "alice")
        await core.notify("alice", note(), channel.session_id)
        replay, gap = channel.subscribe(Subscriber(8), 0)
        assert not gap and [decode_server_frame(f).message for f in replay] == ["backup done"]  # type: ignore[union-attr]


class TestWebSocket:
    @pytest.fixture
    async def server(self, core: GatewayCore) -> AsyncIterator[str]:
        gateway = GatewayServer(core, {"alice-token": "alice"})
        host, port = await gateway.start("127.0.0.1", 0)
        yield f"ws://{host}:{port}/ws"
        await gateway.close()

    async def hello(self, url: str) -> tuple[object, HelloAck]:
        ws = await connect(url, additional_headers={"Authorization": "Bearer alice-token"})
        await ws.send(
            encode_frame(
                Hello(request_id="h", protocol_version=PROTOCOL_VERSION, user_id="alice")
            ).decode()
        )
        ack = decode_server_frame(await ws.recv())
        assert isinstance(ack, HelloAck)
        return ws, ack

    async def test_a_client_connecting_later_sees_the_kept_notification(
        self, core: GatewayCore, server: str
    ) -> None:
        assert await core.notify("alice", note("while you were away")) is False
        ws, _ = await self.hello(server)
        async with ws:  # type: ignore[attr-defined]
            frame = decode_server_frame(await ws.recv())  # type: ignore[attr-defined]
            assert isinstance(frame, ScheduledNotification)
            assert (frame.message, frame.schedule_name) == ("while you were away", "backup")

    async def test_a_connected_client_gets_it_live_in_its_session(
        self, core: GatewayCore, server: str
    ) -> None:
        ws, ack = await self.hello(server)
        async with ws:  # type: ignore[attr-defined]
            delivered = await core.notify("alice", note("now"), ack.session.session_id)
            frame = decode_server_frame(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[attr-defined]
            assert delivered and isinstance(frame, ScheduledNotification)
            assert frame.message == "now" and frame.seq is not None

    async def test_frames_published_in_one_burst_arrive_as_separate_messages_in_order(
        self, core: GatewayCore, server: str
    ) -> None:
        """The pump writes a burst in one go (`_send_burst`): each frame is still its own
        WebSocket message, numbered without a gap, whatever the burst's size."""
        ws, ack = await self.hello(server)
        async with ws:  # type: ignore[attr-defined]
            channel = await core.resolve("alice", ack.session.session_id)
            for size in (1, 2, 50):
                for i in range(size):  # synchronous: queued before the pump runs
                    channel.publish(note(f"{size}-{i}"))
                got = [
                    decode_server_frame(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[attr-defined]
                    for _ in range(size)
                ]
                assert [f.message for f in got] == [f"{size}-{i}" for i in range(size)]  # type: ignore[union-attr]
                seqs = [f.seq for f in got]  # type: ignore[union-attr]
                assert seqs == list(range(seqs[0], seqs[0] + size))
