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


async def test_one_persons_notes_never_reach_another_persons_turns() -> None:
    from tests.channels.support import ALICE, BOB
    from tests.channels.test_telegram_taint import _channel, _has

    async with harness() as h, FakeTelegram(TOKEN) as fake:
        await h.services.memory.store_note("alice", "alice's door code is 4711")
        h.llm.add(
            [
                calls("memory_search", query="door code"),
                Reply(text="bob searched"),
                calls("memory_search", query="door code"),
                Reply(text="alice searched"),
            ]
        )
        channel, core = await _channel(h, fake)
        try:
            fake.user_message("what is the door code?", user_id=BOB)
            await fake.wait_for(_has(BOB, "bob searched"))
            fake.user_message("what is the door code?", user_id=ALICE)
            await fake.wait_for(_has(ALICE, "alice searched"))
            assert channel.store is not None
            bob_session = await channel.store.session_for(f"telegram-{BOB}", str(BOB))
            alice_session = await channel.store.session_for("alice", str(ALICE))
            assert bob_session is not None and alice_session is not None
            [bob_result] = await h.tool_results(bob_session)
            [alice_result] = await h.tool_results(alice_session)
            assert "4711" not in bob_result.text
            assert "4711" in alice_result.text
            bob_saw = b"".join(r.body for r in h.llm.requests[:2])
            assert b"4711" not in bob_saw, "nor retrieved into Bob's context"
        finally:
            await channel.aclose()
            await core.shutdown()
