"""The TCP seam of outbound fetches: httpcore's network backend shape, without httpcore.

`EgressClient` and `GuardedTransport` take a `Connector`; tests pass one that records the
address and fails on anything but loopback. Kept apart so naming the type loads nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpcore

_SocketOptions = Iterable[
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
]


class Connector(Protocol):
    """Opens the TCP connection to an already vetted address (httpcore's backend shape)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: _SocketOptions | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to `host` (always an IP literal here) and `port`."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait between connection retries."""
        ...
