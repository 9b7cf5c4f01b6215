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
4. The log (`_framelog.FrameLog`) is bounded by bytes: it drops what a terminal frame makes
   redundant, coalesces the running turn's deltas, and only then the oldest finished turns;
   a client whose `last_seq` fell below what is kept gets what is kept and a `replay_gap`.
5. Numbers belong to an `epoch`: a fresh id each time the channel is built (a `vm` start,
   or a reload after the idle session was evicted). `hello_ack` reports it; a client whose
   remembered epoch differs starts counting again from 0, and is replayed the whole log.
6. Several hosts (`_relay.FrameRelay`): the channel's numbers are the session's numbers in
   the store and its epoch is the same on every host. Frames this host publishes are handed
   to `on_publish` (the relay stores them); frames another host published arrive through
   `mirror`, keeping their numbers, and are logged and fanned out like local ones.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

import msgspec

from oxydra.gateway._framelog import FrameLog
from oxydra.wire.gateway import (
    ErrorFrame,
    GatewaySession,
    TaggedFrame,
    TurnCancelled,
    TurnCompleted,
    TurnStatus,
    decode_server_frame,
    encode_frame,
)

TERMINAL = (TurnCompleted, TurnCancelled)


class Subscriber:
    """One connection's bounded view of one session."""

    def __init__(self, capacity: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(capacity)
        self.overflowed = asyncio.Event()

    def offer(self, frame: bytes) -> bool:
        """Queue a frame; on a full queue mark the subscriber overflowed and refuse."""
        if self.overflowed.is_set():
            return False
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflowed.set()  # the connection's pump sends what is queued, then closes 4008
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
        log_bytes: int = 1 << 20,
    ) -> None:
        self.user_id = user_id
        self.session_id = session_id
        self.agent_name = agent_name
        self.display_name = display_name
        self.channel_origin = channel_origin
        self.seq = 0
        self.epoch = secrets.token_hex(8)
        self.log = FrameLog(log_bytes)
        self.last_active = time.monotonic()
        self.subscribers: set[Subscriber] = set()
        self.last_terminal: bytes | None = None
        self.active_turn: TurnStatus | None = None
        self.active_request_id: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.on_publish: Callable[[str, int, bytes], None] | None = None
        self.deleted = False

    @property
    def ref(self) -> GatewaySession:
        """The session as frames name it."""
        return GatewaySession(user_id=self.user_id, session_id=self.session_id)

    def publish(self, frame: TaggedFrame) -> bytes:
        """Number, log and fan out one frame; returns its encoded form."""
        self.seq += 1
        numbered = msgspec.structs.replace(frame, seq=self.seq)
        data = encode_frame(numbered)
        self._deliver(numbered, data)
        if self.on_publish is not None:
            self.on_publish(self.session_id, self.seq, data)
        return data

    def mirror(self, seq: int, data: bytes) -> bool:
        """Log and fan out a frame another host published as number `seq` (rule 6); a number
        at or below the last one here is already known and ignored."""
        if seq <= self.seq:
            return False
        if not self.log.entries:
            self.log.floor = max(self.log.floor, seq - 1)  # what came before is not kept here
        self.seq = seq
        self._deliver(decode_server_frame(data), data)
        return True

    def _deliver(self, frame: TaggedFrame, data: bytes) -> None:
        self.log.append(self.seq, frame, data)
        self.last_active = time.monotonic()
        if isinstance(frame, TERMINAL) or (isinstance(frame, ErrorFrame) and frame.turn):
            self.last_terminal = data
        for subscriber in list(self.subscribers):
            if not subscriber.offer(data):
                self.subscribers.discard(subscriber)

    def subscribe(
        self, subscriber: Subscriber, last_seq: int | None, epoch: str | None = None
    ) -> tuple[list[bytes], bool]:
        """Attach a subscriber; return the frames to replay first and whether a gap exists.

        With `last_seq`, the replay is every logged frame after it. A `last_seq` of another
        epoch (named, or beyond this epoch's numbers) counts from 0. Without it (an old
        client), it is the last terminal frame when no turn is running.
        """
        self.subscribers.add(subscriber)
        self.last_active = time.monotonic()
        if last_seq is None:
            if self.active_turn is None and self.last_terminal is not None:
                return [self.last_terminal], False
            return [], False
        if (epoch is not None and epoch != self.epoch) or last_seq > self.seq:
            last_seq = 0
        if last_seq >= self.seq:
            return [], False
        return self.log.replay(last_seq)

    @property
    def idle(self) -> bool:
        """No client follows the session and no turn runs: its state may be evicted."""
        return not self.subscribers and self.task is None and self.active_turn is None

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Detach a subscriber (connection closed or switched session)."""
        self.subscribers.discard(subscriber)
        self.last_active = time.monotonic()
