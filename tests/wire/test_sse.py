"""SSE decoder: WHATWG line and field rules, and the same events however the bytes are split."""

from __future__ import annotations

import random
import re

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


def byte_by_byte(stream: bytes) -> list[SSEEvent]:
    """The reference: one byte per chunk never takes the fast path."""
    return decode_all([stream[i : i + 1] for i in range(len(stream))])


class TestFastPath:
    """Chunks that end on a blank line are decoded whole; the events are the same."""

    STREAMS = [
        b'data: {"a": 1}\n\ndata: {"b": 2}\n\n',
        b": comment\n\ndata: x\n\n: another\ndata: y\n\n",
        b"data: one\ndata: two\n\ndata:three\n\n",
        b"event: ping\ndata: p\n\ndata: after\n\n",
        b"id: 9\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
        b"retry: 300\ndata: r\n\ndata: s\n\n",
        b"unknown: field\ndata: u\n\ndata\n\ndata:\n\n",
        b"\xef\xbb\xbfdata: bom\n\n",
        b"data: a\n\n\xef\xbb\xbfdata: a BOM past the start is no BOM\n\n",
        b"data: a\nb\n\ndata: \n\n",
        b"data: a\n\n\n\n\ndata: b\n\n\n",
        b"event: no-data\n\ndata: z\n\n",
        "data: Grüße 🌍 \u2028\u0085\n\n".encode(),
        b"data: \xff\xfe bad utf-8\n\n",
        b"data:  two spaces\n\n",
    ]

    @pytest.mark.parametrize("stream", STREAMS)
    def test_whole_stream_in_one_chunk(self, stream: bytes) -> None:
        assert decode_all([stream]) == byte_by_byte(stream)

    @pytest.mark.parametrize("stream", STREAMS)
    def test_event_aligned_chunks(self, stream: bytes) -> None:
        chunks = re.findall(rb".*?\n\n|.+", stream, re.DOTALL)  # cut after each blank line
        assert b"".join(chunks) == stream
        assert decode_all(chunks) == byte_by_byte(stream)

    @pytest.mark.parametrize("stream", STREAMS)
    def test_every_split_point(self, stream: bytes) -> None:
        expected = byte_by_byte(stream)
        for cut in range(1, len(stream)):
            assert decode_all([stream[:cut], stream[cut:]]) == expected, cut

    def test_a_whole_chunk_after_a_partial_utf8_character(self) -> None:
        # the first chunk leaves half of 🌍 in the decoder: the next must not bypass it
        decoder = SSEDecoder()
        assert decoder.feed(b"data: \xf0\x9f") == []
        assert decoder.feed(b"\x8c\x8d\n\n") == [SSEEvent(data="🌍")]

    @pytest.mark.parametrize(
        ("first", "second", "events"),
        [
            (b"event: typed\n", b"data: x\n\n", [SSEEvent(event="typed", data="x")]),
            (b"retry: 7\n", b"data: x\n\n", [SSEEvent(data="x", retry=7)]),
            (b"data: before\n", b"data: x\n\n", [SSEEvent(data="before\nx")]),
            (b"data: before\r", b"\ndata: x\n\n", [SSEEvent(data="before\nx")]),
            (b"da", b"ta: x\n\n", [SSEEvent(data="x")]),
            (b"data: a\n\n", b"data: x\n\n", [SSEEvent(data="a"), SSEEvent(data="x")]),
        ],
    )
    def test_a_whole_chunk_after_pending_state(
        self, first: bytes, second: bytes, events: list[SSEEvent]
    ) -> None:
        decoder = SSEDecoder()
        assert decoder.feed(first) + decoder.feed(second) + decoder.feed_eof() == events

    def test_a_tail_after_whole_events_stays_pending(self) -> None:
        decoder = SSEDecoder()
        assert decoder.feed(b"data: 1\n\ndata: 2\n\ndata: 3") == [
            SSEEvent(data="1"),
            SSEEvent(data="2"),
        ]
        assert decoder.feed(b"\n\n") == [SSEEvent(data="3")]

    def test_crlf_chunks_give_the_same_events(self) -> None:
        stream = b"data: a\r\n\r\nid: 2\r\ndata: b\r\n\r\n"
        assert decode_all([stream]) == [SSEEvent(data="a"), SSEEvent(data="b", id="2")]
        assert decode_all([stream]) == byte_by_byte(stream)

    def test_the_limit_holds_on_the_fast_path(self) -> None:
        decoder = SSEDecoder(max_event_bytes=100)
        assert decoder.feed(b"data: " + b"x" * 99 + b"\n\n") == [SSEEvent(data="x" * 99)]
        with pytest.raises(WireError, match="larger than 100"):
            decoder.feed(b"data: " + b"x" * 100 + b"\n\n")
        with pytest.raises(WireError, match="larger than 100"):
            SSEDecoder(max_event_bytes=100).feed(b"data: a\n\ndata: " + b"y" * 150 + b"\n\n")

    @pytest.mark.parametrize("seed", range(20))
    def test_random_streams_and_cuts_match_the_reference(self, seed: int) -> None:
        rng = random.Random(seed)
        lines = [
            b"data: {}",
            b'data: {"k": "v\xc3\xa9"}',
            b"data:",
            b"data",
            b": c",
            b"event: e",
            b"id: 4",
            b"retry: 10",
            b"retry: x",
            b"other: o",
            b"",
            b"\xf0\x9f\x8c\x8d",
        ]
        stream = b"".join(rng.choice(lines) + b"\n" for _ in range(60)) + b"\n"
        cuts = sorted(rng.sample(range(1, len(stream)), 8))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert decode_all(chunks) == byte_by_byte(stream)
