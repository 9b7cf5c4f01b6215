"""Test network peers: a connector that refuses anything but loopback, a loopback HTTP server."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import httpcore


class ForbiddenConnect(AssertionError):
    """The code under test asked to connect to a non-loopback address."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"test connector refused to connect to {host}:{port}")
        self.host = host
        self.port = port


class LoopbackOnlyConnector(httpcore.AsyncNetworkBackend):
    """Records every connect; connects only to loopback or to a route standing in for a host.

    `routes` maps a pretend public address to a loopback (host, port): the code under test
    believes it talks to 93.184.216.34, the bytes go to our server on 127.0.0.1. Anything
    else non-loopback raises ForbiddenConnect, which fails the test.
    """

    def __init__(self, routes: dict[str, tuple[str, int]] | None = None) -> None:
        self.routes = dict(routes or {})
        self.attempts: list[tuple[str, int]] = []
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[object] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.attempts.append((host, port))
        if host in self.routes:
            host, port = self.routes[host]
        elif not ipaddress.ip_address(host).is_loopback:
            raise ForbiddenConnect(host, port)
        return await self._inner.connect_tcp(host, port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass
class Reply:
    """A canned HTTP response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Handler = Callable[[str, dict[str, str]], Awaitable[Reply] | Reply]


@dataclass
class Seen:
    """A request the server received."""

    target: str
    headers: dict[str, str]


class LoopbackHTTPServer:
    """A tiny HTTP/1.1 server on 127.0.0.1:0; `routes` maps a path (no query) to a Reply."""

    def __init__(self, routes: dict[str, Reply | Handler] | None = None) -> None:
        self.routes: dict[str, Reply | Handler] = dict(routes or {})
        self.seen: list[Seen] = []
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self) -> LoopbackHTTPServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str = "/") -> str:
        """The URL of `path` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    key, _, value = line.partition(":")
                    headers[key.strip().lower()] = value.strip()
            self.seen.append(Seen(target, headers))
            reply = await self._reply(target, headers)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            writer.write(_encode(reply))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _reply(self, target: str, headers: dict[str, str]) -> Reply:
        route = self.routes.get(target.split("?", 1)[0])
        if route is None:
            return Reply(404, b"not found")
        if isinstance(route, Reply):
            return route
        result = route(target, headers)
        return await result if asyncio.iscoroutine(result) else result  # type: ignore[return-value]


def _encode(reply: Reply) -> bytes:
    headers = {"content-length": str(len(reply.body)), "connection": "close", **reply.headers}
    head = f"HTTP/1.1 {reply.status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + reply.body
