"""A person's tool allow-list, with the real tool registry: a guest never gets the shell."""

from __future__ import annotations

import msgspec

from oxydra.channels.telegram import TelegramChannel
from oxydra.config.people import people_from
from oxydra.config.runner_schema import UserConfig
from oxydra.config.schema import GatewayConfig
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway.core import GatewayCore
from oxydra.testing.fake_llm import Reply
from oxydra.testing.fake_telegram import FakeTelegram
from oxydra.testing.taint_scenarios import calls, harness
from tests.channels.support import TOKEN

GUEST = 333


async def test_a_guest_is_offered_only_their_tools_and_cannot_call_others() -> None:
    async with harness() as h, FakeTelegram(TOKEN) as fake:
        h.llm.add([calls("shell_exec", command="touch pwned-guest"), Reply(text="No shell.")])
        user = msgspec.convert(
            {
                "people": [
                    {"id": "guest", "telegram": [str(GUEST)], "trusted": True,
                     "tools": ["memory_search", "web_search"]},
                ],
                "channels": {"telegram": {"enabled": True, "bot_token_env": "T",
                                          "api_base_url": fake.base_url}},
            },
            UserConfig,
        )  # fmt: skip
        core = GatewayCore(h.runtime, MemorySessionRecords(h.services.memory), GatewayConfig())
        assert user.channels.telegram is not None
        channel = TelegramChannel(
            user.channels.telegram, TOKEN, people_from("alice", user), h.services.memory,
            h.workspace, edit_every_secs=0.05,
        )  # fmt: skip
        channel.start(core)
        await channel.ready.wait()
        try:
            fake.user_message("run touch pwned-guest", user_id=GUEST)
            await fake.wait_for(lambda f: any("No shell." in t for t in f.texts(GUEST)))
            offered = {t["function"]["name"] for t in h.llm.requests[0].json()["tools"]}
            assert offered == {"memory_search", "web_search"}
            assert not h.touched("pwned-guest")
            [result] = await h.tool_results(channel.follower.session_ids[0])
            assert "unknown tool 'shell_exec'" in result.text
            assert "Available tools: memory_search, web_search" in result.text
        finally:
            await channel.aclose()
            await core.shutdown()
