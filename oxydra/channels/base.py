"""The channel contract: how a chat surface meets the gateway.

A channel moves gateway frames between a user's surface (a terminal, a chat app) and the
gateway: `send` delivers a client frame (a prompt, a cancel), `listen` yields the server
frames meant for that surface, `health_check` says whether the link is up. The TUI adapter
is the first implementation; chat apps follow the same contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import msgspec

from oxydra.wire.gateway import ClientFrame, ServerFrame

MediaType = str  # "photo" | "audio" | "document" | "voice" | "video"


class ChannelHealth(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a channel can deliver now, and why not."""

    healthy: bool
    detail: str = ""


class ChannelCapabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a surface can show (the model is told, so it does not send what cannot arrive)."""

    media_types: tuple[MediaType, ...] = ()
    max_message_chars: int | None = None


@runtime_checkable
class Channel(Protocol):
    """A chat surface connected to the gateway."""

    name: str
    capabilities: ChannelCapabilities

    async def send(self, frame: ClientFrame) -> None:
        """Deliver a client frame to the gateway."""
        ...

    def listen(self) -> AsyncIterator[ServerFrame]:
        """The server frames for this surface, in order, until the channel closes."""
        ...

    async def health_check(self) -> ChannelHealth:
        """Probe the link."""
        ...
