"""A tiny HTTP/1.1 server on asyncio streams, enough for the fake LLM.

One request per connection (`Connection: close`), request bodies by `Content-Length`,
responses either whole or with chunked transfer encoding so a stream can be written event by
event, slowed down, or cut mid-body (the socket is aborted without the final chunk, which a
client sees as a dropped connection).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

import msgspec

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A request as the fake server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        """The body decoded as JSON (None when empty)."""
        return msgspec.json.decode(self.body) if self.body else None


class HttpResponseWriter:
    """Writes one response: whole, or head then chunks; records the first body byte's time."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.first_byte_at: float | None = None
        self._chunked = False
        self.gone = asyncio.Event()  # the client closed its end (it sends nothing more)

    async def _head(self, status: int, headers: dict[str, str]) -> None:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}", "connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self._writer.drain()

    async def send(
        self, status: int, headers: dict[str, str], body: bytes, *, cut_at: int | None = None
    ) -> None:
        """A whole response; with `cut_at` only that many body bytes, then the socket is aborted."""
        await self._head(status, {**headers, "content-length": str(len(body))})
        data = body if cut_at is None else body[:cut_at]
        self._mark()
        self._writer.write(data)
        await self._writer.drain()
        if cut_at is not None:
            self.abort()

    async def start_chunked(self, status: int, headers: dict[str, str]) -> None:
        """Begin a chunked response."""
        self._chunked = True
        await self._head(status, {**headers, "transfer-encoding": "chunked"})

    async def chunk(self, data: bytes) -> None:
        """One chunk of a chunked response."""
        if not data:
            return
        self._mark()
        self._writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self._writer.drain()

    async def end(self) -> None:
        """The final zero-length chunk."""
        if self._chunked:
            self._writer.write(b"0\r\n\r\n")
            await self._writer.drain()

    def abort(self) -> None:
        """Drop the connection without finishing the response."""
        self._writer.transport.abort()

    def _mark(self) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()


Handler = Callable[[HttpRequest, HttpResponseWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """Read one request, or None when the peer closed or sent garbage."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_BODY:
        return None
    body = await reader.readexactly(length) if length else b""
    url = urlsplit(parts[1])
    return HttpRequest(
        method=parts[0], path=url.path, query=dict(parse_qsl(url.query)), headers=headers, body=body
    )


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler
) -> None:
    """Serve one request on a connection, then close it."""
    try:
        request = await read_request(reader)
        if request is not None:
            out = HttpResponseWriter(writer)
            watch = asyncio.create_task(_until_eof(reader, out.gone))
            try:
                await handler(request, out)
            finally:
                watch.cancel()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def _until_eof(reader: asyncio.StreamReader, gone: asyncio.Event) -> None:
    """Set `gone` when the client closes (one request per connection: nothing else comes)."""
    try:
        while await reader.read(4096):
            pass
    except (ConnectionError, OSError):
        pass
    gone.set()
