"""`Memory`: the runtime's async entry to the store (conversation log and state).

`Memory.open` / `Memory.from_config` start one worker thread, open the `MemoryStore` on
it (migrations, embedder, vector index) and hand out three facades sharing that thread:
`Memory` itself (sessions, events, state, summaries, scratchpad), `memory.retrieval`
(`MemoryRetrieval`) and `memory.sessions` (`SessionStore`). Nothing here blocks the loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from oxydra.config.schema import MemoryConfig, RetrievalConfig
from oxydra.core import Label, Message
from oxydra.memory._db import Database
from oxydra.memory._embed import Embedder
from oxydra.memory._fastembed import create_embedder
from oxydra.memory._memory_retrieval import MemoryRetrieval
from oxydra.memory._session_store import SessionStore
from oxydra.memory._store import MemoryStore, resolve_db_path
from oxydra.memory._types import (
    RestoredSession,
    ScratchpadState,
    ScratchpadWrite,
    SessionRecord,
    StoredEvent,
    SummaryState,
)
from oxydra.memory._worker import StoreWorker

P = ParamSpec("P")
T = TypeVar("T")


class Memory:
    """Conversation memory for the runtime (async; one worker thread per instance).

    Create with `await Memory.open(path)` or `await Memory.from_config(config)`, and
    `await memory.close()` (or `async with`) when done.

    Attributes:
        path: the database file.
        retrieval: hybrid search, chunks and notes.
        sessions: gateway sessions and channel mappings.
    """

    def __init__(self, store: MemoryStore, worker: StoreWorker) -> None:
        self._store = store
        self._worker = worker
        self.path = store.path
        self.retrieval = MemoryRetrieval(store, worker)
        self.sessions = SessionStore(store, worker)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        retrieval: RetrievalConfig | None = None,
        busy_timeout_ms: int = 5000,
    ) -> Memory:
        """Open (creating or migrating) the database at `path`.

        Raises:
            MemoryStoreError: the file is corrupt, locked, unwritable or too new.
        """
        worker = StoreWorker()
        try:
            store = await worker.run(
                MemoryStore, path, embedder=embedder, retrieval=retrieval,
                busy_timeout_ms=busy_timeout_ms,
            )  # fmt: skip
        except BaseException:
            worker.shutdown()
            raise
        return cls(store, worker)

    @classmethod
    async def from_config(
        cls,
        config: MemoryConfig,
        *,
        workspace_root: Path | None = None,
        embedder: Embedder | None = None,
    ) -> Memory:
        """Open the database a `[memory]` config names, with its embedding backend.

        The bundled model directory is assembled under `<db dir>/models/`.

        Raises:
            ConfigError: remote database configured, or a broken `embedding_model_path`.
            MemoryStoreError: as for `open`.
        """
        path = resolve_db_path(config, workspace_root)
        worker = StoreWorker()
        try:
            store = await worker.run(_open_configured, path, config, embedder)
        except BaseException:
            worker.shutdown()
            raise
        return cls(store, worker)

    async def close(self) -> None:
        """Save the vector index, close the database and stop the worker (idempotent)."""
        if self._worker.closed:
            return
        try:
            await self._worker.run(self._store.close)
        finally:
            self._worker.shutdown()

    async def __aenter__(self) -> Memory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def call(
        self, fn: Callable[Concatenate[Database, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(database, *args, **kwargs)` on the store's worker thread.

        The seam for tables a higher layer owns (the scheduler's): their SQL runs on the
        same thread and connection as everything else, so this process keeps one writer.
        """
        return await self._worker.run(fn, self._store.db, *args, **kwargs)

    # -- sessions ---------------------------------------------------------------------

    async def create_session(
        self, session_id: str, *, user_id: str | None = None, agent_identity: str | None = None
    ) -> SessionRecord:
        """Create the session or return the existing one (same user)."""
        return await self._worker.run(
            self._store.events.create_session, session_id, user_id=user_id,
            agent_identity=agent_identity,
        )  # fmt: skip

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None."""
        return await self._worker.run(self._store.events.get_session, session_id)

    async def list_sessions(self, user_id: str, *, limit: int = 100) -> list[SessionRecord]:
        """The user's sessions, most recently updated first."""
        return await self._worker.run(self._store.events.list_sessions, user_id, limit=limit)

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session with everything in it."""
        return await self._worker.run(self._store.events.delete_session, session_id)

    async def restore_session(self, session_id: str) -> RestoredSession | None:
        """The session, all its events and its current summary, or None."""
        return await self._worker.run(self._store.events.restore_session, session_id)

    # -- events -----------------------------------------------------------------------

    async def append_event(
        self, session_id: str, message: Message, *, sequence: int | None = None, index: bool = True
    ) -> int:
        """Store (media blanked) and index one message; return its sequence."""
        return await self._worker.run(
            self._store.append_event, session_id, message, sequence=sequence, index=index
        )

    async def append_events(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        first_sequence: int | None = None,
        index: bool = True,
    ) -> list[int]:
        """Store and index several messages in one transaction; return their sequences."""
        return await self._worker.run(
            self._store.append_events, session_id, messages, first_sequence=first_sequence,
            index=index,
        )  # fmt: skip

    async def recall(
        self, session_id: str, *, limit: int | None = None, after_sequence: int = 0
    ) -> list[StoredEvent]:
        """Stored events in ascending order (the last `limit` when given)."""
        return await self._worker.run(
            self._store.events.recall, session_id, limit=limit, after_sequence=after_sequence
        )

    async def last_sequence(self, session_id: str) -> int:
        """The highest stored sequence (0 when none)."""
        return await self._worker.run(self._store.events.last_sequence, session_id)

    # -- state, scratchpad, summaries -------------------------------------------------

    async def get_state(self, session_id: str, key: str) -> Any:
        """A JSON value of the session's state, or None."""
        return await self._worker.run(self._store.events.get_state, session_id, key)

    async def set_state(self, session_id: str, key: str, value: Any) -> None:
        """Store a JSON value in the session's state (None removes it)."""
        await self._worker.run(self._store.events.set_state, session_id, key, value)

    async def read_scratchpad(self, session_id: str) -> ScratchpadState:
        """The session's scratchpad."""
        return await self._worker.run(self._store.events.read_scratchpad, session_id)

    async def write_scratchpad(self, session_id: str, items: Sequence[str]) -> ScratchpadWrite:
        """Replace the scratchpad (limits: 1-32 items of 1-240 chars, ≤ 8 KiB)."""
        return await self._worker.run(self._store.events.write_scratchpad, session_id, items)

    async def clear_scratchpad(self, session_id: str) -> bool:
        """Empty the scratchpad; True when it held items."""
        return await self._worker.run(self._store.events.clear_scratchpad, session_id)

    async def load_summary(self, session_id: str) -> SummaryState | None:
        """The current rolling summary, or None."""
        return await self._worker.run(self._store.events.load_summary, session_id)

    async def save_summary(
        self,
        session_id: str,
        *,
        expected_epoch: int,
        summary: str,
        upper_sequence: int,
        lower_sequence: int = 1,
        metadata: dict[str, Any] | None = None,
        label: Label | None = None,
    ) -> SummaryState | None:
        """Store a summary of a range of events (with its label); None when stale."""
        return await self._worker.run(
            self._store.events.save_summary, session_id, expected_epoch=expected_epoch,
            summary=summary, upper_sequence=upper_sequence, lower_sequence=lower_sequence,
            metadata=metadata, label=label,
        )  # fmt: skip

    async def summary_history(self, session_id: str) -> list[SummaryState]:
        """Every summary of the session, oldest first."""
        return await self._worker.run(self._store.events.summary_history, session_id)


def _open_configured(path: Path, config: MemoryConfig, embedder: Embedder | None) -> MemoryStore:
    chosen = embedder or create_embedder(config, cache_dir=path.parent / "models")
    return MemoryStore(path, embedder=chosen, retrieval=config.retrieval)
