"""A Telegram channel in process: real gateway core, real store, scripted model, fake Bot API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from oxydra.channels import CHANNEL_SCHEMA
from oxydra.channels.telegram import TelegramChannel
from oxydra.config.people import people_from
from oxydra.config.runner_schema import UserConfig
from oxydra.config.schema import GatewayConfig, RuntimeConfig
from oxydra.gateway import SESSION_SCHEMA
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway.core import GatewayCore
from oxydra.memory import HashedEmbedder, Memory
from oxydra.runtime import MemoryConversations
from oxydra.runtime.loop import AgentRuntime
from oxydra.testing.fake_telegram import FakeTelegram
from oxydra.testing.mock_provider import MockProvider
from tests.runtime.support import FunctionTools

TOKEN = "123456:TEST-token"
ALICE, BOB, STRANGER = 111, 222, 999


def user_config(base_url: str, **telegram: Any) -> UserConfig:
    """Alice (the vm's user, trusted) and Bob (a guest) on Telegram."""
    data: dict[str, Any] = {
        "channels": {
            "telegram": {
                "enabled": True,
                "bot_token_env": "BOT_TOKEN",
                "polling_timeout_secs": 1,
                "api_base_url": base_url,
                "senders": [
                    {"platform_ids": [str(ALICE)], "person": "alice"},
                    {"platform_ids": [str(BOB)], "display_name": "Bob"},
                ],
                **telegram,
            }
        },
        "people": [{"id": "alice", "display_name": "Alice"}],
    }
    return msgspec.convert(data, UserConfig)


@dataclass
class Rig:
    fake: FakeTelegram
    channel: TelegramChannel
    core: GatewayCore
    memory: Memory
    provider: Any
    workspace: Path


@contextlib.asynccontextmanager
async def rig(
    tmp: Path,
    steps: Sequence[Any] = (),
    *,
    provider: Any = None,
    config: UserConfig | None = None,
    edit_every_secs: float = 0.05,
    stall_factor: float = 3.0,
    follow_idle_secs: float = 600.0,
    token: str = TOKEN,
    memory: Memory | None = None,
    fake: FakeTelegram | None = None,
    lease: Any = None,
    wait_ready: bool = True,
) -> AsyncIterator[Rig]:
    """A started channel; the caller scripts the model with `steps` or gives a `provider`."""
    own_fake = fake is None
    fake = fake or await FakeTelegram(TOKEN).start()
    own_memory = memory is None
    memory = memory or await Memory.open(
        tmp / "m.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA, CHANNEL_SCHEMA]
    )
    provider = provider or MockProvider(list(steps))
    runtime = AgentRuntime(
        provider=provider,
        tools=FunctionTools(),
        config=RuntimeConfig(),
        provider_id="mock",
        model="m",
        system_prompt="t",
        store=MemoryConversations(memory, index=False),
    )
    core = GatewayCore(runtime, MemorySessionRecords(memory), GatewayConfig())
    user = config or user_config(fake.base_url)
    assert user.channels.telegram is not None
    channel = TelegramChannel(
        user.channels.telegram,
        token,
        people_from("alice", user),
        memory,
        tmp,
        edit_every_secs=edit_every_secs,
        stall_factor=stall_factor,
        follow_idle_secs=follow_idle_secs,
        lease=lease,
    )
    channel.start(core)
    if wait_ready:
        await channel.ready.wait()
    try:
        yield Rig(fake, channel, core, memory, provider, tmp)
    finally:
        await channel.aclose()
        await core.shutdown()
        if own_memory:
            await memory.close()
        if own_fake:
            await fake.close()


def final_text(fake: FakeTelegram, chat: int) -> str:
    """The chat's messages joined (what the person reads now)."""
    return "\n".join(fake.texts(chat))
