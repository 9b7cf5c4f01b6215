"""Pump an SSE response into stream items through a bounded queue.

Theory of operation:

1. A reader task pulls bytes from the response, runs them through the SSE decoder and the
   provider's translator, and `put`s the items of each network chunk, as one entry, on a
   bounded `asyncio.Queue` (one queue operation per chunk, not per item). When the consumer
   is slow the queue fills and the reader stops reading, so TCP flow control pushes back on
   the server instead of memory growing (backpressure).
2. The consumer (an async generator) `get`s items and yields them. A failure in the reader
   travels through the queue as a `_Failure` and is raised in the consumer, never lost in a
   background task.
3. A 200 whose body is empty is an `EmptyStreamError` (the driver then asks again without
   streaming). A transport error or read
   timeout mid-stream ends the stream with the translator's EOF
   items, where `ConnectionLost` carries the transport's reason; a stream that ended before
   the provider's terminal event likewise ends with `ConnectionLost`. The consumer never hangs:
   every path of the reader ends with a sentinel, and reads are bounded by the read timeout.
4. Once the translator saw the terminal event the reader stops, even if the server keeps the
   connection open.
5. When the consumer stops early (break, cancel, error) the reader is cancelled and awaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import httpx

from oxydra.core.errors import EmptyStreamError, ProviderError, ProviderProtocolError, WireError
from oxydra.core.log import get_logger
from oxydra.core.stream import ConnectionLost, StreamItem
from oxydra.providers._http import describe_transport_error
from oxydra.wire import SSEDecoder, StreamTranslator

_log = get_logger(__name__)
DEFAULT_QUEUE_SIZE = 64


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class _Reader:
    def __init__(
        self,
        response: httpx.Response,
        translator: StreamTranslator,
        queue: asyncio.Queue[object],
        provider: str,
        max_event_bytes: int,
    ) -> None:
        self.response = response
        self.translator = translator
        self.queue = queue
        self.provider = provider
        self.decoder = SSEDecoder(max_event_bytes=max_event_bytes)

    async def run(self) -> None:
        try:
            await self._read()
        except httpx.HTTPError as exc:
            _log.warning(
                "stream interrupted", extra={"oxy": {"provider": self.provider, "error": repr(exc)}}
            )
            await self._emit(self.translator.on_eof(), describe_transport_error(exc))
        except WireError as exc:
            message = f"{self.provider}: unreadable stream: {exc}"
            await self.queue.put(_Failure(ProviderProtocolError(message, provider=self.provider)))
        except Exception as exc:  # any failure must reach the consumer, or it would wait forever
            await self.queue.put(_Failure(exc))
        await self.queue.put(_END)

    async def _read(self) -> None:
        received = 0
        async for chunk in self.response.aiter_bytes():
            received += len(chunk)
            batch: list[StreamItem] = []
            for event in self.decoder.feed(chunk):
                batch += self.translator.on_event(event)
                if self.translator.done:
                    break
            await self._emit(batch)
            if self.translator.done:
                return
        if not received:
            raise EmptyStreamError(
                f"{self.provider}: HTTP 200 with an empty stream", provider=self.provider
            )
        for event in self.decoder.feed_eof():
            await self._emit(self.translator.on_event(event))
            if self.translator.done:
                return
        await self._emit(self.translator.on_eof())

    async def _emit(self, items: list[StreamItem], lost_reason: str | None = None) -> None:
        """Queue the items of one network chunk as one entry (the queue bounds chunks)."""
        if lost_reason:
            items = [
                ConnectionLost(message=lost_reason) if isinstance(i, ConnectionLost) else i
                for i in items
            ]
        if items:
            await self.queue.put(items)


async def pump_sse(
    response: httpx.Response,
    translator: StreamTranslator,
    *,
    provider: str,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    max_event_bytes: int = 16 * 1024 * 1024,
) -> AsyncIterator[StreamItem]:
    """Yield the stream items of an SSE response (see the module's rules)."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_size)
    reader = _Reader(response, translator, queue, provider, max_event_bytes)
    task = asyncio.create_task(reader.run(), name=f"sse-reader-{provider}")
    try:
        while True:
            entry = await queue.get()
            if entry is _END:
                return
            if isinstance(entry, _Failure):
                raise entry.error
            for item in cast(list[StreamItem], entry):
                yield item
                if isinstance(item, ConnectionLost):
                    return
    finally:
        await _stop(task)


async def _stop(task: asyncio.Task[None]) -> None:
    if task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except ProviderError:
        pass
