"""`SessionStore`: the gateway's persistent session list (async facade)."""

from __future__ import annotations

from oxydra.memory._store import MemoryStore
from oxydra.memory._types import GatewaySession
from oxydra.memory._worker import StoreWorker


class SessionStore:
    """Gateway sessions and channel mappings, persisted in the memory database.

    Obtain it as `memory.sessions`; every method runs on the store's worker thread.
    See `GatewaySessionTable` for the semantics of each call.
    """

    def __init__(self, store: MemoryStore, worker: StoreWorker) -> None:
        self._table = store.sessions
        self._worker = worker

    async def create(
        self,
        session_id: str,
        user_id: str,
        *,
        agent_name: str = "default",
        display_name: str | None = None,
        channel_origin: str = "tui",
        parent_session_id: str | None = None,
    ) -> GatewaySession:
        """Record a new session (MemoryStoreError when the id is taken)."""
        return await self._worker.run(
            self._table.create, session_id, user_id, agent_name=agent_name,
            display_name=display_name, channel_origin=channel_origin,
            parent_session_id=parent_session_id,
        )  # fmt: skip

    async def create_many(self, rows: list[tuple[str, str, str, str | None, str]]) -> set[str]:
        """Record new sessions in one transaction; returns the ids created."""
        return await self._worker.run(self._table.create_many, rows)

    async def get_or_create(
        self, session_id: str, user_id: str, *, channel_origin: str = "tui"
    ) -> GatewaySession:
        """The session, created with defaults when missing."""
        return await self._worker.run(
            self._table.get_or_create, session_id, user_id, channel_origin=channel_origin
        )

    async def get(self, session_id: str) -> GatewaySession | None:
        """The session, or None."""
        return await self._worker.run(self._table.get, session_id)

    async def list_sessions(
        self,
        user_id: str,
        *,
        include_archived: bool = False,
        include_subagents: bool = False,
        limit: int = 1000,
    ) -> list[GatewaySession]:
        """The user's sessions, most recently active first."""
        return await self._worker.run(
            self._table.list_sessions, user_id, include_archived=include_archived,
            include_subagents=include_subagents, limit=limit,
        )  # fmt: skip

    async def find_by_prefix(
        self, user_id: str, prefix: str, *, limit: int = 2
    ) -> list[GatewaySession]:
        """The user's sessions whose id starts with `prefix` (exact match first)."""
        return await self._worker.run(self._table.find_by_prefix, user_id, prefix, limit=limit)

    async def count_active(self, user_id: str) -> int:
        """Non-archived top-level sessions of the user."""
        return await self._worker.run(self._table.count_active, user_id)

    async def touch(self, session_id: str) -> bool:
        """Mark the session active now; False if unknown."""
        return await self._worker.run(self._table.touch, session_id)

    async def update_display_name(self, session_id: str, display_name: str | None) -> bool:
        """Rename the session; False if unknown."""
        return await self._worker.run(self._table.update_display_name, session_id, display_name)

    async def archive(self, session_id: str) -> bool:
        """Archive the session; False if unknown."""
        return await self._worker.run(self._table.archive, session_id)

    async def unarchive(self, session_id: str) -> bool:
        """Un-archive the session; False if unknown."""
        return await self._worker.run(self._table.unarchive, session_id)

    async def get_channel_mapping(self, channel_id: str, channel_context_id: str) -> str | None:
        """The session bound to an external chat context, or None."""
        return await self._worker.run(
            self._table.get_channel_mapping, channel_id, channel_context_id
        )

    async def set_channel_mapping(
        self, channel_id: str, channel_context_id: str, session_id: str
    ) -> None:
        """Bind an external chat context to a session (upsert)."""
        await self._worker.run(
            self._table.set_channel_mapping, channel_id, channel_context_id, session_id
        )
