"""The channels a process runs, by name, with one health view over all of them."""

from __future__ import annotations

import asyncio

from oxydra.channels.base import Channel, ChannelHealth
from oxydra.core.errors import ChannelError


class ChannelRegistry:
    """Registered channels; names are unique."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def register(self, channel: Channel) -> None:
        """Add a channel; a second one with the same name is an error."""
        if channel.name in self._channels:
            raise ChannelError(f"a channel named {channel.name!r} is already registered")
        self._channels[channel.name] = channel

    def get(self, name: str) -> Channel:
        """The channel of that name."""
        try:
            return self._channels[name]
        except KeyError:
            known = ", ".join(sorted(self._channels)) or "none"
            raise ChannelError(f"no channel named {name!r} (registered: {known})") from None

    @property
    def names(self) -> list[str]:
        """Registered channel names, sorted."""
        return sorted(self._channels)

    async def health(self, timeout_secs: float = 5.0) -> dict[str, ChannelHealth]:
        """Every channel's health; a probe that hangs or fails counts as unhealthy."""

        async def probe(channel: Channel) -> ChannelHealth:
            try:
                async with asyncio.timeout(timeout_secs):
                    return await channel.health_check()
            except TimeoutError:
                return ChannelHealth(healthy=False, detail=f"no answer in {timeout_secs:g}s")
            except ChannelError as exc:
                return ChannelHealth(healthy=False, detail=str(exc))

        names = self.names
        results = await asyncio.gather(*(probe(self._channels[n]) for n in names))
        return dict(zip(names, results, strict=True))
