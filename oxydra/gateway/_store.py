"""What the gateway needs from a session store (the memory layer provides it)."""

from __future__ import annotations

from typing import Protocol

import msgspec


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

    async def get(self, session_id: str) -> SessionRecord | None:
        """A session by id, or None."""
        ...

    async def list(self, user_id: str, include_archived: bool = False) -> list[SessionRecord]:
        """A user's sessions, most recently active first."""
        ...

    async def touch(self, session_id: str) -> None:
        """Mark a session active now (after each turn)."""
        ...
