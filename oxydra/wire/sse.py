"""Sans-I/O decoder for `text/event-stream` (Server-Sent Events).

Theory of operation (WHATWG HTML, "Parsing an event stream"):

1. Bytes are decoded with an incremental UTF-8 decoder (invalid sequences become U+FFFD), so a
   multi-byte character split across two network chunks is decoded once both halves arrived.
   A leading byte-order mark is dropped.
2. Lines end at CRLF, LF or CR, and only there: U+2028, U+2029 and U+0085 are legal inside a
   JSON string on a `data:` line, so `str.splitlines()` must never be used. A CR that ends one
   chunk and an LF that starts the next are one line ending.
3. A blank line dispatches the pending event. An event whose data buffer is empty is not
   dispatched (the event type is reset).
4. A line starting with `:` is a comment. Otherwise the field name runs to the first `:` and
   one space after it is dropped from the value; a line without `:` is a field with an empty
   value.
5. `data` values are joined with `\\n`; `event` sets the type (default `message`); `id`
   (without NUL) sets the last event id, which persists into later events; `retry` (ASCII
   digits only) sets the reconnection delay in milliseconds. Unknown fields are ignored.
6. At end of input the last line, even unterminated, is processed and a pending event is
   dispatched. The WHATWG text drops such an event; LLM servers sometimes close the stream
   without the final blank line, and losing their last event would lose the finish reason.

Fast path: a chunk fed while no line, event or character is pending, with no CR in it, has
its complete events (everything up to its last blank line) decoded in one go: each
`data:` line standing alone between blank lines is an event without any per-line work, any
other block goes through the same line rules. The rest of the chunk, if any, goes the
general way. The results are identical (tests/wire/test_sse.py compares the two).

Limits: `max_event_bytes` bounds the decoded size of one event (its data plus the pending line,
counted in code points, which never exceed the byte count), so a peer that never sends a line
ending cannot make us buffer without bound.
"""

from __future__ import annotations

import codecs
import re

import msgspec

from oxydra.core.errors import WireError

_LINE_END = re.compile(r"\r\n|\r|\n")
_DIGITS = re.compile(r"[0-9]+")
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024
_CR, _LF = ord("\r"), ord("\n")


class SSEEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One dispatched event.

    Attributes:
        event: the event type (`message` when the stream named none).
        data: the data lines joined with newlines.
        id: the last event id seen so far in the stream, if any.
        retry: the reconnection delay (ms) set by a `retry` field inside this event.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental SSE decoder: `feed(bytes) -> events`, then `feed_eof() -> events`.

    Args:
        max_event_bytes: the largest event (data plus the pending line) we accept; beyond it
            `feed` raises `WireError`.
    """

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._skip_lf = False
        self._at_start = True
        self._data: list[str] = []
        self._size = 0
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self._closed = False
        self._clean = True  # nothing pending: the fast path may take the next chunk

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Decode a chunk of bytes and return the events it completed."""
        if self._closed:
            raise WireError("SSE decoder fed after end of input")
        if self._clean and _CR not in data:  # int membership is a memchr; b"\r" a slow search
            if data[:6] == b"data: " and data.find(_LF) == len(data) - 2 == data.rfind(_LF) - 1:
                return [self._data_event(data[6:-2].decode("utf-8", "replace"))]  # the usual
            if data[-2:] == b"\n\n":
                return self._whole_events(data)
            end = data.rfind(b"\n\n") + 2
            if end > 1:
                return self._whole_events(data[:end]) + self._feed(data[end:])
        return self._feed(data)

    def _feed(self, data: bytes) -> list[SSEEvent]:
        """The general way: decode incrementally, split lines, keep what is pending."""
        events = self._feed_text(self._utf8.decode(data))
        self._clean = (
            not (
                self._pending
                or self._data
                or self._event
                or self._skip_lf
                or self._retry is not None
            )
            and not self._utf8.getstate()[0]
        )
        return events

    def _whole_events(self, data: bytes) -> list[SSEEvent]:
        """The events of `data`, which ends with a blank line and has no CR (fast path).

        The incremental decoder holds no bytes (the state is clean) and `data` ends with a
        line feed, so decoding it alone gives the same text.
        """
        text = data.decode("utf-8", "replace")
        if self._at_start:
            self._at_start = False
            if text[0] == "\ufeff":
                text = text[1:]
        body = text[:-2]
        if body[:5] == "data:" and "\n" not in body:  # one event of one line: the usual chunk
            return [self._data_line(body)]
        events: list[SSEEvent] = []
        for block in body.split("\n\n"):
            if block[:5] == "data:" and "\n" not in block:
                events.append(self._data_line(block))
            else:
                for line in block.split("\n"):
                    self._process_line(line, events)
                self._dispatch(events)
        return events

    def _data_line(self, line: str) -> SSEEvent:
        """The event of a lone `data:` line between blank lines."""
        return self._data_event(line[6:] if line[5:6] == " " else line[5:])

    def _data_event(self, value: str) -> SSEEvent:
        """The event of one data value (the stream's state is clean)."""
        self._at_start = False
        if len(value) >= self._max:
            raise WireError(f"SSE event larger than {self._max} bytes")
        return SSEEvent(data=value, id=self._last_id)

    def feed_eof(self) -> list[SSEEvent]:
        """Signal end of input: process the unterminated last line and flush the last event."""
        if self._closed:
            return []
        events = self._feed_text(self._utf8.decode(b"", final=True))
        self._closed = True
        if self._pending:
            line, self._pending = self._pending, ""
            self._process_line(line, events)
        self._dispatch(events)
        return events

    def _feed_text(self, text: str) -> list[SSEEvent]:
        if self._at_start and text:
            self._at_start = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        events: list[SSEEvent] = []
        if not text:
            return events
        lines = _LINE_END.split(self._pending + text)
        self._pending = lines.pop()
        self._skip_lf = not self._pending and text[-1] == "\r"
        for line in lines:
            self._process_line(line, events)
        if len(self._pending) + self._size > self._max:
            raise WireError(f"SSE event larger than {self._max} bytes without a line ending")
        return events

    def _process_line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._size += len(value) + 1
            if self._size > self._max:
                raise WireError(f"SSE event larger than {self._max} bytes")
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._last_id = value
        elif name == "retry" and _DIGITS.fullmatch(value):
            self._retry = int(value)

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            events.append(
                SSEEvent(
                    event=self._event or "message",
                    data="\n".join(self._data),
                    id=self._last_id,
                    retry=self._retry,
                )
            )
        self._data = []
        self._size = 0
        self._event = ""
        self._retry = None
