"""Telegram's wire: API envelopes, updates, chat contexts, commands, Markdown and splitting."""

from __future__ import annotations

import time

import msgspec
import pytest

from oxydra.core.errors import WireError
from oxydra.wire.telegram import (
    ChatContext,
    Command,
    TelegramApiError,
    TgChat,
    TgMessage,
    decode_result,
    decode_updates,
    media_of,
    parse_command,
    parse_context,
)
from oxydra.wire.telegram_format import render_html, split_markdown, split_plain


class TestEnvelope:
    def test_a_429_carries_retry_after(self) -> None:
        body = (
            b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7",'
            b'"parameters":{"retry_after":7}}'
        )
        with pytest.raises(TelegramApiError) as caught:
            decode_result(body, 429)
        assert caught.value.retry_after == 7 and caught.value.retryable

    @pytest.mark.parametrize(
        ("body", "status", "retryable"),
        [
            (b'{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}', 400,
             False),
            (b"<html>502 Bad Gateway</html>", 502, True),
            (b"", 200, True),
        ],
    )  # fmt: skip
    def test_errors_say_whether_they_may_pass(
        self, body: bytes, status: int, retryable: bool
    ) -> None:
        with pytest.raises(TelegramApiError) as caught:
            decode_result(body, status)
        assert caught.value.retryable is retryable

    def test_descriptions_match_whatever_the_case(self) -> None:
        error = TelegramApiError("Bad Request: Message is not modified", error_code=400)
        assert error.says("message is not modified")


class TestUpdates:
    def test_a_malformed_update_is_reported_by_id_and_the_rest_decoded(self) -> None:
        raw = msgspec.Raw(
            b'[{"update_id":1,"message":{"message_id":"x","chat":{}}},'
            b'{"update_id":2,"message":{"message_id":5,"chat":{"id":9},"text":"hi",'
            b'"from":{"id":9,"first_name":"a"},"brand_new_field":1}},{"no_id":true}]'
        )
        good, bad = decode_updates(raw)
        assert [u.update_id for u in good] == [2] and good[0].message is not None
        assert good[0].message.from_ is not None and good[0].message.from_.id == 9
        assert [b[0] for b in bad] == [1]

    def test_the_largest_photo_and_other_files_are_found(self) -> None:
        message = msgspec.convert(
            {
                "message_id": 1,
                "chat": {"id": 1},
                "photo": [{"file_id": "s", "file_size": 10}, {"file_id": "l", "file_size": 99}],
                "document": {"file_id": "d", "mime_type": "application/pdf"},
            },
            TgMessage,
        )
        assert [(m.file_id, m.mime_type) for m in media_of(message)] == [
            ("l", "image/jpeg"),
            ("d", "application/pdf"),
        ]


class TestContext:
    @pytest.mark.parametrize(
        ("thread", "topic", "key"),
        [(None, False, "-100"), (7, True, "-100:7"), (7, False, "-100"), (1, True, "-100")],
    )
    def test_topics_map_as_upstream(self, thread: int | None, topic: bool, key: str) -> None:
        message = TgMessage(
            message_id=1,
            chat=TgChat(id=-100, type="supergroup", is_forum=True),
            message_thread_id=thread,
            is_topic_message=topic,
        )
        context = ChatContext.of(message)
        assert context.key == key and parse_context(key) == context

    @pytest.mark.parametrize("bad", ["", "x", "1:y", "1:2:3"])
    def test_a_bad_context_key_is_a_wire_error(self, bad: str) -> None:
        with pytest.raises(WireError):
            parse_context(bad)


class TestCommands:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("/new work stuff", Command(name="new", argument="work stuff")),
            ("/STATUS", Command(name="status")),
            ("/switch@oxy_bot 0192", Command(name="switch", argument="0192")),
            ("/switch@other_bot 0192", None),
            ("/weather today", None),
            ("hello /new", None),
        ],
    )
    def test_known_commands_only(self, text: str, expected: Command | None) -> None:
        assert parse_command(text, "oxy_bot") == expected


class TestMarkdown:
    @pytest.mark.parametrize(
        ("markdown", "html"),
        [
            ("**bold** and *it* and _it_", "<b>bold</b> and <i>it</i> and <i>it</i>"),
            ("a <service> & b", "a &lt;service&gt; &amp; b"),
            ("snake_case_name stays", "snake_case_name stays"),
            ("`x < 1` code", "<code>x &lt; 1</code> code"),
            ("[docs](https://x.test/a?b=1&c=2)", '<a href="https://x.test/a?b=1&amp;c=2">docs</a>'),
            ("[bad](javascript:alert(1))", "[bad](javascript:alert(1))"),
            ("# Title", "<b>Title</b>"),
            (
                "```python\nif a<b:\n```",
                '<pre><code class="language-python">if a&lt;b:</code></pre>',
            ),
            ("```\nunclosed", "<pre><code>unclosed</code></pre>"),
            ("* not a list star", "* not a list star"),
            ("2 * 3 * 4", "2 * 3 * 4"),
            ("~~gone~~", "<s>gone</s>"),
        ],
    )
    def test_render(self, markdown: str, html: str) -> None:
        assert render_html(markdown) == html

    def test_rendering_hostile_input_is_fast(self) -> None:
        started = time.perf_counter()
        render_html("[" * 4000 + "*_`" * 1000)
        assert time.perf_counter() - started < 5  # bounded: a piece is at most 4096 chars

    def test_split_prefers_paragraphs_then_lines_then_words(self) -> None:
        text = "a" * 50 + "\n\n" + "b" * 50 + "\n" + "c" * 50 + " " + "d" * 50
        assert split_plain(text, 60) == ["a" * 50, "b" * 50, "c" * 50, "d" * 50]

    def test_a_split_inside_a_code_fence_closes_and_reopens_it(self) -> None:
        code = "```python\n" + "\n".join(f"line_{i} = {i}" for i in range(400)) + "\n```"
        pieces = split_markdown(code, 1000)
        assert len(pieces) > 3
        for piece in pieces:
            assert len(piece.html) <= 1000 and piece.html.count("<pre>") == 1
            assert piece.plain.startswith("```python") and piece.plain.endswith("```")

    def test_escaping_growth_still_fits(self) -> None:
        pieces = split_markdown("<&>" * 3000, 4096)
        assert all(len(p.html) <= 4096 for p in pieces)
        assert "".join(p.plain for p in pieces).replace("\n", "") == "<&>" * 3000
