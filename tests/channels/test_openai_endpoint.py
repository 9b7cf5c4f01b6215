"""The OpenAI-compatible endpoint, driven by the official `openai` SDK as any client would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from oxydra.channels import CHANNEL_SCHEMA
from oxydra.channels.openai import OpenAIEndpoint
from oxydra.config.people import people_from
from oxydra.config.runner_schema import UserConfig
from oxydra.config.schema import GatewayConfig, RuntimeConfig
from oxydra.core.messages import UsageUpdate
from oxydra.gateway import SESSION_SCHEMA
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway.core import GatewayCore
from oxydra.memory import HashedEmbedder, Memory
from oxydra.runtime import MemoryConversations
from oxydra.runtime.loop import AgentRuntime
from oxydra.testing.mock_provider import MockProvider, reply
from tests.runtime.support import FunctionTools

if TYPE_CHECKING:
    import openai

OWNER_KEY, GUEST_KEY = "owner-key-0123456789", "guest-key-0123456789"


@contextlib.asynccontextmanager
async def endpoint(tmp: Path, steps: Sequence[Any]) -> AsyncIterator[tuple[Any, OpenAIEndpoint]]:
    memory = await Memory.open(
        tmp / "m.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA, CHANNEL_SCHEMA]
    )
    provider = MockProvider(list(steps))
    runtime = AgentRuntime(
        provider=provider, tools=FunctionTools(), config=RuntimeConfig(), provider_id="mock",
        model="m", system_prompt="t", store=MemoryConversations(memory, index=False),
    )  # fmt: skip
    core = GatewayCore(runtime, MemorySessionRecords(memory), GatewayConfig())
    user = msgspec.convert({"people": [{"id": "sam", "api_key_env": "SAM_KEY"}]}, UserConfig)
    served = OpenAIEndpoint(
        people_from("alice", user),
        {OWNER_KEY: "alice", GUEST_KEY: "sam"},
        ["default", "researcher"],
        memory,
        ipc=tmp,
    )
    served.start(core)
    await served.ready.wait()
    try:
        yield provider, served
    finally:
        await served.aclose()
        await core.shutdown()
        await memory.close()


def _client(served: OpenAIEndpoint, key: str = OWNER_KEY) -> openai.AsyncOpenAI:
    import openai  # half a second of imports: only the workers that run these tests pay it

    assert served.address is not None
    host, port = served.address
    return openai.AsyncOpenAI(base_url=f"http://{host}:{port}/v1", api_key=key, max_retries=0)


async def test_a_completion_and_a_follow_up_land_in_one_session(tmp_path: Path) -> None:
    usage = UsageUpdate(prompt_tokens=12, completion_tokens=3)
    async with endpoint(tmp_path, [reply("Hello!", usage=usage), reply("Still me.")]) as (p, s):
        client = _client(s)
        first = await client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}]
        )
        assert first.choices[0].message.content == "Hello!"
        assert first.usage is not None and first.usage.prompt_tokens == 12
        again = await client.chat.completions.create(
            model="default",
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "and now?"},
            ],
        )
        assert again.choices[0].message.content == "Still me."
        seen = [m.text for m in p.contexts[1].messages]
        assert seen[-3:] == ["hi", "Hello!", "and now?"], "the agent kept the thread itself"
        assert (tmp_path / "openai-endpoint").read_text().startswith("http://127.0.0.1:")
        await client.close()


async def test_streaming_yields_chunks_then_usage(tmp_path: Path) -> None:
    usage = UsageUpdate(prompt_tokens=7, completion_tokens=2)
    async with endpoint(tmp_path, [reply("streamed answer", usage=usage)]) as (_, s):
        client = _client(s)
        stream = await client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "stream please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, finish, counted = "", None, None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                counted = chunk.usage.completion_tokens
        assert (text, finish, counted) == ("streamed answer", "stop", 2)
        await client.close()


async def test_models_lists_the_agents(tmp_path: Path) -> None:
    async with endpoint(tmp_path, []) as (_, s):
        client = _client(s)
        models = await client.models.list()
        assert [m.id for m in models.data] == ["default", "researcher"]
        await client.close()


async def test_keys_decide_the_person_and_a_wrong_key_gets_nothing(tmp_path: Path) -> None:
    import openai

    async with endpoint(tmp_path, [reply("for sam")]) as (p, s):
        async with _client(s, "not-a-key") as stranger:
            with pytest.raises(openai.AuthenticationError):
                await stranger.models.list()
        async with _client(s) as owner:
            with pytest.raises(openai.NotFoundError, match="does not exist"):
                await owner.chat.completions.create(
                    model="gpt-4", messages=[{"role": "user", "content": "x"}]
                )
        guest = _client(s, GUEST_KEY)
        answer = await guest.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "who am I?"}]
        )
        assert answer.choices[0].message.content == "for sam"
        assert s.core is not None
        assert len(await s.core.list_sessions("sam")) == 1
        assert await s.core.list_sessions("alice") == []
        last = p.contexts[0].messages[-1]
        assert last.label is not None and "sam via api" in last.label.describe()
        await guest.close()


async def test_a_request_without_a_user_message_is_a_400(tmp_path: Path) -> None:
    import openai

    async with endpoint(tmp_path, []) as (_, s):
        async with _client(s) as client:
            with pytest.raises(openai.BadRequestError, match="no user message"):
                await client.chat.completions.create(
                    model="default", messages=[{"role": "system", "content": "be nice"}]
                )


class TestHostileHttp:
    async def _raw(self, served: OpenAIEndpoint, data: bytes) -> bytes:
        assert served.address is not None
        reader, writer = await asyncio.open_connection(*served.address)
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        await writer.wait_closed()
        return answer

    async def test_a_body_over_the_limit_is_refused_before_it_is_read(self, tmp_path: Path) -> None:
        async with endpoint(tmp_path, []) as (_, s):
            head = (
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                b"authorization: Bearer " + OWNER_KEY.encode() + b"\r\n"
                b"content-length: 999999999\r\n\r\n"
            )
            answer = await self._raw(s, head)
            assert answer.startswith(b"HTTP/1.1 413")

    async def test_garbage_and_a_huge_head_close_the_connection(self, tmp_path: Path) -> None:
        async with endpoint(tmp_path, []) as (_, s):
            garbage = await self._raw(s, b"\x16\x03\x01garbage\r\n\r\n")
            assert garbage.startswith(b"HTTP/1.1 400")
            huge = b"GET /v1/models HTTP/1.1\r\nx: " + b"a" * 20_000 + b"\r\n\r\n"
            assert (await self._raw(s, huge)).startswith(b"HTTP/1.1 400")

    async def test_no_key_is_a_401_naming_nothing(self, tmp_path: Path) -> None:
        async with endpoint(tmp_path, []) as (_, s):
            request = b"GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            answer = await self._raw(s, request)
            assert answer.startswith(b"HTTP/1.1 401") and b"default" not in answer
