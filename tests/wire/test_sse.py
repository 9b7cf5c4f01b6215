"""SSE decoder: WHATWG line and field rules, and the same events however the bytes are split."""

from __future__ import annotations

import pytest

from oxydra.core.errors import WireError
from oxydra.wire.sse import SSEDecoder, SSEEvent

GOLDEN = (
    "\ufeff: a comment\r\n"
    "event: greeting\r\n"
    "id: 7\r\n"
    "retry: 1500\r\n"
    "data: héllo 🌍\r\n"
    "data:second line\r\n"
    "\r\n"
    'data: {"text": "a\u2028b\u2029c\u0085d"}\r'
    "\r"
    "data\n"
    "\n"
    "event: ignored-without-data\n"
    "\n"
    "unknown: field\n"
    "id: bad\x00id\n"
    "retry: 12x\n"
    "data: last without blank line"
).encode()

GOLDEN_EVENTS = [
    SSEEvent(event="greeting", data="héllo 🌍\nsecond line", id="7", retry=1500),
    SSEEvent(data='{"text": "a\u2028b\u2029c\u0085d"}', id="7"),
    SSEEvent(data="", id="7"),
    SSEEvent(data="last without blank line", id="7"),
]


def decode_all(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.feed_eof()


class TestChunkBoundaries:
    def test_whole_input_gives_the_golden_events(self) -> None:
        assert decode_all([GOLDEN]) == GOLDEN_EVENTS

    @pytest.mark.parametrize("cut", range(1, len(GOLDEN)))
    def test_any_split_point_gives_the_same_events(self, cut: int) -> None:
        assert decode_all([GOLDEN[:cut], GOLDEN[cut:]]) == GOLDEN_EVENTS

    def test_byte_by_byte_gives_the_same_events(self) -> None:
        assert decode_all([bytes([b]) for b in GOLDEN]) == GOLDEN_EVENTS

    def test_empty_chunks_change_nothing(self) -> None:
        chunks = [b"", GOLDEN[:10], b"", GOLDEN[10:], b""]
        assert decode_all(chunks) == GOLDEN_EVENTS


class TestLineEndings:
    @pytest.mark.parametrize("ending", ["\n", "\r", "\r\n"])
    def test_each_line_ending_separates_events(self, ending: str) -> None:
        text = f"data: a{ending}{ending}data: b{ending}{ending}"
        assert [e.data for e in decode_all([text.encode()])] == ["a", "b"]

    def test_cr_at_chunk_end_and_lf_in_next_chunk_are_one_line_ending(self) -> None:
        decoder = SSEDecoder()
        assert decoder.feed(b"data: a\r") == []
        assert decoder.feed(b"\ndata: b\r\n\r\n") == [SSEEvent(data="a\nb")]

    def test_unicode_line_separators_do_not_end_a_line(self) -> None:
        data = "x\u2028y\u2029z\u0085w\x0bv\x0cu"
        assert decode_all([f"data: {data}\n\n".encode()]) == [SSEEvent(data=data)]


class TestFields:
    def test_multiple_data_lines_are_joined_with_newlines(self) -> None:
        assert decode_all([b"data: a\ndata: b\ndata:c\n\n"]) == [SSEEvent(data="a\nb\nc")]

    def test_only_one_leading_space_is_stripped(self) -> None:
        assert decode_all([b"data:  two spaces\n\n"]) == [SSEEvent(data=" two spaces")]

    def test_comment_lines_are_ignored(self) -> None:
        assert decode_all([b": keep-alive\n\n: again\ndata: x\n\n"]) == [SSEEvent(data="x")]

    def test_event_type_resets_after_dispatch(self) -> None:
        events = decode_all([b"event: a\ndata: 1\n\ndata: 2\n\n"])
        assert [e.event for e in events] == ["a", "message"]

    def test_last_event_id_persists_into_later_events(self) -> None:
        events = decode_all([b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"])
        assert [e.id for e in events] == ["1", "1", ""]

    def test_invalid_utf8_becomes_replacement_characters(self) -> None:
        assert decode_all([b"data: \xff\xfe ok\n\n"]) == [SSEEvent(data="\ufffd\ufffd ok")]

    def test_utf8_character_split_across_chunks_is_decoded_once_whole(self) -> None:
        encoded = "data: 🌍\n\n".encode()
        assert decode_all([encoded[:8], encoded[8:]]) == [SSEEvent(data="🌍")]


class TestEndOfInput:
    def test_pending_event_without_blank_line_is_dispatched_at_eof(self) -> None:
        decoder = SSEDecoder()
        assert decoder.feed(b"event: done\ndata: {}\n") == []
        assert decoder.feed_eof() == [SSEEvent(event="done", data="{}")]

    def test_feed_after_eof_is_an_error(self) -> None:
        decoder = SSEDecoder()
        decoder.feed_eof()
        with pytest.raises(WireError):
            decoder.feed(b"data: x\n\n")

    def test_second_eof_yields_nothing(self) -> None:
        decoder = SSEDecoder()
        decoder.feed(b"data: x")
        assert decoder.feed_eof() == [SSEEvent(data="x")]
        assert decoder.feed_eof() == []


class TestLimits:
    def test_a_line_longer_than_the_limit_is_refused(self) -> None:
        decoder = SSEDecoder(max_event_bytes=100)
        with pytest.raises(WireError, match="larger than 100"):
            decoder.feed(b"data: " + b"x" * 200)

    def test_many_data_lines_past_the_limit_are_refused(self) -> None:
        decoder = SSEDecoder(max_event_bytes=100)
        with pytest.raises(WireError):
            decoder.feed(b"data: 0123456789\n" * 20)

    def test_events_under_the_limit_pass_one_after_another(self) -> None:
        decoder = SSEDecoder(max_event_bytes=100)
        events = decoder.feed(b"data: 0123456789\n\n" * 50)
        assert len(events) == 50
