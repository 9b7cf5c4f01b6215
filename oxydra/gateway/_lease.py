"""Per-session turn leases, so one session never runs two turns at once across hosts.

Within one `vm`, `GatewayCore` refuses a second turn of a session while one runs. With
several hosts on one PostgreSQL store, a client may send a turn to host B while host A
runs one of the same session; B's turn then waits (queued, cancellable) for A's lease.

1. A lease is a row: holder (the host id), turn, expiry. Taking it is one statement that
   succeeds only when the row is absent, released (`lease_until` NULL) or expired, so two
   hosts never both hold it. The holder renews it every third of its lifetime; a host that
   dies stops renewing and its sessions are free again once the lease expires.
2. Releasing keeps the row with the holder's id: the next taker sees who ran the last turn,
   and when that was another host it drops its cached conversation and reloads it from the
   store (`forget`), so no host answers from a stale history.
3. The waiting side polls with a growing delay (50 ms to 1 s): waits are rare (two clients
   of one session on two hosts at the same moment), so no notification channel is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from oxydra.memory import Database, Memory

LEASE_SECS = 30.0


def _take(
    db: Database, session_id: str, holder: str, turn_id: str, until: float, now: float
) -> tuple[bool, str | None]:
    """(taken?, previous holder) in one transaction."""
    with db.claim() as conn:
        row = conn.execute(
            "SELECT holder, lease_until FROM session_leases WHERE session_id = ?", (session_id,)
        ).fetchone()
        if row is not None and row[1] is not None and row[1] >= now and row[0] != holder:
            return False, row[0]
        conn.execute(
            "INSERT INTO session_leases(session_id, holder, turn_id, lease_until) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET holder = "
            "excluded.holder, turn_id = excluded.turn_id, lease_until = excluded.lease_until "
            "WHERE session_leases.lease_until IS NULL OR session_leases.lease_until < ? "
            "OR session_leases.holder = excluded.holder",
            (session_id, holder, turn_id, until, now),
        )
        won = conn.execute(
            "SELECT holder FROM session_leases WHERE session_id = ?", (session_id,)
        ).fetchone()
        return bool(won and won[0] == holder), (row[0] if row else None)


def _renew(db: Database, session_id: str, holder: str, until: float) -> None:
    with db.write() as conn:
        conn.execute(
            "UPDATE session_leases SET lease_until = ? WHERE session_id = ? AND holder = ?",
            (until, session_id, holder),
        )


def _release(db: Database, session_id: str, holder: str) -> None:
    with db.write() as conn:
        conn.execute(
            "UPDATE session_leases SET lease_until = NULL, turn_id = NULL "
            "WHERE session_id = ? AND holder = ?",
            (session_id, holder),
        )


class TurnLeases:
    """Turn leases over the memory database (see the module doc).

    Args:
        memory: the shared store.
        holder: this host's id (unique per process).
        forget: drops a session's cached conversation (the runtime's `forget`).
        lease_secs: how long a lease lives without renewal.
    """

    def __init__(
        self,
        memory: Memory,
        holder: str,
        forget: Callable[[str], object] | None = None,
        *,
        lease_secs: float = LEASE_SECS,
    ) -> None:
        self.memory = memory
        self.holder = holder
        self._forget = forget
        self.lease_secs = lease_secs

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str, turn_id: str) -> AsyncIterator[None]:
        """Wait for the session's lease, hold (renewing) it for the block, release it."""
        delay = 0.05
        while True:
            now = time.time()
            taken, previous = await self.memory.call(
                _take, session_id, self.holder, turn_id, now + self.lease_secs, now
            )
            if taken:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        if previous not in (None, self.holder) and self._forget is not None:
            self._forget(session_id)
        renewer = asyncio.create_task(self._renew(session_id), name=f"lease-{session_id}")
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await asyncio.shield(self.memory.call(_release, session_id, self.holder))

    async def _renew(self, session_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_secs / 3)
            until = time.time() + self.lease_secs
            await self.memory.call(_renew, session_id, self.holder, until)
