"""What the gateway needs from a session store (the memory layer provides it)."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from oxydra.memory import SessionStore


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A persisted gateway session."""

    session_id: str
    user_id: str
    agent_name: str = "default"
    display_name: str | None = None
    channel_origin: str = "tui"
    parent_session_id: str | None = None
    created_at: str = ""
    last_active_at: str = ""
    archived: bool = False


class SessionRecords(Protocol):
    """Durable gateway sessions: survive a restart of `vm`."""

    async def create(self, record: SessionRecord) -> None:
        """Store a new session."""
        ...

    async def create_many(self, records: list[SessionRecord]) -> set[str]:
        """Store new sessions together; returns the ids stored (a taken id is skipped)."""
        ...

    async def count_live(self, user_id: str) -> int:
        """The user's non-archived top-level sessions (what `max_sessions_per_user` counts)."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """A session by id, or None."""
        ...

    async def list(self, user_id: str, include_archived: bool = False) -> list[SessionRecord]:
        """A user's sessions, most recently active first."""
        ...

    async def touch(self, session_id: str) -> None:
        """Mark a session active now (after each turn)."""
        ...


class MemorySessionRecords:
    """`SessionRecords` over the memory layer's `SessionStore` (the `gateway_sessions` table)."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def create(self, record: SessionRecord) -> None:
        """Store a new session."""
        await self.store.create(
            record.session_id,
            record.user_id,
            agent_name=record.agent_name,
            display_name=record.display_name,
            channel_origin=record.channel_origin,
            parent_session_id=record.parent_session_id,
        )

    async def create_many(self, records: list[SessionRecord]) -> set[str]:
        """Store new sessions in one transaction; returns the ids stored."""
        rows = [
            (r.session_id, r.user_id, r.agent_name, r.display_name, r.channel_origin)
            for r in records
        ]
        return await self.store.create_many(rows)

    async def count_live(self, user_id: str) -> int:
        """The user's non-archived top-level sessions."""
        return await self.store.count_active(user_id)

    async def get(self, session_id: str) -> SessionRecord | None:
        """A session by id, or None."""
        found = await self.store.get(session_id)
        return None if found is None else _record(found)

    async def list(self, user_id: str, include_archived: bool = False) -> list[SessionRecord]:
        """The user's sessions, most recently active first."""
        rows = await self.store.list_sessions(
            user_id, include_archived=include_archived, include_subagents=True
        )
        return [_record(r) for r in rows]

    async def touch(self, session_id: str) -> None:
        """Mark the session active now."""
        await self.store.touch(session_id)


def _record(row: Any) -> SessionRecord:
    return msgspec.convert(msgspec.structs.asdict(row), SessionRecord)
