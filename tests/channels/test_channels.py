"""The channel contract: the TUI adapter against a real gateway, and the registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from oxydra.channels import Channel, ChannelHealth, ChannelRegistry
from oxydra.config.schema import GatewayConfig, RuntimeConfig
from oxydra.core.errors import ChannelError
from oxydra.gateway import SESSION_SCHEMA
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway.core import GatewayCore
from oxydra.gateway.server import GatewayServer
from oxydra.memory import HashedEmbedder, Memory
from oxydra.runtime.loop import AgentRuntime
from oxydra.testing.mock_provider import MockProvider, reply
from oxydra.tui.channel import TuiChannel
from oxydra.tui.client import ConnectionState, GatewayClient
from oxydra.wire import gateway as g
from tests.runtime.support import FunctionTools

TOKEN = "channel-test-token-0123456789"


@pytest.fixture
async def endpoint(tmp_path: Path) -> AsyncIterator[tuple[str, MockProvider]]:
    provider = MockProvider([reply("hello through the channel")])
    memory = await Memory.open(
        tmp_path / "m.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA]
    )
    runtime = AgentRuntime(
        provider=provider,
        tools=FunctionTools(),
        config=RuntimeConfig(),
        provider_id="mock",
        model="m",
        system_prompt="t",
    )
    core = GatewayCore(runtime, MemorySessionRecords(memory), GatewayConfig())
    server = GatewayServer(core, {TOKEN: "alice"})
    host, port = await server.start("127.0.0.1", 0)
    yield f"ws://{host}:{port}/ws", provider
    await core.shutdown()
    await server.close()
    await memory.close()


async def test_the_tui_channel_sends_turns_and_listens_for_frames(
    endpoint: tuple[str, MockProvider],
) -> None:
    url, _ = endpoint
    client = GatewayClient(url, TOKEN, "alice")
    channel = TuiChannel(client)
    assert isinstance(channel, Channel)
    client.start()
    frames: list[Any] = []
    listener = channel.listen()
    while not isinstance(frame := await asyncio.wait_for(listener.__anext__(), 10), g.HelloAck):
        frames.append(frame)
    assert channel.state == ConnectionState("connected")
    sid = frame.session.session_id

    async def collect() -> list[Any]:
        got = []
        async for item in listener:
            got.append(item)
            if isinstance(item, g.TurnCompleted):
                return got
        return got

    collector = asyncio.create_task(collect())
    assert (await channel.health_check()).healthy
    await channel.send(g.SendTurn(request_id="r", session_id=sid, turn_id="t", prompt="hi"))
    got = await asyncio.wait_for(collector, 10)
    assert (
        "".join(f.delta for f in got if isinstance(f, g.AssistantDelta))
        == "hello through the channel"
    )
    assert not any(isinstance(f, g.HealthStatus) for f in got), "probe answers are consumed"
    await client.close()


async def test_sending_without_a_link_is_a_channel_error() -> None:
    channel = TuiChannel(GatewayClient("ws://127.0.0.1:9/ws", TOKEN, "alice"))
    with pytest.raises(ChannelError, match="not connected"):
        await channel.send(g.HealthCheck(request_id="x"))
    assert not (await channel.health_check()).healthy


class _Stub:
    """A channel whose probe hangs or fails, as a broken chat API would."""

    capabilities: Any = None

    def __init__(self, name: str, behaviour: str) -> None:
        self.name, self.behaviour = name, behaviour

    async def send(self, frame: Any) -> None:
        raise ChannelError("down")

    async def listen(self) -> AsyncIterator[Any]:
        if False:
            yield None

    async def health_check(self) -> ChannelHealth:
        if self.behaviour == "hang":
            await asyncio.sleep(60)
        if self.behaviour == "fail":
            raise ChannelError("api said 502")
        return ChannelHealth(healthy=True)


async def test_the_registry_reports_every_channels_health() -> None:
    registry = ChannelRegistry()
    for name, behaviour in [("ok", "ok"), ("slow", "hang"), ("broken", "fail")]:
        registry.register(_Stub(name, behaviour))  # type: ignore[arg-type]
    health = await registry.health(timeout_secs=0.2)
    assert health["ok"].healthy and not health["slow"].healthy and not health["broken"].healthy
    assert "502" in health["broken"].detail and registry.names == ["broken", "ok", "slow"]
    with pytest.raises(ChannelError, match="already registered"):
        registry.register(_Stub("ok", "ok"))  # type: ignore[arg-type]
    with pytest.raises(ChannelError, match="no channel named 'telegram'"):
        registry.get("telegram")
