"""The Telegram channel against a fake Bot API at the wire, with a real gateway core."""

from __future__ import annotations

import json
from pathlib import Path

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
            r.fake.fail("editMessageText", 400, "can't parse entities: unsupported start tag")
            r.fake.user_message("hi", user_id=ALICE)
            await r.fake.wait_for(_answered(ALICE, "see *this*"))
            assert r.fake.sent[ALICE][0].parse_mode is None


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
