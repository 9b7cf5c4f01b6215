"""Creating sessions under load without a global lock.

Theory of operation:
1. `SingleFlight`: concurrent requests for the same key (a session id being loaded, a hello's
   `request_id`) share one task, so two hellos never build two channels for one session.
2. `SessionSlots`: a per-user count of live sessions, loaded once from the store; a create
   checks and reserves a slot in one synchronous step, so concurrent creates can never pass
   `max_sessions_per_user` together. A refused reservation recounts from the store once
   (sessions may have been archived meanwhile) before it refuses.
3. `CreateBatcher`: creates queued while a write is in flight are written together in the
   next transaction, so a burst of hellos costs one fsync, not one each.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from oxydra.core.errors import GatewayError
from oxydra.gateway._store import SessionRecord, SessionRecords
from oxydra.gateway._table import AuditEntry

T = TypeVar("T")


class RefusedError(GatewayError):
    """A request the rules refuse; `code` is a stable reason for clients."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class SingleFlight(Generic[T]):
    """One task per key at a time; later callers for the same key await the same result."""

    def __init__(self) -> None:
        self._inflight: dict[Hashable, asyncio.Future[T]] = {}

    async def run(self, key: Hashable, factory: Callable[[], Awaitable[T]]) -> T:
        """The result of `factory()`, started now or joined if already running for `key`."""
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(factory())
            self._inflight[key] = future
            future.add_done_callback(lambda _f: self._inflight.pop(key, None))
        return await asyncio.shield(future)


class SessionSlots:
    """How many sessions each user has, reserved synchronously (module doc, point 2)."""

    def __init__(self, count: Callable[[str], Awaitable[int]], limit: int) -> None:
        self._count, self.limit = count, limit
        self._live: dict[str, int] = {}
        self._pending: defaultdict[str, int] = defaultdict(int)
        self._settled: defaultdict[str, int] = defaultdict(int)
        self._loads: SingleFlight[None] = SingleFlight()

    async def reserve(self, user_id: str) -> None:
        """Take a slot for a session about to be created.

        Raises:
            RefusedError: `session_limit`, the user has `limit` sessions (or reservations).
        """
        if user_id not in self._live:
            await self._loads.run(user_id, lambda: self._load(user_id))
        if self._used(user_id) >= self.limit:
            await self._loads.run(user_id, lambda: self._load(user_id))
            if self._used(user_id) >= self.limit:
                raise RefusedError(
                    f"maximum sessions reached (limit: {self.limit})", "session_limit"
                )
        self._pending[user_id] += 1

    def settle(self, user_id: str, created: bool) -> None:
        """The reserved create ended: count the session if it was stored."""
        self._pending[user_id] -= 1
        if created:
            self._live[user_id] = self._live.get(user_id, 0) + 1
            self._settled[user_id] += 1

    def _used(self, user_id: str) -> int:
        return self._live.get(user_id, 0) + self._pending[user_id]

    async def _load(self, user_id: str) -> None:
        # A create that settles while the count is read may or may not be in it: read again.
        while True:
            generation = self._settled[user_id]
            counted = await self._count(user_id)
            if self._settled[user_id] == generation:
                self._live[user_id] = counted
                return


class CreateBatcher:
    """Writes queued session creates together (module doc, point 3)."""

    def __init__(self, store: SessionRecords) -> None:
        self.store = store
        self._queue: list[tuple[SessionRecord, AuditEntry | None, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    def submit(
        self, record: SessionRecord, audit: AuditEntry | None = None
    ) -> asyncio.Future[bool]:
        """Queue a create (with its audit row); the future says whether the id was stored
        (False: already taken)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((record, audit, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="gateway-session-creates")
        return future

    async def _write(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                created = await self.store.create_many(
                    [record for record, _, _ in batch], [a for _, a, _ in batch if a is not None]
                )
            except Exception as exc:  # every waiter hears the store's own error
                _settle_all(batch, exc)
                continue
            for record, _, future in batch:
                if not future.done():
                    future.set_result(record.session_id in created)


def _settle_all(batch: list[tuple[Any, Any, asyncio.Future[bool]]], exc: BaseException) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(exc)
