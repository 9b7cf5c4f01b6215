"""The TUI as a `Channel`: the terminal's link to the gateway over the WebSocket client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from oxydra.channels import ChannelCapabilities, ChannelHealth
from oxydra.core.errors import ChannelError, GatewayError
from oxydra.tui.client import ConnectionState, GatewayClient
from oxydra.wire.gateway import ClientFrame, HealthCheck, HealthStatus, ServerFrame


class TuiChannel:
    """Frames out through the client, frames in from its event queue, health by a probe."""

    name = "tui"
    capabilities = ChannelCapabilities()

    def __init__(self, client: GatewayClient) -> None:
        self.client = client
        self.state: ConnectionState = ConnectionState("connecting")
        self._health: dict[str, asyncio.Future[HealthStatus]] = {}

    async def send(self, frame: ClientFrame) -> None:
        """Deliver a client frame; raises ChannelError when the link is down."""
        try:
            await self.client.send(frame)
        except GatewayError as exc:
            raise ChannelError(str(exc)) from exc

    async def listen(self) -> AsyncIterator[ServerFrame | ConnectionState]:
        """Server frames and link changes, in order; answers to probes are consumed here."""
        while True:
            item = await self.client.events.get()
            if isinstance(item, ConnectionState):
                self.state = item
            elif isinstance(item, HealthStatus) and item.request_id in self._health:
                self._health.pop(item.request_id).set_result(item)
                continue
            yield item

    async def health_check(self) -> ChannelHealth:
        """Ask the gateway; needs `listen` running to receive the answer."""
        request_id = f"probe-{uuid.uuid4().hex[:8]}"
        waiter: asyncio.Future[HealthStatus] = asyncio.get_running_loop().create_future()
        self._health[request_id] = waiter
        try:
            await self.send(HealthCheck(request_id=request_id))
            status = await asyncio.wait_for(waiter, 5)
        except (ChannelError, TimeoutError) as exc:
            self._health.pop(request_id, None)
            return ChannelHealth(healthy=False, detail=str(exc) or "no answer")
        return ChannelHealth(healthy=status.healthy, detail=status.message or "")
