"""In-process gateway with two users: isolation, limits, slow subscribers, approvals."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from oxydra.config.schema import GatewayConfig, RuntimeConfig
from oxydra.core.messages import ToolCall
from oxydra.core.stream import Text
from oxydra.core.tiers import SafetyTier
from oxydra.gateway import SESSION_SCHEMA
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway.core import GatewayCore
from oxydra.gateway.server import GatewayServer
from oxydra.memory import HashedEmbedder, Memory
from oxydra.runtime.loop import AgentRuntime
from oxydra.testing.mock_provider import MockProvider, reply
from oxydra.tools import ApprovalRequest, ToolExecutionContext, ToolResult
from oxydra.wire import gateway as g
from tests.gateway.support import client, recv, send, terminal, turn, until
from tests.runtime.support import FunctionTools

TOKENS = {"token-alice-0123456789": "alice", "token-bob-0123456789ab": "bob"}
ALICE, BOB = "token-alice-0123456789", "token-bob-0123456789ab"


class Gate(FunctionTools):
    """One privileged tool that asks the approver before it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.add("shell_exec", self._run, read_only=False)

    async def _run(self, command: str = "") -> str:
        return f"ran {command}"

    async def execute(self, call: ToolCall, ctx: ToolExecutionContext) -> ToolResult:
        assert ctx.approval is not None
        request = ApprovalRequest(
            tool=call.name,
            safety_tier=SafetyTier.PRIVILEGED,
            arguments=call.arguments,
            user_id=ctx.user_id,
            session_id=ctx.session_id,
        )
        if not await ctx.approval(request):
            return ToolResult(name=call.name, text="denied by the user", ok=False)
        return await super().execute(call, ctx)


class Stack:
    runtime: AgentRuntime
    memory: Memory

    def __init__(self, provider: MockProvider, endpoint: str, core: GatewayCore) -> None:
        self.provider, self.endpoint, self.core = provider, endpoint, core


@pytest.fixture
async def stack(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    marker = request.node.get_closest_marker("gateway")
    options: dict[str, Any] = marker.kwargs if marker else {}
    provider = MockProvider(options.get("steps", []), item_delay=options.get("delay", 0.0))
    memory = await Memory.open(
        tmp_path / "memory.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA]
    )
    runtime = AgentRuntime(
        provider=provider,
        tools=Gate(),
        config=RuntimeConfig(),
        provider_id="mock",
        model="m",
        system_prompt="test",
    )
    config = GatewayConfig(
        max_concurrent_turns_per_user=options.get("turns", 10),
        max_sessions_per_user=options.get("sessions", 50),
    )
    core = GatewayCore(
        runtime,
        MemorySessionRecords(memory),
        config,
        subscriber_capacity=options.get("capacity", 4096),
        log_bytes=options.get("log_bytes", 1 << 20),
        approval_timeout_secs=5,
    )
    server = GatewayServer(core, TOKENS)
    host, port = await server.start("127.0.0.1", 0)
    stack = Stack(provider, f"ws://{host}:{port}/ws", core)
    stack.runtime, stack.memory = runtime, memory
    yield stack
    await core.shutdown()
    await server.close()
    await memory.close()


async def test_one_user_can_never_reach_another_users_session(stack: Stack) -> None:
    stack.provider.steps.append(reply("alice's secret answer"))
    alice, ack = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    sid = ack.session.session_id
    await send(alice, turn(sid, "hello"))
    await until(alice, terminal)
    # Bob's token cannot open Alice's session, by id or by prefix, nor claim to be Alice.
    bob, _ = await client(stack.endpoint, token=BOB, user="bob")
    await send(bob, g.SwitchSession(request_id="s", session_id=sid))
    err = await recv(bob)
    assert isinstance(err, g.ErrorFrame) and err.code == "session_not_found"
    await send(bob, g.SwitchSession(request_id="s2", session_id=sid[:8]))
    assert isinstance(await recv(bob), g.ErrorFrame)
    await send(bob, g.ListSessions(request_id="l"))
    listing = await recv(bob)
    assert isinstance(listing, g.SessionList) and sid not in [
        s.session_id for s in listing.sessions
    ]
    ws = await connect(stack.endpoint, additional_headers={"Authorization": f"Bearer {BOB}"})
    await send(ws, g.Hello(request_id="h", protocol_version=2, user_id="alice", session_id=sid))
    err = await recv(ws)
    assert isinstance(err, g.ErrorFrame) and err.code == "handshake"
    bob2 = await connect(stack.endpoint, additional_headers={"Authorization": f"Bearer {BOB}"})
    await send(bob2, g.Hello(request_id="h", protocol_version=2, user_id="bob", session_id=sid))
    err = await recv(bob2)
    assert isinstance(err, g.ErrorFrame) and "not found" in err.message


async def test_a_token_for_one_user_never_receives_another_users_frames(stack: Stack) -> None:
    stack.provider.steps.append(reply("for alice only"))
    alice, ack = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    bob, _ = await client(stack.endpoint, token=BOB, user="bob", create_new_session=True)
    await send(alice, turn(ack.session.session_id, "hi"))
    await until(alice, terminal)
    with pytest.raises(TimeoutError):
        await recv(bob, timeout=0.3)


@pytest.mark.gateway(steps=[[Text(text=str(i)) for i in range(3)]] * 2, turns=1)
async def test_past_the_per_user_turn_limit_a_turn_waits_then_runs(stack: Stack) -> None:
    a, ack_a = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    b, ack_b = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    first_answer = stack.provider.hold_next()
    await send(a, turn(ack_a.session.session_id, "one"))
    await until(a, lambda f: isinstance(f, g.TurnStarted))
    await send(b, turn(ack_b.session.session_id, "two"))
    queued = await recv(b)
    assert isinstance(queued, g.TurnQueued) and queued.position == 1
    first_answer.set()
    frames = await until(b, terminal)
    assert isinstance(frames[0], g.TurnStarted) and isinstance(frames[-1], g.TurnCompleted)
    await until(a, terminal)
    assert stack.core.lanes.running_total == 0
    await a.close()
    await b.close()


@pytest.mark.gateway(steps=[[Text(text=f"{i:03} ") for i in range(300)]], capacity=8, delay=0.002)
async def test_a_slow_subscriber_is_dropped_then_replayed_without_loss(stack: Stack) -> None:
    fast, ack = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    sid = ack.session.session_id
    channel = await stack.core.resolve("alice", sid)
    # A subscriber that never drains (a stalled client) beside a live WebSocket client.
    stalled, replay, gap = stack.core.subscribe(channel, None)
    assert replay == [] and not gap
    await send(fast, turn(sid, "count"))
    fast_frames = await until(fast, terminal)
    assert [f.seq for f in fast_frames] == list(range(1, len(fast_frames) + 1)), "fast lost nothing"
    assert stalled.overflowed.is_set() and stalled not in channel.subscribers
    kept = []
    while not stalled.queue.empty():
        kept.append(g.decode_server_frame(stalled.queue.get_nowait()))
    assert len(kept) == 8
    again, _ = await client(
        stack.endpoint, token=ALICE, user="alice", session_id=sid, last_seq=kept[-1].seq
    )
    rest = await until(again, terminal)
    assert [f.seq for f in kept + rest] == [f.seq for f in fast_frames]


def _small_socket(endpoint: str) -> socket.socket:
    """A connected client socket with a small receive buffer, so a paused reader stalls the
    server's sends within a few frames instead of after megabytes."""
    host, port = endpoint.removeprefix("ws://").removesuffix("/ws").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


@pytest.mark.gateway(steps=[[Text(text=f"{i:04}" + "x" * 4000) for i in range(200)]], capacity=8)
async def test_a_slow_client_on_a_session_it_created_is_closed_4008_then_replayed(
    stack: Stack,
) -> None:
    slow, _ = await client(
        stack.endpoint, token=ALICE, user="alice", sock=_small_socket(stack.endpoint), max_queue=1
    )
    await send(slow, g.CreateSession(request_id="c", display_name="new"))
    created = await recv(slow)
    assert isinstance(created, g.SessionCreated)
    sid = created.session.session_id
    slow.transport.pause_reading()  # a stalled client: frames pile up in the server
    await send(slow, turn(sid, "count"))
    channel = await stack.core.resolve("alice", sid)
    async with asyncio.timeout(20):
        while channel.active_turn is not None or channel.seq < 3:
            await asyncio.sleep(0.01)
    slow.transport.resume_reading()
    seen: list[Any] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            seen.append(await recv(slow))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    again, _ = await client(
        stack.endpoint, token=ALICE, user="alice", session_id=sid, last_seq=seen[-1].seq
    )
    frames = seen + await until(again, terminal)
    seqs = [f.seq for f in frames]
    assert seqs == sorted(set(seqs)) and seqs[0] == 1, "in order, nothing twice"
    # Over the log's byte budget a finished turn's deltas give way to its terminal frame,
    # which carries the whole answer (docs/protocol.md, Delivery): nothing is lost.
    expected = "".join(f"{i:04}" + "x" * 4000 for i in range(200))
    text = "".join(f.delta for f in frames if isinstance(f, g.AssistantDelta))
    assert expected.startswith(text)
    assert isinstance(frames[-1], g.TurnCompleted)
    assert frames[-1].response.message.text == expected


@pytest.mark.gateway(
    steps=[
        reply("", ToolCall(id="c1", name="shell_exec", arguments={"command": "ls"})),
        reply("done"),
    ]
)
async def test_an_approval_request_waits_for_the_users_answer(stack: Stack) -> None:
    ws, ack = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    await send(ws, turn(ack.session.session_id, "list files"))
    request = (await until(ws, lambda f: isinstance(f, g.ApprovalRequest)))[-1]
    assert request.tool_name == "shell_exec" and request.arguments == {"command": "ls"}
    bob, _ = await client(stack.endpoint, token=BOB, user="bob")
    await send(
        bob, g.ApprovalResponse(request_id="x", approval_id=request.approval_id, approved=True)
    )
    err = await recv(bob)
    assert isinstance(err, g.ErrorFrame) and err.code == "unknown_approval", "bob cannot approve"
    await send(
        ws, g.ApprovalResponse(request_id="y", approval_id=request.approval_id, approved=False)
    )
    await until(ws, terminal)
    tool_result = stack.provider.contexts[1].messages[-1]
    assert tool_result.text == "denied by the user"


@pytest.mark.gateway(
    steps=[
        reply("", ToolCall(id="c1", name="shell_exec", arguments={"command": "evil"})),
        reply("done"),
    ]
)
async def test_another_client_with_the_same_token_cannot_answer_an_approval(
    stack: Stack,
) -> None:
    """Issue 12 item 2: whatever holds the user's token (the guest's own gateway-token,
    read by a shell command or a helper) joins the session and approves its own call."""
    ws, ack = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    sid = ack.session.session_id
    await send(ws, turn(sid, "do it"))
    request = (await until(ws, lambda f: isinstance(f, g.ApprovalRequest)))[-1]
    intruder, _ = await client(stack.endpoint, token=ALICE, user="alice", session_id=sid)
    answer = g.ApprovalResponse(request_id="x", approval_id=request.approval_id, approved=True)
    await send(intruder, answer)
    err = await until(intruder, lambda f: isinstance(f, g.ErrorFrame))
    assert err[-1].code == "approval_not_owner"
    await send(
        ws, g.ApprovalResponse(request_id="y", approval_id=request.approval_id, approved=True)
    )
    await until(ws, terminal)
    assert stack.provider.contexts[1].messages[-1].text == "ran evil"


async def test_cancel_all_cancels_every_turn_of_the_user(stack: Stack) -> None:
    stack.provider.steps += [[Text(text=str(i)) for i in range(500)]] * 2
    stack.provider.item_delay = 0.01
    a, ack_a = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    b, ack_b = await client(stack.endpoint, token=ALICE, user="alice", create_new_session=True)
    await send(a, turn(ack_a.session.session_id, "one"))
    await send(b, turn(ack_b.session.session_id, "two"))
    await until(a, lambda f: isinstance(f, g.AssistantDelta))
    await until(b, lambda f: isinstance(f, g.AssistantDelta))
    await send(a, g.CancelAllActiveTurns(request_id="all"))
    assert isinstance((await until(a, terminal))[-1], g.TurnCancelled)
    assert isinstance((await until(b, terminal))[-1], g.TurnCancelled)
    await asyncio.sleep(0)
