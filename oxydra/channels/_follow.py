"""Following gateway sessions in process: every frame of the sessions a channel uses, in order.

A channel subscribes to a session as a WebSocket client does (`GatewayCore.subscribe`), from
the session's current sequence number (it wants what happens next, not a replay). One pump
per session decodes the frames into one queue of `(session_id, frame)`. A subscriber that
overflowed (the channel fell behind) is re-subscribed from the last number it saw and is
replayed the rest from the session's log, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib

from oxydra.gateway._hub import SessionChannel, Subscriber
from oxydra.gateway.core import GatewayCore
from oxydra.wire import gateway as g


class SessionFollower:
    """The sessions one channel follows, and their frames in one queue."""

    def __init__(self, core: GatewayCore) -> None:
        self.core = core
        self.frames: asyncio.Queue[tuple[str, g.ServerFrame]] = asyncio.Queue()
        self._follows: dict[str, tuple[SessionChannel, Subscriber, asyncio.Task[None]]] = {}

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._follows

    def session(self, session_id: str) -> SessionChannel | None:
        """A followed session's live state."""
        found = self._follows.get(session_id)
        return found[0] if found else None

    @property
    def session_ids(self) -> list[str]:
        """The followed sessions."""
        return list(self._follows)

    def follow(self, channel: SessionChannel) -> None:
        """Start following a session (again: no-op)."""
        if channel.session_id in self._follows:
            return
        subscriber, _replay, _gap = self.core.subscribe(channel, channel.seq, channel.epoch)
        task = asyncio.create_task(self._pump(channel, subscriber), name="channel-follow")
        self._follows[channel.session_id] = (channel, subscriber, task)

    async def _pump(self, channel: SessionChannel, subscriber: Subscriber) -> None:
        last = channel.seq
        while True:
            if subscriber.overflowed.is_set() and subscriber.queue.empty():
                channel.unsubscribe(subscriber)
                subscriber, replay, _gap = self.core.subscribe(channel, last, channel.epoch)
                task = self._follows[channel.session_id][2]
                self._follows[channel.session_id] = (channel, subscriber, task)
                for data in replay:
                    frame = g.decode_server_frame(data)
                    last = getattr(frame, "seq", None) or last
                    await self.frames.put((channel.session_id, frame))
                continue
            frame = g.decode_server_frame(await subscriber.queue.get())
            last = getattr(frame, "seq", None) or last
            await self.frames.put((channel.session_id, frame))

    async def unfollow(self, session_id: str) -> None:
        """Stop following a session (it may then be evicted when idle)."""
        entry = self._follows.pop(session_id, None)
        if entry is None:
            return
        channel, subscriber, task = entry
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        channel.unsubscribe(subscriber)

    async def aclose(self) -> None:
        """Stop every pump and unsubscribe."""
        tasks = [entry[2] for entry in self._follows.values()]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        for channel, subscriber, _ in self._follows.values():
            channel.unsubscribe(subscriber)
        self._follows.clear()
