"""Frames of a session shared between hosts on one PostgreSQL store.

Theory of operation:

1. Numbers come from the store. Every host's channel of a session uses the same epoch
   (derived from the session id) and the numbers stored in `session_frames`. Only the host
   holding the session's turn lease (`_lease`) runs a turn; before its first frame it
   catches up from the table, so it numbers on from the last stored frame.
2. The host publishing frames queues them (`SessionChannel.on_publish`); one writer task
   stores the queue in batches, each batch one transaction that also `pg_notify`s
   `oxydra_frames` with `<session id> <last seq>` (delivered after commit). A turn's lease is
   released only after its frames are stored (`flush`), so the next holder numbers on
   from them.
3. Every host LISTENs; for a notified session it has a channel for, it reads the frames
   after its last number and mirrors them (`SessionChannel.mirror`): its clients get them
   live, and a client that moves from host A to host B resumes with its `last_seq` (B
   catches up before the subscription, so B's log holds what the client missed). Each
   time LISTEN is (re)established every known channel catches up, so nothing sent before
   it was in place is missed.
4. The table keeps the last `KEEP` frames of a session (older ones are pruned as new ones
   are stored): a client further behind gets what is kept and a `replay_gap`, as when a
   single host's log compacts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

from oxydra.core.log import get_logger
from oxydra.gateway._hub import SessionChannel
from oxydra.memory import Database, Memory

_log = get_logger(__name__)
CHANNEL = "oxydra_frames"
KEEP = 4096


def shared_epoch(session_id: str) -> str:
    """The epoch every host gives a session's channel (rule 1)."""
    return "db-" + hashlib.sha256(session_id.encode()).hexdigest()[:12]


def _store(db: Database, rows: list[tuple[str, int, str]]) -> None:
    last: dict[str, int] = {}
    for session_id, seq, _ in rows:
        last[session_id] = max(seq, last.get(session_id, 0))
    with db.claim() as conn:
        conn.executemany(
            "INSERT INTO session_frames(session_id, seq, frame_json) VALUES (?, ?, ?) "
            "ON CONFLICT (session_id, seq) DO NOTHING",
            rows,
        )
        for session_id, seq in last.items():
            conn.execute("SELECT pg_notify(?, ?)", (CHANNEL, f"{session_id} {seq}"))
            if seq % 256 == 0:
                conn.execute(
                    "DELETE FROM session_frames WHERE session_id = ? AND seq <= ?",
                    (session_id, seq - KEEP),
                )


def _after(db: Database, session_id: str, seq: int) -> list[tuple[int, str]]:
    rows = db.query(
        "SELECT seq, frame_json FROM session_frames WHERE session_id = ? AND seq > ? ORDER BY seq",
        (session_id, seq),
    )
    return [(int(r[0]), str(r[1])) for r in rows]


class FrameRelay:
    """Stores, announces and mirrors session frames (see the module doc).

    Args:
        memory: the shared PostgreSQL store.

    Attributes:
        channels: this host's live channels by session id (`GatewayCore` hands in its own).
    """

    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.channels: dict[str, SessionChannel] = {}
        self._pending: list[tuple[str, int, str]] = []
        self._wake = asyncio.Event()
        self._stored = asyncio.Condition()
        self._written = 0  # frames handed to the store so far
        self._queued = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def attach(self, channel: SessionChannel) -> None:
        """Share this channel's frames with the other hosts."""
        channel.epoch = shared_epoch(channel.session_id)
        channel.on_publish = self._enqueue

    def start(self) -> None:
        """Start the writer and the listener (idempotent)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._writer(), name="frame-relay-writer"),
                asyncio.create_task(self._listener(), name="frame-relay-listener"),
            ]

    async def aclose(self) -> None:
        """Store what is queued, then stop."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), 5)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _enqueue(self, session_id: str, seq: int, data: bytes) -> None:
        self._pending.append((session_id, seq, data.decode()))
        self._queued += 1
        self._wake.set()

    async def flush(self) -> None:
        """Wait until every frame queued so far is stored (and announced)."""
        target = self._queued
        async with self._stored:
            await self._stored.wait_for(lambda: self._written >= target)

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await self.memory.call(_store, batch)
            except Exception:
                _log.exception(
                    "storing %d session frames failed; other hosts miss them", len(batch)
                )
            async with self._stored:
                self._written += len(batch)
                self._stored.notify_all()

    async def _listener(self) -> None:
        async for payload in self.memory.notifications(CHANNEL):
            if payload is None:  # (re)connected: what was sent before was not heard
                for known in list(self.channels.values()):
                    await self._catch_up_quietly(known)
                continue
            session_id, _, seq = payload.rpartition(" ")
            channel = self.channels.get(session_id)
            if channel is not None and seq.isdigit() and int(seq) > channel.seq:
                await self._catch_up_quietly(channel)

    async def _catch_up_quietly(self, channel: SessionChannel) -> None:
        try:
            await self.catch_up(channel)
        except Exception:
            _log.exception("reading another host's frames failed")

    async def catch_up(self, channel: SessionChannel) -> int:
        """Mirror the stored frames after the channel's last number; how many."""
        lock = self._locks.setdefault(channel.session_id, asyncio.Lock())
        async with lock:
            rows = await self.memory.call(_after, channel.session_id, channel.seq)
            return sum(channel.mirror(seq, data.encode()) for seq, data in rows)
