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
   connection open.
5. When the consumer stops early (break, cancel, error, `aclose`) the body's iterator is
   closed with it; the caller's `open_stream` closes the response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from oxydra._lazy import LazyModule
from oxydra.core.errors import EmptyStreamError, ProviderProtocolError, WireError
from oxydra.core.log import get_logger
from oxydra.core.stream import ConnectionLost, StreamItem
from oxydra.providers._http import describe_transport_error
from oxydra.wire import SSEDecoder, SSEEvent, StreamTranslator

if TYPE_CHECKING:
    import httpx
else:
    httpx = LazyModule("httpx")  # loaded by the first request, not by an idle server

_log = get_logger(__name__)


async def pump_sse(
    response: httpx.Response,
    translator: StreamTranslator,
    *,
    provider: str,
    max_event_bytes: int = 16 * 1024 * 1024,
) -> AsyncIterator[StreamItem]:
    """Yield the stream items of an SSE response (see the module's rules)."""
    decoder = SSEDecoder(max_event_bytes=max_event_bytes)
    chunks = response.aiter_bytes()
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
                    batch = _translate(decoder.feed(chunk), translator)
            except httpx.HTTPError as exc:
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
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]  # an async generator


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
