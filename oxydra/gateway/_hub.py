"""Per-session fan-out with sequence numbers, so no subscriber ever misses a frame.

Theory of operation:
1. Every session-scoped server frame gets the session's next sequence number (`seq`) and is
   appended to the session's log before it is offered to subscribers. Publishing is
   synchronous: in one event loop nothing can interleave between numbering, logging and
   fan-out.
2. A subscriber's queue is bounded. A subscriber that falls behind is not fed partially:
   it is marked overflowed and dropped, and its connection is closed; when the client
   reconnects with `last_seq` it is replayed exactly the frames after that number from the
   log. Slow clients cost themselves a reconnect, never the others a stall or a loss.
3. Subscribing and computing the replay happen in the same synchronous step, so a replayed
   frame is never also delivered live, and a live frame is never missing from the replay.
4. The log keeps the frames of the running turn and of the last finished one (bounded); a
   client whose `last_seq` fell out of it gets the last terminal frame and a `replay_gap`
   error, as the Rust version's catch-up would.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import msgspec

from oxydra.wire.gateway import (
    ErrorFrame,
    GatewaySession,
    TaggedFrame,
    TurnCancelled,
    TurnCompleted,
    TurnStatus,
    encode_frame,
)

TERMINAL = (TurnCompleted, TurnCancelled)


class Subscriber:
    """One connection's bounded view of one session."""

    def __init__(self, capacity: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(capacity)
        self.overflowed = asyncio.Event()
        self.on_overflow: Callable[[], object] | None = None

    def offer(self, frame: bytes) -> bool:
        """Queue a frame; on a full queue mark the subscriber overflowed and refuse."""
        if self.overflowed.is_set():
            return False
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed.set()
            if self.on_overflow is not None:
                self.on_overflow()
            return False
        return True


class SessionChannel:
    """A session's live state: metadata, the active turn, the frame log and subscribers."""

    def __init__(
        self,
        *,
        user_id: str,
        session_id: str,
        agent_name: str = "default",
        display_name: str | None = None,
        channel_origin: str = "tui",
        log_size: int = 20_000,
    ) -> None:
        self.user_id = user_id
        self.session_id = session_id
        self.agent_name = agent_name
        self.display_name = display_name
        self.channel_origin = channel_origin
        self.seq = 0
        self.log: deque[tuple[int, bytes]] = deque(maxlen=log_size)
        self.subscribers: set[Subscriber] = set()
        self.last_terminal: bytes | None = None
        self.active_turn: TurnStatus | None = None
        self.active_request_id: str | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def ref(self) -> GatewaySession:
        """The session as frames name it."""
        return GatewaySession(user_id=self.user_id, session_id=self.session_id)

    def publish(self, frame: TaggedFrame) -> bytes:
        """Number, log and fan out one frame; returns its encoded form."""
        self.seq += 1
        data = encode_frame(msgspec.structs.replace(frame, seq=self.seq))
        self.log.append((self.seq, data))
        if isinstance(frame, TERMINAL) or (isinstance(frame, ErrorFrame) and frame.turn):
            self.last_terminal = data
        for subscriber in list(self.subscribers):
            if not subscriber.offer(data):
                self.subscribers.discard(subscriber)
        return data

    def subscribe(self, subscriber: Subscriber, last_seq: int | None) -> tuple[list[bytes], bool]:
        """Attach a subscriber; return the frames to replay first and whether a gap exists.

        With `last_seq`, the replay is every logged frame after it. Without it (an old
        client), it is the last terminal frame when no turn is running.
        """
        self.subscribers.add(subscriber)
        if last_seq is None:
            if self.active_turn is None and self.last_terminal is not None:
                return [self.last_terminal], False
            return [], False
        if last_seq >= self.seq:
            return [], False
        oldest = self.log[0][0] if self.log else self.seq + 1
        if last_seq + 1 < oldest:
            terminal = [self.last_terminal] if self.last_terminal else []
            return terminal, True
        return [data for seq, data in self.log if seq > last_seq], False

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Detach a subscriber (connection closed or switched session)."""
        self.subscribers.discard(subscriber)
