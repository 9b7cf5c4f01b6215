"""A real `oxydra vm` process, real WebSocket clients, the loopback fake LLM."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from oxydra.testing.fake_llm import FakeLLM, Reply
from oxydra.wire import gateway as g
from tests.gateway.support import TOKEN, VmProcess, client, recv, send, terminal, turn, until


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as fake:
        yield fake


@pytest.fixture
async def vm(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[tuple[VmProcess, str]]:
    process = VmProcess(tmp_path, llm.base_url)
    endpoint = await process.start()
    yield process, endpoint
    if process.proc and process.proc.poll() is None:
        await process.stop()


async def test_a_full_turn_streams_and_completes(vm: tuple[VmProcess, str], llm: FakeLLM) -> None:
    _, endpoint = vm
    llm.add([Reply(text="Hello from the model", chunk=3)])
    ws, ack = await client(endpoint, create_new_session=True)
    sid = ack.session.session_id
    await send(ws, turn(sid, "hi"))
    frames = await until(ws, terminal)
    assert isinstance(frames[0], g.TurnStarted)
    text = "".join(f.delta for f in frames if isinstance(f, g.AssistantDelta))
    assert text == "Hello from the model"
    assert isinstance(frames[-1], g.TurnCompleted)
    assert frames[-1].response.message.text == "Hello from the model"
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert any(isinstance(f, g.TurnProgress) for f in frames)
    await ws.close()


async def test_cancel_mid_stream(vm: tuple[VmProcess, str], llm: FakeLLM) -> None:
    _, endpoint = vm
    llm.add([Reply(text="x" * 400, chunk=2, delay=0.02)])
    ws, ack = await client(endpoint, create_new_session=True)
    sid = ack.session.session_id
    await send(ws, turn(sid, "talk", "t1"))
    await until(ws, lambda f: isinstance(f, g.AssistantDelta))
    await send(ws, g.CancelActiveTurn(request_id="c", session_id=sid, turn_id="t1"))
    frames = await until(ws, terminal)
    assert isinstance(frames[-1], g.TurnCancelled)
    llm.add([Reply(text="still here")])
    await send(ws, turn(sid, "again"))
    frames = await until(ws, terminal)
    assert isinstance(frames[-1], g.TurnCompleted), "the session works after a cancel"


async def test_reconnect_mid_turn_loses_and_repeats_nothing(
    vm: tuple[VmProcess, str], llm: FakeLLM
) -> None:
    _, endpoint = vm
    words = [f"w{i} " for i in range(120)]
    llm.add([Reply(text="".join(words), chunk=4, delay=0.01)])
    ws, ack = await client(endpoint, create_new_session=True)
    sid = ack.session.session_id
    await send(ws, turn(sid, "long answer"))
    seen = await until(ws, lambda f: isinstance(f, g.AssistantDelta) and f.seq >= 12)
    await ws.close()
    last = seen[-1].seq
    await asyncio.sleep(0.3)  # the turn goes on while we are away
    ws2, ack2 = await client(endpoint, session_id=sid, last_seq=last)
    assert ack2.active_turn is not None or ack2.seq > last
    rest = await until(ws2, terminal)
    every = seen + rest
    assert [f.seq for f in every] == list(range(every[0].seq, every[-1].seq + 1)), (
        "no gap, no repeat"
    )
    text = "".join(f.delta for f in every if isinstance(f, g.AssistantDelta))
    assert text == "".join(words)


async def test_old_clients_without_last_seq_get_the_last_result(
    vm: tuple[VmProcess, str], llm: FakeLLM
) -> None:
    _, endpoint = vm
    llm.add([Reply(text="the answer")])
    ws, ack = await client(endpoint, create_new_session=True)
    sid = ack.session.session_id
    await send(ws, turn(sid, "q"))
    await until(ws, terminal)
    await ws.close()
    ws2, _ = await client(endpoint, session_id=sid)
    replayed = await recv(ws2)
    assert isinstance(replayed, g.TurnCompleted) and replayed.response.message.text == "the answer"


async def test_a_turn_sent_while_one_runs_waits_its_turn(
    vm: tuple[VmProcess, str], llm: FakeLLM
) -> None:
    _, endpoint = vm
    llm.add([Reply(text="slow " * 50, chunk=5, delay=0.02), Reply(text="second answer")])
    ws, ack = await client(endpoint, create_new_session=True)
    sid = ack.session.session_id
    await send(ws, turn(sid, "first", "t1"))
    await until(ws, lambda f: isinstance(f, g.TurnStarted))
    await send(ws, turn(sid, "second", "t2"))
    frames = await until(ws, lambda f: isinstance(f, g.TurnCompleted) and f.turn.turn_id == "t2")
    queued = [f for f in frames if isinstance(f, g.TurnQueued)]
    assert [(q.turn_id, q.position) for q in queued] == [("t2", 1)]
    ends = [f.turn.turn_id for f in frames if isinstance(f, g.TurnStarted | g.TurnCompleted)]
    assert ends == ["t1", "t2", "t2"]  # t1 completes, then t2 starts and completes


async def test_malformed_frames_get_errors_and_the_connection_stays(
    vm: tuple[VmProcess, str],
) -> None:
    _, endpoint = vm
    ws, _ = await client(endpoint, create_new_session=True)
    for bad in [
        "not json",
        json.dumps({"type": "teleport", "payload": {"request_id": "q"}}),
        json.dumps({"type": "send_turn", "payload": {"request_id": "q2"}}),
        '{"type": "send_turn", "payload": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ]:
        await ws.send(bad)
        err = await recv(ws)
        assert isinstance(err, g.ErrorFrame) and err.code == "bad_frame"
    await send(ws, g.HealthCheck(request_id="hc"))
    health = await recv(ws)
    assert isinstance(health, g.HealthStatus) and health.healthy


class TestAuth:
    async def test_no_token_is_refused_before_the_upgrade(self, vm: tuple[VmProcess, str]) -> None:
        _, endpoint = vm
        with pytest.raises(InvalidStatus) as info:
            await connect(endpoint)
        assert info.value.response.status_code == 401

    async def test_a_token_in_the_url_is_not_accepted(self, vm: tuple[VmProcess, str]) -> None:
        _, endpoint = vm
        with pytest.raises(InvalidStatus) as info:
            await connect(f"{endpoint}?token={TOKEN}")
        assert info.value.response.status_code == 401

    async def test_a_browser_origin_is_refused_even_with_the_token(
        self, vm: tuple[VmProcess, str]
    ) -> None:
        _, endpoint = vm
        with pytest.raises(InvalidStatus) as info:
            await connect(
                endpoint,
                origin="https://evil.example",  # type: ignore[arg-type]
                additional_headers={"Authorization": f"Bearer {TOKEN}"},
            )
        assert info.value.response.status_code == 403

    async def test_hello_for_another_user_is_refused(self, vm: tuple[VmProcess, str]) -> None:
        _, endpoint = vm
        ws = await connect(endpoint, additional_headers={"Authorization": f"Bearer {TOKEN}"})
        await send(ws, g.Hello(request_id="h", protocol_version=2, user_id="mallory"))
        err = await recv(ws)
        assert isinstance(err, g.ErrorFrame) and err.code == "handshake"

    async def test_another_protocol_version_is_told_and_closed(
        self, vm: tuple[VmProcess, str]
    ) -> None:
        _, endpoint = vm
        ws = await connect(endpoint, additional_headers={"Authorization": f"Bearer {TOKEN}"})
        await send(ws, g.Hello(request_id="h", protocol_version=3, user_id="alice"))
        err = await recv(ws)
        assert isinstance(err, g.ErrorFrame) and "protocol version 3" in err.message
        await asyncio.wait_for(ws.wait_closed(), 5)


async def test_sessions_survive_a_restart_of_vm(tmp_path: Path, llm: FakeLLM) -> None:
    process = VmProcess(tmp_path, llm.base_url)
    endpoint = await process.start()
    llm.add([Reply(text="remember: blue")])
    ws, ack = await client(endpoint, create_new_session=True)
    sid = ack.session.session_id
    await send(ws, turn(sid, "my color is blue"))
    await until(ws, terminal)
    await ws.close()
    assert await process.stop() == 0
    assert not process.marker.exists(), "the marker is removed on exit"
    endpoint = await process.start()
    llm.add([Reply(text="blue")])
    ws2, _ = await client(endpoint, session_id=sid)
    await send(ws2, g.ListSessions(request_id="l"))
    listing = await until(ws2, lambda f: isinstance(f, g.SessionList))
    assert sid in [s.session_id for s in listing[-1].sessions]
    await send(ws2, turn(sid, "what is my color?"))
    await until(ws2, terminal)
    history = llm.requests[-1].json()["messages"]
    assert any("my color is blue" in str(m.get("content")) for m in history), "history restored"
    await process.stop()


async def test_the_tui_client_sees_new_turns_after_vm_restarts_on_the_same_port(
    tmp_path: Path, llm: FakeLLM
) -> None:
    # A restarted vm numbers the session's frames from 1 again; a client that kept its old
    # last_seq must not drop the new frames as "already seen".
    import socket

    from oxydra.tui.client import GatewayClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = VmProcess(tmp_path, llm.base_url, extra=[], bind=f"127.0.0.1:{port}")
    endpoint = await process.start()
    gateway = GatewayClient(endpoint, TOKEN, "alice", create_new_session=True, delay=lambda _: 0.1)
    gateway.start()

    async def next_of(kind: type) -> object:
        while True:
            event = await asyncio.wait_for(gateway.events.get(), 20)
            if isinstance(event, kind):
                return event

    try:
        ack = await next_of(g.HelloAck)
        assert isinstance(ack, g.HelloAck)
        sid = ack.session.session_id
        for answer in ("first answer", "second answer"):
            llm.add([Reply(text=answer)])
            await gateway.send(turn(sid, "go"))
            done = await next_of(g.TurnCompleted)
            assert isinstance(done, g.TurnCompleted) and done.response.message.content == answer
        await process.stop()
        await process.start()
        await next_of(g.HelloAck)
        llm.add([Reply(text="after the restart")])
        await gateway.send(turn(sid, "still there?"))
        done = await next_of(g.TurnCompleted)
        assert isinstance(done, g.TurnCompleted)
        assert done.response.message.content == "after the restart"
    finally:
        await gateway.close()
        await process.stop()


async def test_the_tui_client_follows_a_restarted_vm_to_its_new_port(
    tmp_path: Path, llm: FakeLLM
) -> None:
    # `runner restart` brings the guest back on a new port (and a new token): the TUI must
    # find it again through the endpoint marker, not retry the dead port forever.
    from oxydra.tui.client import GatewayClient

    process = VmProcess(tmp_path, llm.base_url)
    endpoint = await process.start()

    def rediscover() -> tuple[str, str]:
        return process.marker.read_text().strip(), TOKEN

    gateway = GatewayClient(
        endpoint,
        TOKEN,
        "alice",
        create_new_session=True,
        delay=lambda _: 0.1,
        rediscover=rediscover,
    )
    gateway.start()

    async def next_of(kind: type) -> object:
        while True:
            event = await asyncio.wait_for(gateway.events.get(), 20)
            if isinstance(event, kind):
                return event

    try:
        ack = await next_of(g.HelloAck)
        assert isinstance(ack, g.HelloAck)
        await process.stop()
        new_endpoint = await process.start()
        assert new_endpoint != endpoint
        await next_of(g.HelloAck)
        llm.add([Reply(text="found you")])
        await gateway.send(turn(ack.session.session_id, "there?"))
        done = await next_of(g.TurnCompleted)
        assert isinstance(done, g.TurnCompleted)
        assert done.response.message.content == "found you"
    finally:
        await gateway.close()
        await process.stop()
