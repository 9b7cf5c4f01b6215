"""`_h1` against servers that are hostile or merely broken, all on real loopback sockets.

Each test states what the server does and what the client must do about it: bad framing is a
clear `HttpError` and the connection is never reused; a server that says it closes, or whose
framing cannot be trusted, never gets its connection back in the pool; nothing the server says
makes the client go elsewhere (redirects), remember anything (cookies), speak in clear text
(https), wait forever (1xx floods) or hold more than a bounded amount in memory.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import tracemalloc
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path

import pytest

from oxydra.core.errors import ProviderHTTPError, ProviderProtocolError
from oxydra.providers import _h1
from oxydra.providers._h1 import H1Client, HttpError, HttpTimeout, HttpUrlError, Target
from oxydra.providers._http import MAX_ERROR_BODY, read_limited
from oxydra.providers._httpx import HttpxTransport
from tests.providers._loopback import Handler, Server, ok, read_all, read_request
from tests.providers.conftest import ProviderFactory, context


@pytest.fixture
async def client() -> AsyncIterator[H1Client]:
    made = H1Client(timeout=5.0, connect_timeout=5.0)
    yield made
    await made.aclose()


async def _get(client: H1Client, url: str, **kw: object) -> tuple[int, bytes]:
    response = await client.send("GET", url, {}, **kw)  # type: ignore[arg-type]
    try:
        return response.status_code, await read_all(response)
    finally:
        await response.aclose()


def _idle(client: H1Client, server: Server) -> int:
    """How many connections to `server` wait in the client's pool."""
    return len(client._idle.get(Target(server.url).origin, []))


def _answer(raw: bytes, *, then_close: bool = False) -> Handler:
    """Answer every request on a connection with `raw`; keep the connection open unless told."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(raw)
            await writer.drain()
            if then_close:
                return

    return handler


# -- chunked framing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"-5\r\nhello\r\n0\r\n\r\n", id="negative"),
        pytest.param(b"zz\r\nhello\r\n0\r\n\r\n", id="not-hex"),
        pytest.param(b"0x5\r\nhello\r\n0\r\n\r\n", id="0x-prefix"),
        pytest.param(b"1" + b"0" * 20 + b"\r\nhello\r\n0\r\n\r\n", id="hex-overflow"),
        pytest.param(b"5" * 100_000, id="endless-size-line"),
        pytest.param(b"5\r\nhelloXX0\r\n\r\n", id="no-crlf-after-data"),
        pytest.param(b"1;" + b"e" * 100_000 + b"\r\na\r\n0\r\n\r\n", id="one-huge-extension"),
    ],
)
async def test_chunk_size_lines_that_are_not_sizes_are_refused(
    body: bytes, client: H1Client
) -> None:
    """The body is refused, the connection closed (never pooled) and the next request goes
    out on a new one."""
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"

    async with Server(_answer(head + body)) as server:
        response = await client.send("GET", server.url, {})
        with pytest.raises(HttpError, match="malformed response body"):
            await read_all(response)
        with pytest.raises(HttpError):  # the failed state stays failed
            await read_all(response)
        await response.aclose()
        assert _idle(client, server) == 0
        await server.wait_closed(1)
        server.handler = _answer(ok(b"next"))
        assert await _get(client, server.url) == (200, b"next")
    assert server.connections == 2


async def test_the_largest_chunk_size_is_only_a_promise(client: H1Client) -> None:
    """20 hex digits (2**80 - 1) parse; the body is what arrives, and its cut is an error."""
    raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"F" * 20 + b"\r\nhello"

    async with Server(_answer(raw, then_close=True)) as server:
        response = await client.send("GET", server.url, {})
        received = []
        with pytest.raises(HttpError, match="incomplete chunked read"):
            async for chunk in response.aiter_raw():
                received.append(chunk)
        await response.aclose()
    assert b"".join(received) == b"hello"


async def test_a_bare_lf_does_not_end_a_chunk_line(client: H1Client) -> None:
    """Lenient line ends are how bodies get smuggled (h11 0.16 fixed one such bug): `5\\n`
    is not a size line, so nothing of this body is taken."""
    raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\nhello\n0\n\n"

    async with Server(_answer(raw, then_close=True)) as server:
        response = await client.send("GET", server.url, {})
        with pytest.raises(HttpError, match="closed"):
            async for chunk in response.aiter_raw():
                raise AssertionError(f"took {chunk!r}")
        await response.aclose()
        assert _idle(client, server) == 0


async def test_a_chunk_extension_flood_is_read_through(client: H1Client) -> None:
    """2000 one-byte chunks, each with an 8 KiB extension (16 MiB of framing for 2000 bytes):
    each line is under the limit, so the body is read, in time linear in its size."""
    chunk = b"1;" + b"name=" + b"v" * 8000 + b"\r\na\r\n"
    raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk * 2000 + b"0\r\n\r\n"

    async with Server(_answer(raw)) as server:
        assert await _get(client, server.url) == (200, b"a" * 2000)


# -- the response head ------------------------------------------------------------------------


def _head_with(lines: list[bytes]) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


@pytest.mark.parametrize("pieces", [1, 64], ids=["one-write", "in-pieces"])
async def test_a_head_past_the_limit_is_refused_however_it_arrives(
    pieces: int, client: H1Client
) -> None:
    """One header line just past `MAX_HEAD_BYTES`: refused whether it came in one read (h11
    alone would take it) or in many (h11 alone would refuse it)."""
    raw = _head_with([b"content-length: 2", b"x-pad: " + b"a" * _h1.MAX_HEAD_BYTES]) + b"ok"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        step = -(-len(raw) // pieces)
        for start in range(0, len(raw), step):
            writer.write(raw[start : start + step])
            await writer.drain()
            await asyncio.sleep(0.001 if pieces > 1 else 0)
        await reader.read()

    async with Server(handler) as server:
        with pytest.raises(HttpError, match=r"malformed response|response head"):
            await client.send("GET", server.url, {})
        assert _idle(client, server) == 0


async def test_a_head_near_the_limit_is_read(client: H1Client) -> None:
    raw = _head_with([b"content-length: 2", b"x-pad: " + b"a" * (_h1.MAX_HEAD_BYTES - 200)])

    async with Server(_answer(raw + b"ok")) as server:
        assert await _get(client, server.url) == (200, b"ok")


async def test_more_header_lines_than_sane_are_refused(client: H1Client) -> None:
    lines = [b"content-length: 2"] + [b"x-%d: v" % n for n in range(_h1.MAX_HEADER_LINES)]

    async with Server(_answer(_head_with(lines) + b"ok")) as server:
        with pytest.raises(HttpError, match=f"more than {_h1.MAX_HEADER_LINES} header lines"):
            await client.send("GET", server.url, {})
        assert _idle(client, server) == 0


async def test_repeated_header_names_are_joined_in_order(client: H1Client) -> None:
    lines = [b"content-length: 2", b"X-Multi: one", b"x-other: 1", b"x-multi: two"]

    async with Server(_answer(_head_with(lines) + b"ok")) as server:
        response = await client.send("GET", server.url, {})
        await read_all(response)
        await response.aclose()
    assert response.headers["x-multi"] == "one, two"
    assert response.headers["x-other"] == "1"


@pytest.mark.parametrize("status", [b"HTTP/1.1 200", b"HTTP/1.1 200 "], ids=["none", "empty"])
async def test_a_status_line_without_a_reason_is_fine(status: bytes, client: H1Client) -> None:
    async with Server(_answer(status + b"\r\ncontent-length: 2\r\n\r\nok")) as server:
        assert await _get(client, server.url) == (200, b"ok")
        assert _idle(client, server) == 1


# -- framing that ends the connection -------------------------------------------------------


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/1.1"])
async def test_a_body_delimited_by_the_close_is_read_and_not_pooled(
    version: bytes, client: H1Client
) -> None:
    """No content-length, no chunking: the body ends when the server closes."""
    async with Server(_answer(version + b" 200 OK\r\n\r\nuntil the end", then_close=True)) as s:
        assert await _get(client, s.url) == (200, b"until the end")
        assert _idle(client, s) == 0
        assert await _get(client, s.url) == (200, b"until the end")
    assert s.connections == 2


async def test_connection_close_is_honoured_even_when_the_server_keeps_it_open(
    client: H1Client,
) -> None:
    async with Server(_answer(ok(b"bye", "connection: close"))) as server:
        assert await _get(client, server.url) == (200, b"bye")
        assert _idle(client, server) == 0
        await server.wait_closed(1)  # the client hung up
        assert await _get(client, server.url) == (200, b"bye")
    assert server.connections == 2


@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"])
async def test_content_length_with_chunking_reads_the_chunks_and_drops_the_connection(
    version: bytes, client: H1Client
) -> None:
    """RFC 9112 6.3: Transfer-Encoding overrides Content-Length; such a response may be a
    smuggling attempt, so the connection is not used again (whatever follows the chunks
    could be read as the next response)."""
    smuggled = ok(b"smuggled")
    raw = (
        version + b" 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + smuggled
    )

    async with Server(_answer(raw)) as server:
        assert await _get(client, server.url) == (200, b"hello")
        assert _idle(client, server) == 0
        assert await _get(client, server.url) == (200, b"hello")
    assert server.connections == 2


@pytest.mark.parametrize(
    "framing",
    [
        b"content-length: 5\r\ncontent-length: 6",
        b"content-length: -5",
        b"content-length: 5x",
        b"transfer-encoding: gzip, chunked",
        b"transfer-encoding: chunked\r\ntransfer-encoding: chunked",
    ],
)
async def test_framing_headers_that_disagree_are_refused(framing: bytes, client: H1Client) -> None:
    async with Server(_answer(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n\r\nhello")) as server:
        with pytest.raises(HttpError, match="malformed response"):
            await _get(client, server.url)
        assert _idle(client, server) == 0


_INJECTED = ok(b"injected")


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        pytest.param(
            b"HTTP/1.1 204 No Content\r\ncontent-length: %d\r\n\r\n" % len(_INJECTED),
            (204, b""),
            id="204-with-a-body",
        ),
        pytest.param(
            b"HTTP/1.1 304 Not Modified\r\ncontent-length: %d\r\n\r\n" % len(_INJECTED),
            (304, b""),
            id="304-with-a-body",
        ),
        pytest.param(ok(b"short"), (200, b"short"), id="more-than-its-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            (200, b"hi"),
            id="more-after-its-chunks",
        ),
    ],
)
async def test_bytes_after_a_response_never_answer_the_next_request(
    first: bytes, expected: tuple[int, bytes], client: H1Client
) -> None:
    """A 204/304 has no body whatever its headers say, a body ends where its framing says:
    bytes past that end would be read as the answer to the next request on that connection
    (response injection), so that connection is not reused."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if server.connections == 1:
            writer.write(first + _INJECTED)
        else:
            writer.write(ok(b"real"))
        await reader.read()

    async with Server(handler) as server:
        assert await _get(client, server.url) == expected
        assert await _get(client, server.url) == (200, b"real")
    assert server.connections == 2


async def test_bytes_arriving_on_an_idle_connection_retire_it(client: H1Client) -> None:
    """Nothing may arrive between responses; what does would be parsed as the next one."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if server.connections == 1:
            writer.write(ok(b"first"))
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(ok(b"unasked"))
        else:
            writer.write(ok(b"real"))
        await reader.read()

    async with Server(handler) as server:
        assert await _get(client, server.url) == (200, b"first")
        await asyncio.sleep(0.5)  # the unasked bytes (sent after 0.05 s) are in
        assert await _get(client, server.url) == (200, b"real")
    assert server.connections == 2


# -- informational responses -------------------------------------------------------------------


async def test_1xx_responses_before_the_answer_are_skipped(client: H1Client) -> None:
    raw = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n" + ok(b"answer")
    )

    async with Server(_answer(raw)) as server:
        response = await client.send("GET", server.url, {})
        assert await read_all(response) == b"answer"
        await response.aclose()
        assert "link" not in response.headers
        assert _idle(client, server) == 1


async def test_an_endless_stream_of_1xx_responses_is_refused(client: H1Client) -> None:
    """Each 1xx is new data, so the read timeout alone would never end this."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        while True:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.001)

    async with Server(handler) as server:
        async with asyncio.timeout(20):
            with pytest.raises(HttpError, match="informational"):
                await client.send("GET", server.url, {})


async def test_an_endless_stream_of_1xx_responses_ends_the_proxy_path_too() -> None:
    """httpx (the proxy path) skips 1xx responses without end; its call is bounded whole."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        while True:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.001)

    transport = HttpxTransport(None, timeout=0.2, connect_timeout=0.2, verify=False)
    try:
        async with Server(handler) as server:
            async with asyncio.timeout(20):
                with pytest.raises(HttpTimeout, match=r"no response head in 0\.6 s"):
                    await transport.send("GET", server.url, {})
    finally:
        await transport.aclose()


async def test_an_unasked_protocol_switch_is_refused(client: H1Client) -> None:
    raw = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    async with Server(_answer(raw)) as server:
        with pytest.raises(HttpError, match="malformed response"):
            await client.send("GET", server.url, {})


# -- a server that answers early, or slowly ----------------------------------------------------


@pytest.mark.parametrize("then", ["waits", "closes"])
async def test_an_answer_before_the_body_was_read_is_returned(then: str, client: H1Client) -> None:
    """A proxy refuses a large body (413) after its head and never reads the rest: the client
    returns the 413 rather than waiting to send, or failing on the reset that follows."""
    refusal = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 9\r\nconnection: close\r\n\r\n"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(refusal + b"too large")
        await writer.drain()
        if then == "waits":
            await asyncio.sleep(30)

    async with Server(handler, rcvbuf=16 * 1024) as server:
        response = await client.send("POST", server.url, {}, b"x" * (16 * 1024 * 1024))
        assert response.status_code == 413
        assert await read_all(response) == b"too large"
        await response.aclose()
        assert _idle(client, server) == 0


async def test_a_body_that_cannot_be_sent_in_time_is_a_timeout(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(30)  # never reads the body, never answers

    async with Server(handler, rcvbuf=16 * 1024) as server:
        with pytest.raises(HttpTimeout, match=r"sending took over 0\.3 s"):
            await client.send("POST", server.url, {}, b"x" * (16 * 1024 * 1024), timeout=0.3)


async def test_a_server_trickling_one_byte_at_a_time_is_read_to_the_end(
    client: H1Client,
) -> None:
    """Every byte 10 ms apart, 0.5 s read timeout: the whole takes longer than the timeout,
    and succeeds, because the timeout bounds each read, not the response (rule 3). What
    bounds a whole call is the caller's (`ReliableProvider`'s `attempt_timeout`)."""
    raw = ok(b"slow but steady " * 4)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for byte in raw:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.01)
        await reader.read()

    async with Server(handler) as server:
        assert len(raw) * 0.01 > 0.5 * 2
        assert await _get(client, server.url, timeout=0.5) == (200, b"slow but steady " * 4)


# -- bounded reads of bodies -------------------------------------------------------------------


def _endless(status: bytes) -> Handler:
    """A chunked body of `x`s that never ends."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 " + status + b"\r\ntransfer-encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
        while True:
            writer.write(chunk)
            await writer.drain()

    return handler


async def test_an_endless_error_body_is_read_to_the_limit_when_streaming(
    make_provider: ProviderFactory,
) -> None:
    async with Server(_endless(b"500 Internal Server Error")) as server:
        provider = make_provider("openai", server.url)
        with pytest.raises(ProviderHTTPError) as caught:
            async with asyncio.timeout(20):
                async for _ in provider.stream(context()):
                    pass
    assert caught.value.status == 500
    assert len(caught.value.body) <= MAX_ERROR_BODY


async def test_an_endless_error_body_is_read_to_the_limit_without_streaming(
    make_provider: ProviderFactory,
) -> None:
    async with Server(_endless(b"503 Service Unavailable")) as server:
        provider = make_provider("openai", server.url)
        with pytest.raises(ProviderHTTPError) as caught:
            async with asyncio.timeout(20):
                await provider.complete(context())
    assert caught.value.status == 503
    assert len(caught.value.body) <= MAX_ERROR_BODY


async def test_an_endless_success_body_is_refused_past_the_limit(
    make_provider: ProviderFactory,
) -> None:
    async with Server(_endless(b"200 OK")) as server:
        provider = make_provider("openai", server.url)
        with pytest.raises(ProviderProtocolError, match="body is over"):
            async with asyncio.timeout(60):
                await provider.complete(context())


async def test_a_compressed_error_body_inflates_no_further_than_asked(client: H1Client) -> None:
    """64 MiB of zeros in ~64 KiB of gzip behind a 500: reading 64 KiB of it keeps memory
    within a few inflate steps."""
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    raw = b"HTTP/1.1 500 Oops\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(bomb)

    async with Server(_answer(raw + bomb)) as server:
        response = await client.send("GET", server.url, {})
        tracemalloc.start()
        try:
            body = await read_limited(response, MAX_ERROR_BODY)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            await response.aclose()
    assert body == b"\0" * MAX_ERROR_BODY
    assert peak < 4 * _h1.INFLATE_STEP


# -- connections: concurrency, the pool, expiry, closing ----------------------------------------


async def test_concurrent_requests_each_get_their_own_connection_and_answer(
    client: H1Client,
) -> None:
    """20 requests at once on one client: 20 connections, each answer to its own request (the
    later ones answer first), then at most `MAX_IDLE_PER_ORIGIN` kept; a second wave reuses
    those."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            number = int(request.split(b" ", 2)[1].rsplit(b"/", 1)[1])
            await asyncio.sleep((20 - number) * 0.002)
            writer.write(ok(b"%d" % number))

    async with Server(handler) as server:
        calls = [_get(client, f"{server.url}/n/{n}") for n in range(20)]
        assert await asyncio.gather(*calls) == [(200, b"%d" % n) for n in range(20)]
        assert server.connections == 20
        assert _idle(client, server) == _h1.MAX_IDLE_PER_ORIGIN
        await server.wait_closed(20 - _h1.MAX_IDLE_PER_ORIGIN)
        calls = [_get(client, f"{server.url}/n/{n}") for n in range(20)]
        assert await asyncio.gather(*calls) == [(200, b"%d" % n) for n in range(20)]
        assert server.connections == 20 + 20 - _h1.MAX_IDLE_PER_ORIGIN


async def test_an_idle_connection_past_its_keepalive_is_closed_by_the_client(
    client: H1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client hangs up an idle connection when it expires, not when next asked for one:
    an agent that sleeps for hours holds no sockets."""
    monkeypatch.setattr(_h1, "KEEPALIVE_SECS", 0.1)
    async with Server(_answer(ok(b"hi"))) as server:
        assert await _get(client, server.url) == (200, b"hi")
        await server.wait_closed(1)
        assert await _get(client, server.url) == (200, b"hi")
    assert server.connections == 2


@pytest.mark.parametrize(
    ("announced", "pooled"), [("timeout=1", False), ("max=100, timeout=2", True), ("x", True)]
)
async def test_a_keepalive_timeout_the_server_announces_is_kept_with_a_second_to_spare(
    announced: str, pooled: bool, client: H1Client
) -> None:
    async with Server(_answer(ok(b"hi", f"keep-alive: {announced}"))) as server:
        assert await _get(client, server.url) == (200, b"hi")
        assert _idle(client, server) == pooled
        if announced.endswith("timeout=2"):  # expires a second later, by the client's hand
            await server.wait_closed(1)
            assert _idle(client, server) == 0


async def test_a_post_on_a_reused_connection_that_breaks_is_not_sent_twice(
    client: H1Client,
) -> None:
    """The server took the request and dropped the connection without a word: it may have
    acted on it (an LLM call is billed), so a POST is not sent again here; whether to retry is
    the caller's policy (`ReliableProvider`, `max_attempts`). A GET is (test_h1)."""
    bodies: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        bodies.append(await read_request(reader))
        writer.write(ok(b"first"))
        await writer.drain()
        bodies.append(await read_request(reader))
        writer.transport.abort()

    async with Server(handler) as server:
        response = await client.send("POST", server.url, {}, b"{}")
        assert await read_all(response) == b"first"
        await response.aclose()
        with pytest.raises(HttpError):
            await client.send("POST", server.url, {}, b"{}")
    assert len(bodies) == 2
    assert server.connections == 1


async def test_a_response_finished_after_the_client_closed_is_not_pooled(
    client: H1Client,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nha")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"lf")
        await reader.read()

    async with Server(handler) as server:
        response = await client.send("GET", server.url, {})
        await client.aclose()
        assert await read_all(response) == b"half"
        await response.aclose()
        assert _idle(client, server) == 0
        await server.wait_closed(1)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fails the test when it leaves a socket open or a transport to the garbage collector."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("no /proc/self/fd here")
    gc.collect()
    before = _open_fds()
    yield
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaked == []
    assert _open_fds() <= before


@pytest.mark.parametrize("stall", ["tcp", "tls"])
async def test_cancelled_while_connecting_leaves_no_socket_behind(
    stall: str, no_leaks: None
) -> None:
    """`tcp`: the listener's backlog is full, so the SYN goes unanswered; `tls`: the TCP
    connection is accepted by the kernel and the TLS handshake never answered."""
    client = H1Client(timeout=5.0, connect_timeout=5.0)
    fillers: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        if stall == "tcp":
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(address)
                fillers.append(filler)
        scheme = "https" if stall == "tls" else "http"
        task = asyncio.create_task(client.send("GET", f"{scheme}://127.0.0.1:{address[1]}", {}))
        await asyncio.sleep(0.2)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for filler in fillers:
            filler.close()
    await client.aclose()
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_timed_out_connect_leaves_no_socket_behind(no_leaks: None) -> None:
    client = H1Client(timeout=5.0, connect_timeout=0.2)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        with pytest.raises(HttpTimeout, match="connecting took over"):
            await client.send("GET", f"https://127.0.0.1:{listener.getsockname()[1]}", {})
    await client.aclose()
    for _ in range(3):
        await asyncio.sleep(0)


# -- nothing the server says sends the client elsewhere, or is remembered -----------------------


async def test_a_redirect_is_returned_not_followed(make_provider: ProviderFactory) -> None:
    """A 307 would resend the POST (prompt and API key) to whatever the Location names."""

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        location = f"location: {elsewhere.url}/v1/chat/completions"
        writer.write(
            b"HTTP/1.1 307 Temporary Redirect\r\n%s\r\ncontent-length: 0\r\n\r\n"
            % (location.encode())
        )
        await reader.read()

    async with Server(_answer(ok(b"{}"))) as elsewhere, Server(redirect) as server:
        provider = make_provider("openai", server.url)
        with pytest.raises(ProviderHTTPError) as caught:
            await provider.complete(context())
    assert caught.value.status == 307
    assert elsewhere.connections == 0


async def test_cookies_are_neither_kept_nor_sent(client: H1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            server.requests.append(await read_request(reader))
            writer.write(ok(b"{}", "set-cookie: session=tracked; Path=/"))

    async with Server(handler) as server:
        for _ in range(2):
            assert await _get(client, server.url) == (200, b"{}")
        transport = HttpxTransport(None, timeout=5.0, connect_timeout=5.0, verify=False)
        try:
            for _ in range(2):
                response = await transport.send("GET", server.url, {})
                await read_all(response)
                await response.aclose()
        finally:
            await transport.aclose()
    assert len(server.requests) == 4
    assert all(b"cookie" not in request.lower() for request in server.requests)


# -- TLS ---------------------------------------------------------------------------------------


def _certificate(folder: Path, name: str, san: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    return {
        "other": _certificate(folder, "other.example", "DNS:other.example"),
        "ip": _certificate(folder, "127.0.0.1", "IP:127.0.0.1"),
    }


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Trust only the bundle the test names (`SSL_CERT_FILE`), with a fresh TLS context."""
    monkeypatch.setattr(_h1, "_TLS", [])
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    yield monkeypatch
    _h1._TLS.clear()


def _serving(cert: tuple[Path, Path]) -> ssl.SSLContext:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(*cert)
    return tls


@pytest.mark.parametrize(
    ("which", "host", "reason"),
    [("other", "127.0.0.1", "IP address mismatch"), ("ip", "localhost", "Hostname mismatch")],
)
async def test_a_trusted_certificate_for_another_name_is_refused(
    which: str,
    host: str,
    reason: str,
    certificates: dict[str, tuple[Path, Path]],
    trust: pytest.MonkeyPatch,
    client: H1Client,
) -> None:
    cert = certificates[which]
    trust.setenv("SSL_CERT_FILE", str(cert[0]))

    async with Server(_answer(ok(b"secret")), tls=_serving(cert)) as server:
        with pytest.raises(HttpError, match=f"CERTIFICATE_VERIFY_FAILED.*{reason}"):
            await client.send("GET", f"https://{host}:{server.port}/", {})
        assert server.requests == []
        # the same certificate, asked for by its own name, is fine
        if which == "ip":
            assert await _get(client, f"https://127.0.0.1:{server.port}/") == (200, b"secret")


async def test_the_ca_bundle_is_loaded_off_the_event_loop(
    certificates: dict[str, tuple[Path, Path]], trust: pytest.MonkeyPatch, client: H1Client
) -> None:
    cert = certificates["ip"]
    trust.setenv("SSL_CERT_FILE", str(cert[0]))
    threads: list[int] = []
    real = _h1._tls_context

    def spy() -> ssl.SSLContext:
        threads.append(threading.get_ident())
        return real()

    trust.setattr(_h1, "_tls_context", spy)
    async with Server(_answer(ok(b"secure")), tls=_serving(cert)) as server:
        assert await _get(client, server.url) == (200, b"secure")
    assert threads and threading.get_ident() not in threads


async def test_https_to_a_plain_server_never_speaks_clear_text(client: H1Client) -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        writer.write(ok(b"plain"))
        await writer.drain()

    async with Server(handler) as server:
        url = f"https://127.0.0.1:{server.port}/"
        with pytest.raises(HttpError, match="TLS failed"):
            await client.send("GET", url, {"authorization": "Bearer sk-SECRET"})
    assert received and received[0][:1] == b"\x16"  # a TLS handshake record
    assert all(b"SECRET" not in data and b"GET" not in data for data in received)


# -- names and URLs ----------------------------------------------------------------------------


async def test_names_are_resolved_off_the_event_loop(
    client: H1Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'localhost' and the IP literal both work, and no name lookup runs on the loop's thread
    (a slow resolver would stall every session)."""
    loop_thread = threading.get_ident()
    threads: list[int] = []
    real = socket.getaddrinfo

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    async with Server(_answer(ok(b"named"))) as server:
        assert await _get(client, f"http://localhost:{server.port}/") == (200, b"named")
        assert await _get(client, f"http://127.0.0.1:{server.port}/") == (200, b"named")
    assert threads
    assert loop_thread not in threads


def test_request_targets_are_quoted_and_ports_checked() -> None:
    assert Target("http://h/a b/é?q=x y").target == "/a%20b/%C3%A9?q=x%20y"
    assert Target("http://h/already%20quoted?a=%2F").target == "/already%20quoted?a=%2F"
    with pytest.raises(HttpUrlError, match="port"):
        Target("http://h:0/")


def _our_timers() -> list[asyncio.TimerHandle]:
    """The loop's live timers that belong to `_h1` (a connection's watchdog or expiry)."""
    loop = asyncio.get_running_loop()
    scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
    return [
        timer
        for timer in scheduled
        if not timer.cancelled()
        and type(getattr(timer._callback, "__self__", None)).__module__ == _h1.__name__  # type: ignore[attr-defined]
    ]


async def test_no_timer_outlives_its_connection(client: H1Client) -> None:
    """A pooled connection has one timer (its expiry); one in error, timed out, abandoned or
    closed with the client has none."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await read_request(reader)
            if b" /stall " in request:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf")
            elif b" /bad " in request:
                writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n")
            else:
                writer.write(ok(b"fine"))

    async with Server(handler) as server:
        for _ in range(3):
            assert await _get(client, server.url + "/ok") == (200, b"fine")
        assert len(_our_timers()) == 1
        with pytest.raises(HttpTimeout):
            await _get(client, server.url + "/stall", timeout=0.1)
        with pytest.raises(HttpError):
            await _get(client, server.url + "/bad")
        abandoned = await client.send("GET", server.url + "/stall", {})
        await abandoned.aclose()
        assert len(_our_timers()) == 0  # the pooled one was taken by each request in turn
        assert await _get(client, server.url + "/ok") == (200, b"fine")
        assert len(_our_timers()) == 1
        await client.aclose()
        assert _our_timers() == []


@pytest.mark.parametrize("when", ["head", "body"])
async def test_cancelled_mid_exchange_leaves_no_socket_behind(when: str, no_leaks: None) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if when == "body":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n")
        await asyncio.sleep(30)

    client = H1Client(timeout=5.0, connect_timeout=5.0)
    async with Server(handler) as server:

        async def call() -> None:
            response = await client.send("POST", server.url, {}, b"{}")
            try:
                async for _ in response.aiter_raw():
                    pass
            finally:
                await response.aclose()

        task = asyncio.create_task(call())
        await asyncio.sleep(0.2)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_compressed_body_read_in_part_leaves_nothing_to_the_collector(
    client: H1Client,
) -> None:
    """Stopping early closes both body iterators, the raw one too: none is left for the
    loop's async-generator finalizer to close in a task of its own."""
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    raw = b"HTTP/1.1 500 Oops\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(bomb)
    finalized: list[str] = []
    hooks = sys.get_asyncgen_hooks()

    def finalizer(agen: AsyncGenerator[object, None]) -> None:
        finalized.append(agen.__qualname__)
        assert hooks.finalizer is not None
        hooks.finalizer(agen)

    async with Server(_answer(raw + bomb)) as server:
        sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
        try:
            response = await client.send("GET", server.url, {})
            assert await read_limited(response, 1000) == b"\0" * 1000
            await response.aclose()
            del response
            gc.collect()
        finally:
            sys.set_asyncgen_hooks(*hooks)
    assert finalized == []
