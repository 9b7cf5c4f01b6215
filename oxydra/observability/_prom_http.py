"""The Prometheus scrape endpoint: `GET /metrics` on its own port, nothing else.

A minimal HTTP/1.1 responder on asyncio streams (one request per connection, bounded
request head, 5 s to send it) rather than a web framework: it serves one text document.
Bound to loopback it is open, as the gateway's port is; bound anywhere else it answers only
a request carrying `Authorization: Bearer <token>` (compared in constant time), and refuses
to start without a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
from collections.abc import Callable

from oxydra.core.errors import ConfigError

MAX_HEAD = 8192
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or `localhost`) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class MetricsServer:
    """Serve `render()` at /metrics (see the module docstring)."""

    def __init__(self, render: Callable[[], str], *, token: str | None = None) -> None:
        self.render = render
        self.token = token
        self._server: asyncio.Server | None = None

    async def start(self, bind: str) -> tuple[str, int]:
        """Listen on `host:port` (port 0: any free port); returns the bound address."""
        host, _, port = bind.rpartition(":")
        host = host.strip("[]")
        if not is_loopback(host) and not self.token:
            raise ConfigError(
                f"observability.metrics_bind = {bind!r} is not loopback: set the bearer token "
                "in the variable named by observability.metrics_token_env",
                key="observability.metrics_bind",
            )
        try:
            self._server = await asyncio.start_server(self._serve, host, int(port), limit=MAX_HEAD)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"observability.metrics_bind = {bind!r}: cannot listen: {exc}",
                key="observability.metrics_bind",
            ) from exc
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body = self._answer(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, body = "400 Bad Request", "bad request\n"
        except ConnectionError:
            return
        data = body.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    def _answer(self, head: bytes) -> tuple[str, str]:
        if len(head) > MAX_HEAD:
            return "431 Request Header Fields Too Large", "too large\n"
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        if method != "GET" or path != "/metrics":
            return "404 Not Found", "only GET /metrics is served here\n"
        if self.token and not self._authorised(lines[1:]):
            return "401 Unauthorized", "a bearer token is required\n"
        return "200 OK", self.render()

    def _authorised(self, header_lines: list[str]) -> bool:
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "authorization":
                scheme, _, credential = value.strip().partition(" ")
                if scheme.lower() == "bearer":
                    return hmac.compare_digest(credential.strip().encode(), self.token.encode())  # type: ignore[union-attr]
        return False
