"""One turn at a time per session, inside a process and across processes.

`ask --session X` and a `vm` serving the same workspace run turns in the same stored
history; two turns at once would interleave their messages (a tool result after a plain
answer), which providers then refuse for good. Every turn of the runtime holds its
session's lock, so the rule holds whoever runs the turn.

Theory of operation:
1. In a process, an `asyncio.Lock` per session orders turns (FIFO, cheap).
2. The holder of that lock also takes a write lock on one byte of `<dir>/turns.lock`, at an
   offset drawn from the digest of the session id (62 bits: two sessions meet on one byte
   about never, and if they do one only waits for the other). It is an open file
   description lock (`F_OFD_SETLK`): it belongs to the file description, as a `flock` does,
   so two processes (or two `SessionLocks` of one process) exclude each other, and the
   kernel drops it when the holder dies: a `kill -9` leaves no stale lock. One file held
   open for every session: a session's first turn creates no file (a file per session cost
   a directory entry and an inode at each new session, ~0.25 ms on a busy disk).
3. Waiting for another process polls the non-blocking lock with a growing pause (up to
   0.5 s), so the wait stays cancellable; a thread blocked in the kernel could not be.
4. `on_wait(session_id)` is called once when a turn waits for another process, so the
   person is told why nothing happens yet.
5. Without a directory (tests, a runtime with no workspace) only rule 1 applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

POLL_FIRST_SECS, POLL_MAX_SECS = 0.05, 0.5
LOCK_FILE = "turns.lock"
_FLOCK = "hhqqi4x"  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid


class SessionLocks:
    """The per-session turn locks of one runtime (module doc)."""

    def __init__(
        self, directory: Path | None = None, on_wait: Callable[[str], None] | None = None
    ) -> None:
        self.directory = directory
        self.on_wait = on_wait
        self._locks: dict[str, asyncio.Lock] = {}
        self._fd: int | None = None
        self._held: set[int] = set()  # offsets this description holds (rule 2's rare meeting)

    def busy(self, session_id: str) -> bool:
        """Whether a turn of this process holds or awaits the session's lock."""
        lock = self._locks.get(session_id)
        return lock is not None and lock.locked()

    def forget(self, session_id: str) -> None:
        """Drop an idle session's lock object (a new one is made when needed)."""
        if not self.busy(session_id):
            self._locks.pop(session_id, None)

    def path_for(self, session_id: str) -> Path | None:
        """The file holding the session's lock, or None when only in-process locking applies."""
        return None if self.directory is None else self.directory / LOCK_FILE

    @staticmethod
    def offset_for(session_id: str) -> int:
        """The byte of the lock file that stands for the session."""
        digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") >> 2

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        """Hold the session's lock for one turn (rules 1-3)."""
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            if self.directory is None:
                yield
                return
            offset = await self._acquire(session_id)
            try:
                yield
            finally:
                self._release(offset)

    def _file(self) -> int:
        if self._fd is None:
            path = self.directory / LOCK_FILE  # type: ignore[operator]  # rule 5 checked
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            try:
                self._fd = os.open(path, flags, 0o600)
            except FileNotFoundError:  # a workspace not provisioned (yet)
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._fd = os.open(path, flags, 0o600)
        return self._fd

    def _try(self, offset: int) -> bool:
        import fcntl

        if offset in self._held:  # another session of ours met this byte: wait for it
            return False
        try:
            fcntl.fcntl(
                self._file(), fcntl.F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, 0, offset, 1, 0)
            )
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: another holder
            return False
        self._held.add(offset)
        return True

    async def _acquire(self, session_id: str) -> int:
        offset = self.offset_for(session_id)
        pause, told = POLL_FIRST_SECS, False
        while not self._try(offset):
            if not told and self.on_wait is not None:
                self.on_wait(session_id)
            told = True
            await asyncio.sleep(pause)
            pause = min(POLL_MAX_SECS, pause * 2)
        return offset

    def _release(self, offset: int) -> None:
        import fcntl

        self._held.discard(offset)
        fcntl.fcntl(
            self._file(), fcntl.F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_UNLCK, 0, offset, 1, 0)
        )

    def close(self) -> None:
        """Close the lock file (every lock of this object is released with it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._held.clear()
