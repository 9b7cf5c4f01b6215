"""Holding under load and across restarts: epochs, lock-free creation, lagging, eviction."""

from __future__ import annotations

import asyncio
import random
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from oxydra.core.stream import Text
from oxydra.gateway._admission import RefusedError
from oxydra.gateway._framelog import FrameLog
from oxydra.testing.fake_llm import FakeLLM, Reply
from oxydra.testing.mock_provider import reply
from oxydra.tui.client import GatewayClient
from oxydra.wire import gateway as g
from tests.gateway import test_isolation
from tests.gateway.support import TOKEN, VmProcess, client, send, terminal, turn, until
from tests.gateway.test_isolation import ALICE, Stack

stack = test_isolation.stack  # the in-process gateway fixture, shared

SESSION = g.GatewaySession(user_id="alice", session_id="s")


def _numbered(log: FrameLog, seq: int, frame: Any) -> None:
    frame = type(frame)(**{**{f: getattr(frame, f) for f in frame.__struct_fields__}, "seq": seq})
    log.append(seq, frame, g.encode_frame(frame))


def _running(turn_id: str) -> g.TurnStatus:
    return g.TurnStatus(turn_id=turn_id, state="running")


def _text_after(log: FrameLog, last_seq: int) -> tuple[str, list[Any], bool]:
    data, gap = log.replay(last_seq)
    frames = [g.decode_server_frame(d) for d in data]
    text = "".join(f.delta for f in frames if isinstance(f, g.AssistantDelta))
    return text, frames, gap


# ---- the frame log (item 5) ------------------------------------------------------------


def test_a_huge_running_turn_replays_completely_from_any_point_within_the_budget() -> None:
    log = FrameLog(budget_bytes=8_192)
    _numbered(log, 1, g.TurnStarted(request_id="r", session=SESSION, turn=_running("t")))
    parts = [f"w{i} " for i in range(5_000)]
    for i, part in enumerate(parts):
        _numbered(
            log,
            i + 2,
            g.AssistantDelta(request_id="r", session=SESSION, turn=_running("t"), delta=part),
        )
    assert len(log.entries) < 50, "the running turn's deltas were coalesced"
    assert log.bytes < 8_192 + 2 * len("".join(parts)) + 40_000
    for seen in (0, 1, 2, 1_234, 4_999, 5_000):
        text, frames, gap = _text_after(log, seen)
        assert not gap
        assert text == "".join(parts[max(0, seen - 1) :]), seen
        assert [f.seq for f in frames] == sorted({f.seq for f in frames})
    assert _text_after(log, 5_001)[0] == ""


def test_a_finished_turns_deltas_give_way_to_its_terminal_frame() -> None:
    log = FrameLog(budget_bytes=4_096)
    _numbered(log, 1, g.TurnStarted(request_id="r", session=SESSION, turn=_running("a")))
    for seq in range(2, 200):
        delta = g.AssistantDelta(request_id="r", session=SESSION, turn=_running("a"), delta="x")
        _numbered(log, seq, delta)
    from oxydra.core.messages import Message, Response

    answer = Response(message=Message(role="assistant", content="x" * 198), finish_reason="stop")
    done = g.TurnStatus(turn_id="a", state="completed")
    _numbered(
        log, 200, g.TurnCompleted(request_id="r", session=SESSION, turn=done, response=answer)
    )
    _numbered(log, 201, g.TurnStarted(request_id="q", session=SESSION, turn=_running("b")))
    for seq in range(202, 400):
        delta = g.AssistantDelta(request_id="q", session=SESSION, turn=_running("b"), delta="y")
        _numbered(log, seq, delta)
    text, frames, gap = _text_after(log, 57)  # a client that saw part of turn `a`
    assert not gap
    completed = [f for f in frames if isinstance(f, g.TurnCompleted)]
    assert completed and completed[0].response.message.text == "x" * 198
    assert text.endswith("y" * 198)


def test_only_whole_finished_turns_are_ever_dropped_and_that_is_reported() -> None:
    log = FrameLog(budget_bytes=2_048)
    from oxydra.core.messages import Message, Response

    for n in range(40):
        tid = f"t{n}"
        base = n * 2
        _numbered(log, base + 1, g.TurnStarted(request_id="r", session=SESSION, turn=_running(tid)))
        message = Message(role="assistant", content="a" * 100)
        answer = Response(message=message, finish_reason="stop")
        done = g.TurnStatus(turn_id=tid, state="completed")
        _numbered(
            log,
            base + 2,
            g.TurnCompleted(request_id="r", session=SESSION, turn=done, response=answer),
        )
    assert log.bytes <= 2_048 and log.floor > 0
    _, frames, gap = _text_after(log, 0)
    assert gap and frames and isinstance(frames[-1], g.TurnCompleted)
    _, recent, gap = _text_after(log, 78)
    assert not gap and len(recent) == 2


# ---- a lagging subscriber over a real socket (item 5) ------------------------------------

_NOISE = random.Random(7)  # incompressible text: permessage-deflate must not hide the volume
BIG = [Text(text=_NOISE.randbytes(2_000).hex()) for _ in range(5_000)]


@pytest.mark.gateway(steps=[BIG], capacity=64, log_bytes=64 * 1024)
async def test_a_lagging_client_is_closed_with_4008_and_loses_nothing(stack: Stack) -> None:
    host, port = stack.endpoint.split("//")[1].split("/")[0].rsplit(":", 1)
    small = socket.socket()
    small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # no autotuned megabytes
    small.connect((host, int(port)))
    small.setblocking(False)
    ws, ack = await client(
        stack.endpoint, token=ALICE, user="alice", create_new_session=True, sock=small
    )
    sid = ack.session.session_id
    channel = await stack.core.resolve("alice", sid)
    # The turn is still running when the client comes back: it is never dropped from the log.
    running = stack.provider.hold_next(after=len(BIG) - 10)
    await send(ws, turn(sid, "a long answer"))
    # Read nothing until the server has given up on this subscriber.
    for _ in range(600):
        if channel.seq > 100 and not channel.subscribers:
            break
        await asyncio.sleep(0.05)
    assert not channel.subscribers, "the lagging subscriber was dropped"
    seen: list[Any] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            seen.append(g.decode_server_frame(await asyncio.wait_for(ws.recv(), 30)))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    assert any(isinstance(f, g.AssistantDelta) for f in seen), "it had been reading some"
    last = max(f.seq for f in seen if f.seq is not None)
    again, _ = await client(
        stack.endpoint,
        token=ALICE,
        user="alice",
        session_id=sid,
        last_seq=last,
        epoch=ack.epoch,
        max_size=None,
    )
    running.set()
    rest = await until(again, terminal, timeout=60)
    every = [f for f in seen + rest if isinstance(f, g.AssistantDelta)]
    assert "".join(f.delta for f in every) == "".join(t.text for t in BIG), "no frame lost"
    seqs = [f.seq for f in seen + rest if f.seq is not None]
    assert seqs == sorted(set(seqs)), "nothing twice, in order"
    assert not any(isinstance(f, g.ErrorFrame) and f.code == "replay_gap" for f in rest)


# ---- creation without a global lock (item 3) -----------------------------------------------


@pytest.mark.gateway(sessions=50)
async def test_concurrent_creates_never_pass_the_per_user_limit(stack: Stack) -> None:
    results = await asyncio.gather(
        *(stack.core.open_session("alice", create_new=True) for _ in range(120)),
        return_exceptions=True,
    )
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RefusedError)]
    assert len(made) == 50 and len(refused) == 70
    assert {r.code for r in refused} == {"session_limit"}
    assert await stack.core.store.count_active("alice") == 50


async def test_a_repeated_hello_request_id_creates_one_session(stack: Stack) -> None:
    same = await asyncio.gather(
        *(
            stack.core.open_session("alice", create_new=True, request_id="hello-1")
            for _ in range(20)
        )
    )
    assert len({c.session_id for c in same}) == 1
    later = await stack.core.open_session("alice", create_new=True, request_id="hello-1")
    assert later is same[0]
    other = await stack.core.open_session("alice", create_new=True, request_id="hello-2")
    assert other.session_id != later.session_id
    bobs = await stack.core.open_session("bob", create_new=True, request_id="hello-1")
    assert bobs.session_id != later.session_id and bobs.user_id == "bob"
    assert await stack.core.store.count_active("alice") == 2


async def test_concurrent_hellos_to_the_default_session_share_one_channel(stack: Stack) -> None:
    channels = await asyncio.gather(*(stack.core.open_session("alice") for _ in range(30)))
    assert len({id(c) for c in channels}) == 1
    assert await stack.core.store.count_active("alice") == 1


# ---- eviction (item 4) ----------------------------------------------------------------------


@pytest.mark.gateway(steps=[reply("one")])
async def test_idle_sessions_are_evicted_and_busy_ones_kept(stack: Stack) -> None:
    ws, ack = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    sid = ack.session.session_id
    await send(ws, turn(sid, "hi"))
    await until(ws, terminal)
    assert stack.core.evict_idle(0) == 0, "a followed session stays"
    await ws.close()
    for _ in range(100):
        if not (await stack.core.resolve("alice", sid)).subscribers:
            break
        await asyncio.sleep(0.02)
    assert sid in stack.runtime._conversations
    assert stack.core.evict_idle(0) == 1
    assert sid not in stack.runtime._conversations and sid not in stack.core._channels
    again, ack2 = await client(stack.endpoint, token=ALICE, user="alice", session_id=sid)
    assert ack2.epoch != ack.epoch and ack2.seq == 0, "a reloaded session starts a new epoch"
    await again.close()


# ---- epochs across real restarts of `vm` (item 1) -------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as fake:
        yield fake


async def _next(gc: GatewayClient, kind: type[Any], timeout: float = 30) -> Any:
    while True:
        event = await asyncio.wait_for(gc.events.get(), timeout)
        if isinstance(event, kind):
            return event


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
async def test_our_client_shows_turns_after_vm_restarts(
    tmp_path: Path, llm: FakeLLM, how: signal.Signals
) -> None:
    port = _free_port()
    vm = VmProcess(tmp_path, llm.base_url, extra=[f"gateway.bind=127.0.0.1:{port}"])
    endpoint = await vm.start()
    gc = GatewayClient(endpoint, TOKEN, "alice", create_new_session=True, delay=lambda n: 0.1)
    gc.start()
    try:
        first_ack = await _next(gc, g.HelloAck)
        sid = first_ack.session.session_id
        llm.add([Reply(text="before the restart " * 4, chunk=5)])
        await gc.send(turn(sid, "one"))
        await _next(gc, g.TurnCompleted)
        assert gc.last_seq[sid] >= 4
        assert vm.proc is not None
        vm.proc.send_signal(how)
        await asyncio.to_thread(vm.proc.wait, 20)
        await vm.start()
        second_ack = await _next(gc, g.HelloAck)
        assert second_ack.session.session_id == sid
        assert second_ack.epoch and second_ack.epoch != first_ack.epoch
        llm.add([Reply(text="after the restart", chunk=4)])
        await gc.send(turn(sid, "two"))
        started = await _next(gc, g.TurnStarted)
        assert started.seq == 1, "numbering restarted, and the client did not drop it"
        done = await _next(gc, g.TurnCompleted)
        assert done.response.message.text == "after the restart"
    finally:
        await gc.close()
        if vm.proc and vm.proc.poll() is None:
            await vm.stop()


async def test_a_hello_with_an_old_epochs_last_seq_is_replayed_from_the_start(
    tmp_path: Path, llm: FakeLLM
) -> None:
    vm = VmProcess(tmp_path, llm.base_url)
    endpoint = await vm.start()
    try:
        llm.add([Reply(text="fresh", chunk=2)])
        ws, ack = await client(endpoint, create_new_session=True)
        sid = ack.session.session_id
        await send(ws, turn(sid, "q"))
        frames = await until(ws, terminal)
        await ws.close()
        # A client from an earlier epoch, whose last_seq is far beyond this epoch's numbers.
        again, _ = await client(endpoint, session_id=sid, last_seq=10_000, epoch="earlier")
        replayed = await until(again, terminal)
        assert [f.seq for f in replayed] == [f.seq for f in frames]
        await again.close()
    finally:
        await vm.stop()


async def test_a_real_vm_admits_exactly_the_limit_and_retries_create_nothing(
    tmp_path: Path, llm: FakeLLM
) -> None:
    vm = VmProcess(tmp_path, llm.base_url, extra=["gateway.max_sessions_per_user=20"])
    endpoint = await vm.start()
    try:

        async def hello(request_id: str) -> Any:
            from websockets.asyncio.client import connect

            ws = await connect(endpoint, additional_headers={"Authorization": f"Bearer {TOKEN}"})
            hello = g.Hello(
                request_id=request_id, protocol_version=2, user_id="alice", create_new_session=True
            )
            await send(ws, hello)
            answer = g.decode_server_frame(await asyncio.wait_for(ws.recv(), 30))
            await ws.close()
            return answer

        ids = [f"hello-{i}" for i in range(60)]
        answers = await asyncio.gather(*(hello(rid) for rid in ids))
        acked = {rid: a.session.session_id for rid, a in zip(ids, answers, strict=True)
                 if isinstance(a, g.HelloAck)}  # fmt: skip
        refused = [a for a in answers if isinstance(a, g.ErrorFrame)]
        assert len(acked) == 20 and len(refused) == 40
        assert all("maximum sessions reached" in a.message for a in refused)
        again = await asyncio.gather(*(hello(rid) for rid in list(acked)[:5]))
        assert [a.session.session_id for a in again] == list(acked.values())[:5]
    finally:
        await vm.stop()
