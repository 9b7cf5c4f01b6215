"""What the gateway needs from a session store, and that store over the memory database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from oxydra.gateway._table import AuditEntry, SessionRecord, SessionTable
from oxydra.memory import Database, Memory, StoredEvent

P = ParamSpec("P")
T = TypeVar("T")


class SessionRecords(Protocol):
    """Durable gateway sessions: survive a restart of `vm`."""

    async def create(self, record: SessionRecord) -> None:
        """Store a new session."""
        ...

    async def create_many(
        self, records: list[SessionRecord], audit: list[AuditEntry] | None = None
    ) -> set[str]:
        """Store new sessions together; returns the ids stored (a taken id is skipped).

        The `audit` entries of the stored sessions are written in the same transaction.
        """
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """A session by id, or None."""
        ...

    async def list_sessions(
        self, user_id: str, include_archived: bool = False
    ) -> list[SessionRecord]:
        """A user's sessions, most recently active first."""
        ...

    async def find_by_prefix(self, user_id: str, prefix: str) -> list[SessionRecord]:
        """The user's sessions whose id is or starts with `prefix` (at most two: enough to
        tell a unique match from an ambiguous one)."""
        ...

    async def count_active(self, user_id: str) -> int:
        """The user's non-archived top-level sessions."""
        ...

    async def touch(self, session_id: str, turns: int = 0, cost_usd: float | None = None) -> None:
        """Mark a session active now and add turns and their cost (after turns)."""
        ...

    async def update(
        self, session_id: str, audit: AuditEntry, **fields: object
    ) -> SessionRecord | None:
        """Rename / archive / unarchive, recorded in the audit log; None if unknown."""
        ...

    async def delete(self, session_ids: list[str], audit: AuditEntry) -> int:
        """Delete session records (not their conversations: see `SessionData`)."""
        ...

    async def children(self, session_id: str) -> list[str]:
        """Every descendant (sub-agent) session, deepest first."""
        ...

    async def audit(self, entry: AuditEntry) -> None:
        """Record one lifecycle step."""
        ...

    async def expired(self, days: int) -> list[SessionRecord]:
        """Archived top-level sessions idle more than `days` days (retention)."""
        ...

    async def audit_log(self, user_id: str) -> list[AuditEntry]:
        """The user's lifecycle steps, newest first."""
        ...


class SessionData(Protocol):
    """A session's conversation: read for export, removed for good on delete."""

    async def recall(self, session_id: str) -> list[StoredEvent]:
        """The session's stored events, oldest first."""
        ...

    async def delete_session(self, session_id: str) -> bool:
        """Remove the session's events and everything indexed from them."""
        ...


def _on_table(
    method: Callable[Concatenate[SessionTable, P], T],
) -> Callable[Concatenate[Database, P], T]:
    def run(db: Database, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return method(SessionTable(db), *args, **kwargs)

    return run


class MemorySessionRecords:
    """`SessionRecords` in the memory database, on its worker thread (`Memory.call`)."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    async def create(self, record: SessionRecord) -> None:
        """Store a new session."""
        await self.memory.call(
            _on_table(SessionTable.create),
            record.session_id,
            record.user_id,
            agent_name=record.agent_name,
            display_name=record.display_name,
            channel_origin=record.channel_origin,
            parent_session_id=record.parent_session_id,
        )

    async def create_many(
        self, records: list[SessionRecord], audit: list[AuditEntry] | None = None
    ) -> set[str]:
        """Store new sessions in one transaction; returns the ids stored."""
        rows = [
            (r.session_id, r.user_id, r.agent_name, r.display_name, r.channel_origin,
             r.parent_session_id)
            for r in records
        ]  # fmt: skip
        return await self.memory.call(_on_table(SessionTable.create_many), rows, audit)

    async def get(self, session_id: str) -> SessionRecord | None:
        """A session by id, or None."""
        return await self.memory.call(_on_table(SessionTable.get), session_id)

    async def list_sessions(
        self, user_id: str, include_archived: bool = False
    ) -> list[SessionRecord]:
        """The user's sessions, most recently active first."""
        return await self.memory.call(
            _on_table(SessionTable.list_sessions),
            user_id,
            include_archived=include_archived,
            include_subagents=True,
        )

    async def find_by_prefix(self, user_id: str, prefix: str) -> list[SessionRecord]:
        """See `SessionRecords.find_by_prefix`: one indexed query, not a scan of the list."""
        return await self.memory.call(_on_table(SessionTable.find_by_prefix), user_id, prefix)

    async def count_active(self, user_id: str) -> int:
        """See `SessionRecords.count_active`."""
        return await self.memory.call(_on_table(SessionTable.count_active), user_id)

    async def touch(self, session_id: str, turns: int = 0, cost_usd: float | None = None) -> None:
        """Mark the session active now and add turns and their cost."""
        await self.memory.call(_on_table(SessionTable.touch), session_id, turns, cost_usd)

    async def update(
        self, session_id: str, audit: AuditEntry, **fields: object
    ) -> SessionRecord | None:
        """See `SessionRecords.update`."""
        return await self.memory.call(_on_table(SessionTable.update), session_id, audit, **fields)

    async def delete(self, session_ids: list[str], audit: AuditEntry) -> int:
        """See `SessionRecords.delete`."""
        return await self.memory.call(_on_table(SessionTable.delete), session_ids, audit)

    async def children(self, session_id: str) -> list[str]:
        """See `SessionRecords.children`."""
        return await self.memory.call(_on_table(SessionTable.children), session_id)

    async def audit(self, entry: AuditEntry) -> None:
        """See `SessionRecords.audit`."""
        await self.memory.call(_on_table(SessionTable.audit), entry)

    async def expired(self, days: int) -> list[SessionRecord]:
        """See `SessionRecords.expired`."""
        return await self.memory.call(_on_table(SessionTable.expired), days)

    async def audit_log(self, user_id: str) -> list[AuditEntry]:
        """See `SessionRecords.audit_log`."""
        return await self.memory.call(_on_table(SessionTable.audit_log), user_id)
