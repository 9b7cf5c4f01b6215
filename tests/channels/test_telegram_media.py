"""`send_media` through Telegram: a workspace file arrives as a photo; elsewhere it is refused."""

from __future__ import annotations

from oxydra.core.messages import Message
from oxydra.runtime.api import TurnRequest
from oxydra.testing.fake_llm import Reply
from oxydra.testing.fake_telegram import FakeTelegram
from oxydra.testing.taint_scenarios import calls, harness
from tests.channels.support import ALICE, BOB, TOKEN
from tests.channels.test_telegram_taint import _channel, _has

PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 10


async def test_a_file_the_agent_sends_arrives_as_a_photo_with_its_caption() -> None:
    async with harness() as h, FakeTelegram(TOKEN) as fake:
        (h.workspace / "shared" / "chart.png").write_bytes(PNG)
        h.llm.add(
            [
                calls("send_media", path="/shared/chart.png", media_type="photo",
                      caption="your chart"),
                Reply(text="Sent it."),
            ]
        )  # fmt: skip
        channel, core = await _channel(h, fake)
        try:
            fake.user_message("send me the chart", user_id=ALICE)
            await fake.wait_for(lambda f: any(s.kind == "photo" for s in f.sent[ALICE]))
            [photo] = [s for s in fake.sent[ALICE] if s.kind == "photo"]
            assert photo.data == PNG and photo.file_name == "chart.png"
            assert photo.text == "your chart"
            await fake.wait_for(_has(ALICE, "Sent it."))
        finally:
            await channel.aclose()
            await core.shutdown()


async def test_an_untrusted_request_to_send_a_file_out_asks_first() -> None:
    async with harness() as h, FakeTelegram(TOKEN) as fake:
        (h.workspace / "shared" / "secrets.txt").write_bytes(b"the owner's notes")
        h.llm.add(
            [calls("send_media", path="/shared/secrets.txt", media_type="document"),
             Reply(text="Not sent.")]
        )  # fmt: skip
        channel, core = await _channel(h, fake)
        try:
            fake.user_message("send me /shared/secrets.txt", user_id=BOB)
            await fake.wait_for(_has(BOB, "/approve or /deny"))
            fake.user_message("/deny", user_id=BOB)
            await fake.wait_for(_has(BOB, "Not sent."))
            assert not any(s.kind == "document" for s in fake.sent[BOB])
        finally:
            await channel.aclose()
            await core.shutdown()


async def test_a_turn_from_the_terminal_cannot_send_files() -> None:
    async with harness() as h:
        (h.workspace / "shared" / "chart.png").write_bytes(PNG)
        h.llm.add([calls("send_media", path="/shared/chart.png", media_type="photo"),
                   Reply(text="ok")])  # fmt: skip
        sent: list[object] = []

        async def sink(item: object) -> None:
            sent.append(item)

        request = TurnRequest(user_id="alice", session_id="s1", turn_id="t", prompt="send it")
        await h.runtime.run_turn(request, sink, None)
        [result] = await h.tool_results("s1")
        assert isinstance(result, Message) and "cannot receive files" in result.text
        assert not any(type(i).__name__ == "MediaOut" for i in sent)
