"""One turn at a time per session, inside a process and across processes.

`ask --session X` and a `vm` serving the same workspace run turns in the same stored
history; two turns at once would interleave their messages (a tool result after a plain
answer), which providers then refuse for good. Every turn of the runtime holds its
session's lock, so the rule holds whoever runs the turn.

Theory of operation:
1. In a process, an `asyncio.Lock` per session orders turns (FIFO, cheap).
2. The holder of that lock also takes `flock(LOCK_EX)` on `<dir>/session-<digest>.lock`
   (the digest of the id: any id gives one safe file name). A flock belongs to the open
   file description, so two processes exclude each other, and the kernel drops it when the
   holder dies: a `kill -9` leaves no stale lock.
3. Waiting for another process polls `LOCK_NB` with a growing pause (up to 0.5 s), so the
   wait stays cancellable; a thread blocked in `flock` could not be cancelled.
4. `on_wait(session_id)` is called once when a turn waits for another process, so the
   person is told why nothing happens yet.
5. Without a directory (tests, a runtime with no workspace) only rule 1 applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

POLL_FIRST_SECS, POLL_MAX_SECS = 0.05, 0.5


class SessionLocks:
    """The per-session turn locks of one runtime (module doc)."""

    def __init__(
        self, directory: Path | None = None, on_wait: Callable[[str], None] | None = None
    ) -> None:
        self.directory = directory
        self.on_wait = on_wait
        self._locks: dict[str, asyncio.Lock] = {}

    def busy(self, session_id: str) -> bool:
        """Whether a turn of this process holds or awaits the session's lock."""
        lock = self._locks.get(session_id)
        return lock is not None and lock.locked()

    def forget(self, session_id: str) -> None:
        """Drop an idle session's lock object (a new one is made when needed)."""
        if not self.busy(session_id):
            self._locks.pop(session_id, None)

    def path_for(self, session_id: str) -> Path | None:
        """The lock file of a session, or None when only in-process locking applies."""
        if self.directory is None:
            return None
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.directory / f"session-{digest}.lock"

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        """Hold the session's lock for one turn (rules 1-3)."""
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            path = self.path_for(session_id)
            if path is None:
                yield
                return
            fd = await self._acquire(path, session_id)
            try:
                yield
            finally:
                os.close(fd)  # closing the only descriptor releases the flock

    async def _acquire(self, path: Path, session_id: str) -> int:
        import fcntl

        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:  # a workspace not provisioned (yet)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, flags, 0o600)
        pause, told = POLL_FIRST_SECS, False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if not told and self.on_wait is not None:
                        self.on_wait(session_id)
                    told = True
                    await asyncio.sleep(pause)
                    pause = min(POLL_MAX_SECS, pause * 2)
        except BaseException:
            os.close(fd)
            raise
