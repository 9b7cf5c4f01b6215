"""A small asyncio HTTP/1.1 server on h11 (sans-I/O), for the runner's configurator.

One task per connection; h11 parses, this module only moves bytes. Limits: a request head
of 64 KiB (h11's `max_incomplete_event_size`), a body of `max_body` bytes (413 past it),
`idle_secs` to read a request. Keep-alive follows h11's state machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11

from oxydra.web._http import Reply, text_reply


@dataclass
class HttpRequest:
    """A parsed request with its whole body."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    peer: str

    @property
    def path(self) -> str:
        """The target without its query."""
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, str]:
        """The query's `key=value` pairs (percent-decoded)."""
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.target.partition("?")[2]))


Handler = Callable[[HttpRequest], Awaitable[Reply]]


class HttpServer:
    """A listening server; `close()` also ends the connections still open (keep-alive)."""

    def __init__(self, server: asyncio.Server, tasks: set[asyncio.Task[None]]) -> None:
        self.server, self._tasks = server, tasks

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port."""
        name = self.server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def close(self) -> None:
        """Stop listening, cancel every connection, wait for them."""
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()


async def serve_http(
    handler: Handler,
    host: str,
    port: int,
    *,
    max_body: int = 1 << 20,
    idle_secs: float = 30,
    ssl: object = None,
) -> HttpServer:
    """Listen on `host:port` and answer each request with `handler`."""
    tasks: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await _serve(handler, reader, writer, str(peer[0]) if peer else "", max_body, idle_secs)
        except (ConnectionError, TimeoutError, h11.ProtocolError):
            pass
        finally:
            tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    server = await asyncio.start_server(connection, host, port, ssl=ssl)
    return HttpServer(server, tasks)


async def _serve(
    handler: Handler,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    peer: str,
    max_body: int,
    idle_secs: float,
) -> None:
    conn = h11.Connection(h11.SERVER)
    while True:
        request = await asyncio.wait_for(_read(conn, reader, peer, max_body), idle_secs)
        if request is None:
            return
        reply = (
            await handler(request)
            if not isinstance(request, Reply)
            else request  # a request the reader refused
        )
        headers = [(k.encode(), v.encode()) for k, v in reply.all_headers()]
        writer.write(conn.send(h11.Response(status_code=reply.status, headers=headers)))
        if reply.stream is not None:
            async for piece in reply.stream:  # ends when the source does or the peer goes
                writer.write(conn.send(h11.Data(data=piece)))
                await writer.drain()
        else:
            writer.write(conn.send(h11.Data(data=reply.body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return
        conn.start_next_cycle()


async def _read(
    conn: h11.Connection, reader: asyncio.StreamReader, peer: str, max_body: int
) -> HttpRequest | Reply | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            conn.receive_data(data)
            if not data and conn.their_state is h11.IDLE:
                return None
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_body:
                return text_reply(413, f"request body over {max_body} bytes")
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}
            return HttpRequest(
                head.method.decode(), head.target.decode("latin-1"), headers, bytes(body), peer
            )
