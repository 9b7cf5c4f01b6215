"""What happens after a stream's terminal event: the connection is kept for the next call, and
a server that keeps the body open (or sends more) cannot hold the stream.

The fake LLM closes every connection (`Connection: close`), so these tests run a small
keep-alive HTTP/1.1 server of their own on loopback.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import pytest

from oxydra.providers import WireProvider
from tests.providers._loopback import Server, read_request
from tests.providers.conftest import ProviderFactory, context

CHUNK = (
    'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
)
STOP = 'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
DONE = "data: [DONE]\n\n"


def _chunk(text: str) -> bytes:
    data = text.encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class KeepAlive(Server):
    """Answers every request on a connection with an SSE body; counts connections.

    `after` is written after `[DONE]`: `end` closes the body properly, `hang` leaves it
    open, `flood` keeps sending events. `gzip` sends the body gzip-encoded, cut in two.
    """

    def __init__(self, after: str = "end", *, gzip: bool = False) -> None:
        super().__init__(self._answer)
        self.after = after
        self.gzip = gzip

    @property
    def base_url(self) -> str:
        return self.url

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            self.requests.append(await read_request(reader))
            encoding = b"content-encoding: gzip\r\n" if self.gzip else b""
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                + encoding
                + b"transfer-encoding: chunked\r\n\r\n"
            )
            if self.gzip:
                body = gzip.compress((CHUNK + STOP + DONE).encode())
                half = len(body) // 2
                for part in (body[:half], body[half:]):
                    writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            else:
                for text in (CHUNK, STOP, DONE):
                    writer.write(_chunk(text))
            await writer.drain()
            if self.after == "hang":
                await asyncio.Event().wait()
            while self.after == "flood":
                writer.write(_chunk(CHUNK))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()


@pytest.fixture
async def keep_alive() -> AsyncIterator[KeepAlive]:
    async with KeepAlive() as server:
        yield server


async def _text(provider: WireProvider) -> str:
    items = [item async for item in provider.stream(context())]
    return "".join(getattr(item, "text", "") for item in items)


async def test_the_connection_is_reused_for_the_next_call(
    keep_alive: KeepAlive, make_provider: ProviderFactory
) -> None:
    provider = make_provider("openai", keep_alive.base_url)
    for _ in range(3):
        assert await _text(provider) == "hi"
    assert (len(keep_alive.requests), keep_alive.connections) == (3, 1)


@pytest.mark.parametrize("after", ["hang", "flood"])
async def test_a_body_left_open_after_done_does_not_hold_the_stream(
    after: str, make_provider: ProviderFactory
) -> None:
    async with KeepAlive(after=after) as server:
        provider = make_provider("openai", server.base_url)
        for _ in range(2):  # the spoiled connection is dropped, a new one is opened
            assert await asyncio.wait_for(_text(provider), 10) == "hi"
        assert (len(server.requests), server.connections) == (2, 2)


async def test_a_gzip_encoded_stream_is_decoded(make_provider: ProviderFactory) -> None:
    async with KeepAlive(gzip=True) as server:
        provider = make_provider("openai", server.base_url)
        assert await asyncio.wait_for(_text(provider), 10) == "hi"
