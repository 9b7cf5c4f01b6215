"""Pure text helpers: chunk windows, FTS queries, tags, media blanking, message text."""

from __future__ import annotations

import itertools
import re

import pytest

from oxydra.core import MediaPart, Message, TextPart, ToolArgumentsError, ToolCall
from oxydra.memory._text import (
    CHUNK_CHARS,
    blank_media,
    chunk_windows,
    content_hash,
    fts_query,
    message_source,
    message_text,
    normalize_tags,
    now_iso,
    query_terms,
)


class TestChunkWindows:
    def test_short_text_is_one_window(self) -> None:
        assert chunk_windows("hello world") == ["hello world"]

    def test_empty_text_has_no_window(self) -> None:
        assert chunk_windows("") == []

    @pytest.mark.parametrize("length", [641, 1000, 5000, 20_000])
    def test_windows_cover_the_text_within_size_and_overlap(self, length: int) -> None:
        words = [f"w{i:05d}" for i in range(length // 7 + 1)]
        text = " ".join(words)[:length]
        windows = chunk_windows(text)
        assert all(len(w) <= CHUNK_CHARS for w in windows)
        assert windows[0] == text[: len(windows[0])]
        assert text.endswith(windows[-1])
        for first, second in itertools.pairwise(windows):
            assert first[-40:] in text and second[:40] in first

    def test_windows_end_at_word_boundaries_when_possible(self) -> None:
        text = " ".join(["alpha"] * 400)
        for window in chunk_windows(text):
            assert set(window.split()) == {"alpha"}

    def test_unbroken_text_is_cut_at_the_size(self) -> None:
        windows = chunk_windows("x" * 1500)
        assert [len(w) for w in windows] == [640, 640, 412]

    def test_overlap_must_be_smaller_than_size(self) -> None:
        with pytest.raises(ValueError):
            chunk_windows("abc", size=10, overlap=10)


class TestFtsQuery:
    def test_words_become_an_or_of_quoted_terms(self) -> None:
        assert fts_query("window seat flights") == '"window" OR "seat" OR "flights"'

    def test_stopwords_are_dropped_when_content_words_remain(self) -> None:
        assert fts_query("what is the capital of France") == '"capital" OR "france"'

    def test_only_stopwords_are_kept_rather_than_dropped(self) -> None:
        assert fts_query("what is it") == '"what" OR "is" OR "it"'

    @pytest.mark.parametrize(
        "hostile",
        ['a" OR "b', "NEAR(a b)", "col:value", "prefix*", "-(x)", "AND OR NOT", '"""'],
    )
    def test_fts_syntax_typed_by_the_user_is_plain_words(self, hostile: str) -> None:
        query = fts_query(hostile)
        if query is None:
            return
        for term in query.split(" OR "):
            assert re.fullmatch(r'"\w+"', term), term

    def test_query_without_words_has_no_fts_query(self) -> None:
        assert fts_query("?! -- ...") is None

    def test_terms_are_deduplicated_and_capped(self) -> None:
        terms = query_terms(" ".join(f"word{i} word{i}" for i in range(50)))
        assert len(terms) == 32 and len(set(terms)) == 32

    def test_unicode_words_are_kept(self) -> None:
        assert fts_query("Müller café") == '"müller" OR "café"'


class TestTags:
    def test_tags_are_trimmed_lowercased_and_deduplicated_in_order(self) -> None:
        assert normalize_tags([" Travel ", "prefs", "travel", "", "  "]) == ("travel", "prefs")

    def test_none_means_no_tags(self) -> None:
        assert normalize_tags(None) == ()

    def test_more_than_sixteen_tags_are_refused(self) -> None:
        with pytest.raises(ToolArgumentsError, match="16"):
            normalize_tags([f"t{i}" for i in range(17)])

    def test_a_tag_longer_than_64_chars_is_refused(self) -> None:
        with pytest.raises(ToolArgumentsError, match="64"):
            normalize_tags(["x" * 65])


class TestMessages:
    def test_media_bytes_become_a_text_placeholder(self) -> None:
        message = Message(
            role="user",
            content=(
                TextPart(text="look"),
                MediaPart(mime_type="image/png", data=b"\x89PNG" * 100, file_name="cat.png"),
            ),
        )
        blanked = blank_media(message)
        assert blanked.media == ()
        assert blanked.text.startswith("look[attachment not kept: image/png, 400 bytes, cat.png]")

    def test_message_without_media_is_returned_unchanged(self) -> None:
        message = Message(role="user", content="plain")
        assert blank_media(message) is message

    def test_message_text_adds_one_line_per_tool_call_and_collapses_space(self) -> None:
        message = Message(
            role="assistant",
            content="  let me\n\n check ",
            tool_calls=(ToolCall(id="c1", name="file_read", arguments={"path": "/a"}),),
        )
        assert message_text(message) == 'let me check tool file_read arguments {"path":"/a"}'

    @pytest.mark.parametrize(
        ("message", "source"),
        [
            (Message(role="user", content="x"), "user_message"),
            (Message(role="assistant", content="x"), "assistant_message"),
            (
                Message(role="assistant", tool_calls=(ToolCall(id="c", name="t"),)),
                "assistant_tool_call",
            ),
            (Message(role="tool", content="x", tool_call_id="c"), "tool_output"),
            (Message(role="system", content="x"), "system_message"),
        ],
    )
    def test_message_source_follows_upstream_names(self, message: Message, source: str) -> None:
        assert message_source(message) == source


def test_content_hash_is_stable_hex() -> None:
    assert content_hash("abc") == content_hash("abc")
    assert len(content_hash("abc")) == 64 and content_hash("abc") != content_hash("abd")


def test_timestamps_are_iso_utc_with_milliseconds() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now_iso())
