"""Loopback HTTP servers for the `_h1` tests: a handler per connection, counted."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Self

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and body (content-length only); raises when the client went away."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


async def read_all(response: Any) -> bytes:
    """A response's whole (decoded) body: the client offers no unbounded read of its own."""
    return b"".join([chunk async for chunk in response.aiter_bytes()])


def ok(body: bytes, *extra: str) -> bytes:
    """A 200 with a content-length and the extra header lines given."""
    head = [b"HTTP/1.1 200 OK", b"content-length: %d" % len(body), *(e.encode() for e in extra)]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class Server:
    """A loopback server running `handler` per connection; counts connections and the ones the
    client closed (`closed`: the handler ended, or the client's end of the connection was seen)."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
        rcvbuf: int | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.tls = tls
        self.rcvbuf = rcvbuf  # a small receive buffer: the client's sending blocks sooner
        self.connections = 0
        self.closed = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed += 1
            writer.close()

    async def __aenter__(self) -> Self:
        if self.rcvbuf is None:
            self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self.tls)
            return self
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.bind((self.host, 0))
        self._server = await asyncio.start_server(self._serve, sock=sock, ssl=self.tls, limit=1024)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        for writer in self._writers:
            writer.close()
        self._server.close()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    async def wait_closed(self, count: int, within: float = 10.0) -> None:
        """Wait until `count` connections have ended on the server's side."""
        async with asyncio.timeout(within):
            while self.closed < count:
                await asyncio.sleep(0.01)
