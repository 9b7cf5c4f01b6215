"""A small HTTP/1.1 server on asyncio streams, with h11 doing the protocol.

h11 (already installed as httpx's transport's parser) parses and frames; this module only
moves bytes and enforces limits: a request head must arrive within `head_timeout_secs` and be
at most 16 KiB, a body at most `max_body` bytes (413 otherwise), and a connection idle between
requests is closed after `idle_timeout_secs`. Responses are either whole
(`content-length`) or streamed (chunked), so an SSE stream can be written event by event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import h11
import msgspec

from oxydra.core.log import get_logger

_log = get_logger(__name__)


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One request: method, path (query dropped), lower-cased headers, body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Responder:
    """Writes one response to a connection."""

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter) -> None:
        self._conn, self._writer = conn, writer
        self.started = False

    async def _send(self, event: h11.Event) -> None:
        data = self._conn.send(event)
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """A whole response."""
        self.started = True
        headers = [("content-type", content_type), ("content-length", str(len(body)))]
        await self._send(h11.Response(status_code=status, headers=headers))
        await self._send(h11.Data(data=body))
        await self._send(h11.EndOfMessage())

    async def start(self, status: int, content_type: str) -> None:
        """The head of a streamed (chunked) response."""
        self.started = True
        headers = [("content-type", content_type), ("cache-control", "no-cache")]
        await self._send(h11.Response(status_code=status, headers=headers))

    async def write(self, data: bytes) -> None:
        """One piece of a streamed response."""
        await self._send(h11.Data(data=data))

    async def end(self) -> None:
        """The end of a streamed response."""
        await self._send(h11.EndOfMessage())


Handler = Callable[[HttpRequest, Responder], Awaitable[None]]
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


class HttpServer:
    """Serves `handler` on a TCP port; one request at a time per connection (keep-alive)."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body: int,
        head_timeout_secs: float = 30,
        idle_timeout_secs: float = 120,
    ) -> None:
        self.handler = handler
        self.max_body = max_body
        self.head_timeout_secs, self.idle_timeout_secs = head_timeout_secs, idle_timeout_secs
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound address."""
        self._server = await asyncio.start_server(self._serve, host, port)
        address = self._server.sockets[0].getsockname()
        return address[0], address[1]

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        try:
            while True:
                request = await self._request(conn, reader, writer)
                if request is None:
                    return
                responder = Responder(conn, writer)
                try:
                    await self.handler(request, responder)
                except (ConnectionError, asyncio.CancelledError):
                    raise
                except Exception:
                    _log.exception("openai endpoint: request failed")
                    if responder.started:
                        return
                    await responder.send(500, b'{"error":{"message":"internal error"}}')
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except h11.RemoteProtocolError:
            with contextlib.suppress(ConnectionError):  # h11 cannot frame it: say so raw
                writer.write(_BAD_REQUEST)
                await writer.drain()
        except (ConnectionError, h11.LocalProtocolError, TimeoutError):
            return
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)

    async def _request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> HttpRequest | None:
        head: h11.Request | None = None
        body = bytearray()
        timeout = self.idle_timeout_secs
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                async with asyncio.timeout(timeout):
                    data = await reader.read(65536)
                conn.receive_data(data)
                timeout = self.head_timeout_secs
                continue
            if isinstance(event, h11.Request):
                head = event
                declared = dict(event.headers).get(b"content-length")
                if declared is not None and int(declared) > self.max_body:
                    await _refuse(conn, writer, 413, b"request body too large")
                    return None
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_body:
                    await _refuse(conn, writer, 413, b"request body too large")
                    return None
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}
                path = head.target.decode("latin-1").split("?", 1)[0]
                return HttpRequest(
                    method=head.method.decode(), path=path, headers=headers, body=bytes(body)
                )
            else:  # ConnectionClosed, or a protocol state we do not serve
                return None


async def _refuse(
    conn: h11.Connection, writer: asyncio.StreamWriter, status: int, why: bytes
) -> None:
    responder = Responder(conn, writer)
    body = b'{"error":{"message":"' + why + b'","type":"invalid_request_error"}}'
    with contextlib.suppress(h11.LocalProtocolError):
        await responder.send(status, body)
