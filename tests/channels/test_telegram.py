"""The Telegram channel against a fake Bot API at the wire, with a real gateway core."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from oxydra.channels import CHANNEL_SCHEMA
from oxydra.core.messages import UsageUpdate
from oxydra.core.stream import FinishReason, StreamItem, Text
from oxydra.gateway import SESSION_SCHEMA
from oxydra.memory import HashedEmbedder, Memory
from oxydra.testing.fake_telegram import FakeTelegram
from oxydra.testing.mock_provider import reply
from tests.channels.support import ALICE, BOB, STRANGER, rig


def _answered(chat: int, text: str):  # type: ignore[no-untyped-def]
    return lambda f: any(text in t for t in f.texts(chat))


class TestConversation:
    async def test_a_message_gets_a_working_message_edited_into_the_answer(
        self, tmp_path: Path
    ) -> None:
        async with rig(tmp_path, [reply("**Hello** Alice")]) as r:
            r.fake.user_message("hi", user_id=ALICE)
            await r.fake.wait_for(lambda f: any("<b>Hello</b>" in t for t in f.texts(ALICE)))
            [sent] = r.fake.sent[ALICE]
            assert sent.text == "<b>Hello</b> Alice" and sent.parse_mode == "HTML"
            assert sent.history[0] == "⏳ Working…", "the working message was edited, not replaced"
            assert [c for c, _ in r.fake.calls].count("sendMessage") == 1
            commands = {c["command"] for c in r.fake.commands}
            assert {
                "new",
                "sessions",
                "switch",
                "cancel",
                "cancelall",
                "status",
                "help",
            } <= commands

    async def test_status_shows_what_the_session_has_spent(self, tmp_path: Path) -> None:
        usage = UsageUpdate(prompt_tokens=1200, completion_tokens=34, total_tokens=1234)
        async with rig(tmp_path, [reply("Hi Alice", usage=usage)]) as r:
            r.fake.user_message("/status", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "Spent: 0 tokens over 0 model calls"))
            r.fake.user_message("hi", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "Hi Alice"))
            r.fake.user_message("/status", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "Spent: 1,234 tokens over 1 model call "))

    async def test_a_long_answer_is_split_at_paragraphs_within_the_limit(
        self, tmp_path: Path
    ) -> None:
        paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(12)]
        async with rig(tmp_path, [reply("\n\n".join(paragraphs))]) as r:
            r.fake.user_message("write a lot", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "Paragraph 11"))
            texts = r.fake.texts(ALICE)
            assert len(texts) >= 3 and all(len(t) <= 4096 for t in texts)
            assert all(t.startswith("Paragraph") for t in texts), "cut at paragraph starts"

    async def test_html_telegram_refuses_is_sent_again_as_plain_text(self, tmp_path: Path) -> None:
        async with rig(tmp_path, [reply("see *this*")]) as r:
            r.fake.fail(
                "editMessageText",
                400,
                "can't parse entities: unsupported start tag",
                when=lambda params: params.get("parse_mode") == "HTML",
            )
            r.fake.user_message("hi", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "see *this*"))
            assert r.fake.sent[ALICE][0].parse_mode is None

    async def test_a_server_with_a_lower_limit_gets_the_answer_in_smaller_pieces(
        self, tmp_path: Path
    ) -> None:
        text = " ".join(f"w{i}" for i in range(700))  # about 3,400 characters, one piece
        async with rig(tmp_path, [reply(text)]) as r:
            r.fake.fail(  # a Bot API server whose limit is 2,000 characters
                "editMessageText", 400, "message is too long", times=3,
                when=lambda params: len(params.get("text", "")) > 2000,
            )  # fmt: skip
            r.fake.user_message("hi", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "w699"))
            texts = r.fake.texts(ALICE)
            assert len(texts) == 2 and all(len(t) <= 2000 for t in texts)
            assert " ".join(texts).split() == text.split(), "nothing lost or repeated"


class TestIngress:
    async def test_an_unknown_sender_gets_no_reply_and_is_audited(self, tmp_path: Path) -> None:
        async with rig(tmp_path, [reply("for alice")]) as r:
            r.fake.user_message("let me in", user_id=STRANGER)
            r.fake.user_message("hi", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "for alice"))
            assert STRANGER not in r.fake.sent
            [line] = (tmp_path / ".oxydra" / "sender_audit.log").read_text().splitlines()
            entry = json.loads(line)
            assert entry["sender_id"] == str(STRANGER)
            assert entry["reason"] == "sender not in authorized list"
            assert entry["context"] == f"chat_id={STRANGER}"

    async def test_a_malformed_update_is_skipped_and_polling_goes_on(self, tmp_path: Path) -> None:
        async with rig(tmp_path, [reply("still here")]) as r:
            r.fake.raw_update({"message": {"message_id": "not a number", "chat": 5}})
            r.fake.user_message("hi", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "still here"))

    async def test_a_file_over_10_mib_is_refused_with_a_reply(self, tmp_path: Path) -> None:
        async with rig(tmp_path) as r:
            big = {"file_id": r.fake.add_file(b"x"), "file_size": 60 * 2**20}
            r.fake.user_message(None, user_id=ALICE, document=big, caption="read this")
            await r.fake.wait_for(_answered(ALICE, "not read"))
            assert "60.0 MiB" in r.fake.texts(ALICE)[0]
            assert not any(c == "getFile" for c, _ in r.fake.calls)

    async def test_an_album_of_20_photos_takes_four_and_says_so_once(self, tmp_path: Path) -> None:
        steps = [reply(f"photo {i}") for i in range(4)]
        async with rig(tmp_path, steps) as r:
            for _ in range(20):
                photo = [{"file_id": r.fake.add_file(b"\xff\xd8jpeg"), "file_size": 5}]
                r.fake.user_message(None, user_id=ALICE, photo=photo, media_group_id="album")
            await r.fake.wait_for(_answered(ALICE, "photo 3"))
            await r.fake.wait_for(_answered(ALICE, "Only the first 4"))
            texts = r.fake.texts(ALICE)
            assert sum("Only the first 4" in t for t in texts) == 1
            r.provider.assert_done()
            first = r.provider.contexts[0].messages[-1]
            assert any(getattr(p, "mime_type", "") == "image/jpeg" for p in first.content)


class TestDelivery:
    async def test_a_429_is_retried_after_retry_after(self, tmp_path: Path) -> None:
        async with rig(tmp_path, [reply("after the wait")]) as r:
            r.fake.fail("editMessageText", 429, "Too Many Requests: retry after 1", retry_after=1)
            r.fake.user_message("hi", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "after the wait"))
            assert [c for c, _ in r.fake.calls].count("editMessageText") >= 2

    async def test_a_deleted_chat_drops_the_message_and_the_bot_goes_on(
        self, tmp_path: Path
    ) -> None:
        async with rig(tmp_path, [reply("to bob")]) as r:
            r.fake.deleted_chats.add(ALICE)
            r.fake.user_message("hi", user_id=ALICE)
            r.fake.user_message("hi", user_id=BOB)
            await r.fake.wait_for(_answered(BOB, "to bob"))
            assert ALICE not in r.fake.sent


async def test_a_rejected_token_stops_only_the_channel(tmp_path: Path) -> None:
    async with FakeTelegram() as fake, rig(tmp_path, fake=fake, token="1:wrong") as r:
        health = await r.channel.health_check()
        assert not health.healthy and "refused the bot token" in health.detail
        assert not any(c == "getUpdates" for c, _ in fake.calls)


class TestSessions:
    async def test_a_forum_topic_is_its_own_session_and_replies_stay_in_it(
        self, tmp_path: Path
    ) -> None:
        async with rig(tmp_path, [reply("in the chat"), reply("in the topic")]) as r:
            r.fake.user_message("hi", user_id=ALICE, chat_id=-100, chat_type="supergroup")
            await r.fake.wait_for(_answered(-100, "in the chat"))
            r.fake.user_message("hi", user_id=ALICE, chat_id=-100, thread_id=7,
                                chat_type="supergroup")  # fmt: skip
            await r.fake.wait_for(_answered(-100, "in the topic"))
            chat, topic = r.fake.sent[-100]
            assert chat.thread_id is None and topic.thread_id == 7
            sessions = await r.core.list_sessions("alice")
            assert len(sessions) == 2

    async def test_new_and_switch_reach_sessions_of_the_person_made_on_any_channel(
        self, tmp_path: Path
    ) -> None:
        async with rig(tmp_path, [reply("one"), reply("two")]) as r:
            tui = await r.core.open_session("alice", create_new=True, display_name="from tui")
            r.fake.user_message("/sessions", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "from tui"))
            r.fake.user_message(f"/switch {tui.session_id[:8]}", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "now uses session"))
            r.fake.user_message("hello there", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "one"))
            history = await r.memory.recall(tui.session_id)
            assert history[0].message.text == "hello there"
            r.fake.user_message("/new work", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "New session"))
            names = {s.display_name for s in await r.core.list_sessions("alice")}
            assert {"from tui", "work"} <= names, "a /new session is listed for the TUI too"

    async def test_a_restart_lands_in_the_same_session(self, tmp_path: Path) -> None:
        memory = await Memory.open(
            tmp_path / "m.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA, CHANNEL_SCHEMA]
        )
        async with FakeTelegram() as fake:
            async with rig(tmp_path, [reply("first")], memory=memory, fake=fake) as r:
                fake.user_message("remember me", user_id=ALICE)
                await fake.wait_for(_answered(ALICE, "first"))
                [before] = await r.core.list_sessions("alice")
            async with rig(tmp_path, [reply("second")], memory=memory, fake=fake) as again:
                fake.user_message("still me?", user_id=ALICE)
                await fake.wait_for(_answered(ALICE, "second"))
                after = await again.core.list_sessions("alice")
                assert [s.session_id for s in after] == [before.session_id]
                seen = again.provider.contexts[0].messages
                assert any(m.text == "remember me" for m in seen)
        await memory.close()


class TestPeople:
    async def test_people_have_their_own_sessions(self, tmp_path: Path) -> None:
        async with rig(tmp_path, [reply("hi alice"), reply("hi bob")]) as r:
            r.fake.user_message("I am alice", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "hi alice"))
            r.fake.user_message("I am bob", user_id=BOB)
            await r.fake.wait_for(_answered(BOB, "hi bob"))
            alice = await r.core.list_sessions("alice")
            bob = await r.core.list_sessions(f"telegram-{BOB}")
            assert len(alice) == len(bob) == 1 and alice[0].session_id != bob[0].session_id
            bob_saw = r.provider.contexts[1].messages
            assert not any("I am alice" in m.text for m in bob_saw)

    async def test_a_person_over_their_daily_budget_is_told_and_no_turn_runs(
        self, tmp_path: Path
    ) -> None:
        from oxydra.channels import ChannelStore
        from tests.channels.support import user_config

        async with FakeTelegram() as fake:
            config = user_config(fake.base_url)
            config.people[0].max_cost_usd_per_day = 0.5
            async with rig(tmp_path, [], fake=fake, config=config) as r:
                assert r.channel.store is not None
                store = ChannelStore(r.memory, r.channel.store.channel)
                await store.add_spend("alice", 0.75)
                r.fake.user_message("expensive question", user_id=ALICE)
                await r.fake.wait_for(_answered(ALICE, "budget"))
                assert r.provider.contexts == []


class TestTurns:
    async def test_a_message_while_busy_gets_a_note_and_is_answered_after(
        self, tmp_path: Path
    ) -> None:
        from oxydra.testing.mock_provider import MockProvider

        started = asyncio.Event()

        class Gated(MockProvider):  # the first answer waits until the second message is in
            async def stream(self, context: Any) -> AsyncIterator[StreamItem]:
                first = not self.contexts
                async for item in super().stream(context):
                    if first:
                        await started.wait()
                    yield item

        provider = Gated([reply("first " * 40), reply("second")])
        async with rig(tmp_path, provider=provider) as r:
            r.fake.user_message("one", user_id=ALICE)
            await r.fake.wait_for(lambda f: len(f.sent[ALICE]) == 1)
            r.fake.user_message("two", user_id=ALICE)
            await r.fake.wait_for(lambda f: any("still working" in t for t in f.texts(ALICE)))
            started.set()
            await r.fake.wait_for(_answered(ALICE, "second"))
            texts = r.fake.texts(ALICE)
            assert any("still working" in t for t in texts)
            assert texts[-1] == "second" and texts[0].startswith("first")

    async def test_cancel_stops_the_running_answer(self, tmp_path: Path) -> None:
        from oxydra.testing.mock_provider import MockProvider

        slow = [Text(text="slow ") for _ in range(2000)] + [FinishReason(reason="stop")]
        provider = MockProvider([slow], item_delay=0.05)  # 100 s unless cancelled
        async with rig(tmp_path, provider=provider) as r:
            r.fake.user_message("go", user_id=ALICE)
            await r.fake.wait_for(lambda f: any("slow" in t for t in f.texts(ALICE)))
            r.fake.user_message("/cancel", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "Cancelled."))


async def test_a_wedged_long_poll_is_noticed_and_restarted(tmp_path: Path) -> None:
    async with FakeTelegram() as fake:
        fake.trickle_polls = 1  # headers, then a byte every 0.2 s: no read timeout ever fires
        async with rig(tmp_path, [reply("unstuck")], fake=fake) as r:
            fake.user_message("anyone?", user_id=ALICE)
            await fake.wait_for(_answered(ALICE, "unstuck"), timeout=30)
            assert r.channel.poller is not None and r.channel.poller.health.restarts >= 1
            assert (await r.channel.health_check()).healthy


async def test_a_scheduled_notification_reaches_the_chat_of_its_session_after_a_restart(
    tmp_path: Path,
) -> None:
    from oxydra.wire import gateway as g

    memory = await Memory.open(
        tmp_path / "m.db", embedder=HashedEmbedder(), schemas=[SESSION_SCHEMA, CHANNEL_SCHEMA]
    )
    async with FakeTelegram() as fake:
        async with rig(tmp_path, [reply("scheduled it")], memory=memory, fake=fake) as r:
            fake.user_message("remind me", user_id=ALICE)
            await fake.wait_for(_answered(ALICE, "scheduled it"))
            [session] = await r.core.list_sessions("alice")
        async with rig(tmp_path, [], memory=memory, fake=fake) as again:
            frame = g.ScheduledNotification(schedule_id="s1", message="⏰ stand up")
            assert await again.core.notify("alice", frame, session.session_id)
            await fake.wait_for(_answered(ALICE, "⏰ stand up"))
            assert BOB not in fake.sent
    await memory.close()


async def test_an_idle_chat_session_is_let_go_and_still_gets_its_notifications(
    tmp_path: Path,
) -> None:
    from oxydra.wire import gateway as g

    async with rig(tmp_path, [reply("noted")], follow_idle_secs=0.2) as r:
        r.fake.user_message("hi", user_id=ALICE)
        await r.fake.wait_for(_answered(ALICE, "noted"))
        assert r.channel.follower is not None
        async with asyncio.timeout(20):
            while r.channel.follower.session_ids:
                await asyncio.sleep(0.05)
        [session] = await r.core.list_sessions("alice")
        assert r.core.evict_idle(0) == 1, "no longer followed: the gateway may evict it"
        frame = g.ScheduledNotification(schedule_id="s1", message="⏰ later")
        assert await r.core.notify("alice", frame, session.session_id)
        await r.fake.wait_for(_answered(ALICE, "⏰ later"))
