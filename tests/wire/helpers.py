"""Shared helpers for wire tests: run SSE bytes through the decoder and a translator."""

from __future__ import annotations

from pathlib import Path

from oxydra.core.stream import StreamItem
from oxydra.wire import SSEDecoder, StreamTranslator
from oxydra.wire.sse import SSEEvent


def translate(translator: StreamTranslator, chunks: list[bytes]) -> list[StreamItem]:
    """Decode `chunks` and translate every event; EOF items included."""
    decoder = SSEDecoder()
    items: list[StreamItem] = []
    for chunk in chunks:
        for event in decoder.feed(chunk):
            items += translator.on_event(event)
    for event in decoder.feed_eof():
        items += translator.on_event(event)
    return items + translator.on_eof()


def event(data: str, name: str = "message") -> SSEEvent:
    """An SSE event."""
    return SSEEvent(event=name, data=data)


DATA = Path(__file__).resolve().parent.parent / "data"


def golden_events(name: str) -> list[bytes]:
    """A captured stream from `tests/data`, split into its SSE events."""
    raw = (DATA / name).read_bytes()
    return [part + b"\n\n" for part in raw.split(b"\n\n") if part]
