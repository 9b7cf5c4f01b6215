"""Turn an SSE response into stream items, pulled as the consumer asks for them.

Theory of operation:

1. Each `anext` reads the next network chunk, runs it through the SSE decoder and the
   provider's translator, and yields that chunk's items. Nothing is read ahead of the
   consumer: when it is slow the socket's buffer fills and TCP flow control pushes back on
   the server (backpressure), with no queue or reader task in between (a task and a queue
   handoff per chunk cost more than the decoding itself).
2. A 200 whose body is empty is an `EmptyStreamError` (the driver then asks again without
   streaming). A transport error or read timeout mid-stream ends the stream with the
   translator's EOF items, where `ConnectionLost` carries the transport's reason; a stream
   that ended before the provider's terminal event likewise ends with `ConnectionLost`.
   Every read is bounded by the client's read timeout, so the consumer never hangs.
3. An unreadable stream (an event past `max_event_bytes`, bad framing) is a
   `ProviderProtocolError`.
4. Once the translator saw the terminal event the stream ends, even if the server keeps the
   connection open. What follows the terminal event (normally only the end of the chunked
   body, already in the buffer) is read for at most `FINISH_SECS` and `FINISH_BYTES`, so the
   connection goes back to the pool for the next call instead of being dropped (a new TLS
   handshake each call), and the body's iterators end instead of being finalised by the
   garbage collector (a loop wake-up and a task each).
5. When the consumer stops early (break, cancel, error, `aclose`) the body's iterator is
   closed with it; the caller's `open_stream` closes the response.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from oxydra.core.errors import EmptyStreamError, ProviderProtocolError, WireError
from oxydra.core.log import get_logger
from oxydra.core.stream import ConnectionLost, StreamItem
from oxydra.providers._h1 import HttpError
from oxydra.providers._http import Response, describe_transport_error
from oxydra.wire import SSEDecoder, SSEEvent, StreamTranslator

_log = get_logger(__name__)
FINISH_SECS = 0.05
FINISH_BYTES = 64 * 1024


async def pump_sse(
    response: Response,
    translator: StreamTranslator,
    *,
    provider: str,
    max_event_bytes: int = 16 * 1024 * 1024,
) -> AsyncIterator[StreamItem]:
    """Yield the stream items of an SSE response (see the module's rules)."""
    decoder = SSEDecoder(max_event_bytes=max_event_bytes)
    encoding = response.headers.get("content-encoding", "").strip().lower()
    # Without a content encoding the raw body is the body: one generator and decoder less
    # per network chunk.
    chunks = response.aiter_raw() if encoding in ("", "identity") else response.aiter_bytes()
    received = 0
    try:
        while not translator.done:
            try:
                chunk = await anext(chunks, None)
                if chunk is None:
                    if not received:
                        raise EmptyStreamError(
                            f"{provider}: HTTP 200 with an empty stream", provider=provider
                        )
                    batch = _translate(decoder.feed_eof(), translator)
                    if not translator.done:
                        batch += translator.on_eof()
                else:
                    received += len(chunk)
                    events = decoder.feed(chunk)
                    if len(events) == 1:  # the usual chunk: one event
                        batch = translator.on_event(events[0])
                    else:
                        batch = _translate(events, translator)
            except HttpError as exc:
                _log.warning(
                    "stream interrupted", extra={"oxy": {"provider": provider, "error": repr(exc)}}
                )
                batch = _lost(translator.on_eof(), describe_transport_error(exc))
                chunk = None
            except WireError as exc:
                message = f"{provider}: unreadable stream: {exc}"
                raise ProviderProtocolError(message, provider=provider) from exc
            for item in batch:
                yield item
                if isinstance(item, ConnectionLost):
                    return
            if chunk is None:
                return
        await _finish_body(chunks)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]  # an async generator


async def _finish_body(chunks: AsyncIterator[bytes]) -> None:
    """Read the rest of a body whose terminal event came (rule 4); a server that sends more
    or keeps the body open is left to the caller's close."""
    extra = 0
    with contextlib.suppress(HttpError, TimeoutError):
        async with asyncio.timeout(FINISH_SECS):
            async for chunk in chunks:
                extra += len(chunk)
                if extra > FINISH_BYTES:
                    return


def _translate(events: list[SSEEvent], translator: StreamTranslator) -> list[StreamItem]:
    """The items of one chunk's events, stopping at the provider's terminal event."""
    batch: list[StreamItem] = []
    for event in events:
        batch += translator.on_event(event)
        if translator.done:
            break
    return batch


def _lost(items: list[StreamItem], reason: str) -> list[StreamItem]:
    """The translator's EOF items, with the transport's reason on `ConnectionLost`."""
    return [ConnectionLost(message=reason) if isinstance(i, ConnectionLost) else i for i in items]
