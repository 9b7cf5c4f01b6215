"""`Memory`: the one async facade of the store, exposing what the layers above use.

`Memory.open` / `Memory.from_config` start one worker thread and open the `MemoryStore` on
it (migrations, embedder, vector index); every method runs there, so nothing here blocks the
loop. The runtime uses the conversation log, scratchpad, summaries, search and notes; tables
a higher layer owns (the gateway's, the scheduler's) run their SQL through `Memory.call`.
Everything else the store can do is its sync core (`MemoryStore`), for tests and tools.

Provenance crosses here (the worker thread does not see the caller's context variables):
a note stored during a tool call keeps the call's `writing_label()`, and labelled hits a
search returns are reported with `note_read`, so the tool result that shows them is
labelled too (docs/taint.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Concatenate, ParamSpec, TypeVar

from oxydra.config.schema import MemoryConfig, RetrievalConfig
from oxydra.core import Label, Message
from oxydra.core.provenance import merge, note_read, writing_label
from oxydra.memory._db import Database
from oxydra.memory._embed import Embedder, create_embedder
from oxydra.memory._store import MemoryStore, resolve_db_path
from oxydra.memory._types import (
    Note,
    RestoredSession,
    ScratchpadState,
    ScratchpadWrite,
    SearchHit,
    SearchMode,
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
    """

    def __init__(self, store: MemoryStore, worker: StoreWorker) -> None:
        self._store = store
        self._worker = worker
        self.path = store.path

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        retrieval: RetrievalConfig | None = None,
        busy_timeout_ms: int = 5000,
        schemas: Sequence[str] = (),
    ) -> Memory:
        """Open (creating or migrating) the database at `path`; `schemas` are the migration
        packages of the other owners of its tables (the gateway's, the scheduler's).

        Raises:
            MemoryStoreError: the file is corrupt, locked, unwritable or too new.
        """
        worker = StoreWorker()
        try:
            store = await worker.run(
                MemoryStore, path, embedder=embedder, retrieval=retrieval,
                busy_timeout_ms=busy_timeout_ms, schemas=schemas,
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
        schemas: Sequence[str] = (),
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
            store = await worker.run(_open_configured, path, config, embedder, schemas)
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

    # -- the conversation log ----------------------------------------------------------

    async def create_session(self, session_id: str, *, user_id: str | None = None) -> None:
        """Create the session (a no-op when it exists for the same user)."""
        await self._worker.run(self._store.events.create_session, session_id, user_id=user_id)

    async def restore_session(self, session_id: str) -> RestoredSession | None:
        """The session, all its events and its current summary, or None."""
        return await self._worker.run(self._store.events.restore_session, session_id)

    async def append_events(
        self, session_id: str, messages: Sequence[Message], *, index: bool = True
    ) -> list[int]:
        """Store (media blanked) and index messages in one transaction; their sequences."""
        return await self._worker.run(self._store.append_events, session_id, messages, index=index)

    async def recall(self, session_id: str) -> list[StoredEvent]:
        """The session's stored events, oldest first."""
        return await self._worker.run(self._store.events.recall, session_id)

    async def delete_session(self, session_id: str) -> bool:
        """Delete the session with everything indexed from it; True when it existed."""
        return await self._worker.run(self._store.delete_session, session_id)

    async def save_summary(
        self,
        session_id: str,
        *,
        expected_epoch: int,
        summary: str,
        upper_sequence: int,
        lower_sequence: int = 1,
        label: Label | None = None,
    ) -> SummaryState | None:
        """Store a summary of a range of events (with its label); None when stale."""
        return await self._worker.run(
            self._store.events.save_summary, session_id, expected_epoch=expected_epoch,
            summary=summary, upper_sequence=upper_sequence, lower_sequence=lower_sequence,
            label=label,
        )  # fmt: skip

    # -- the scratchpad ------------------------------------------------------------------

    async def read_scratchpad(self, session_id: str) -> ScratchpadState:
        """The session's scratchpad."""
        return await self._worker.run(self._store.events.read_scratchpad, session_id)

    async def write_scratchpad(self, session_id: str, items: Sequence[str]) -> ScratchpadWrite:
        """Replace the scratchpad (limits: 1-32 items of 1-240 chars, ≤ 8 KiB)."""
        return await self._worker.run(self._store.events.write_scratchpad, session_id, items)

    async def clear_scratchpad(self, session_id: str) -> bool:
        """Empty the scratchpad; True when it held items."""
        return await self._worker.run(self._store.events.clear_scratchpad, session_id)

    # -- search and notes ----------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        session_ids: Sequence[str] | None = None,
        tags: Sequence[str] = (),
        top_k: int | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        """The best chunks for `query` within the user/session/tag filter (see
        `RetrievalIndex.search`; the query is embedded on the worker thread too)."""
        hits = await self._worker.run(
            self._store.retrieval.search, query, user_id=user_id, session_ids=session_ids,
            tags=tags, top_k=top_k, mode=mode,
        )  # fmt: skip
        for hit in hits:
            note_read(hit.label)
        return hits

    async def store_note(
        self,
        user_id: str,
        content: str,
        tags: Sequence[str] | None = None,
        label: Label | None = None,
    ) -> Note:
        """Save a note for the user; it carries `label` and the current call's label."""
        label = merge(label, writing_label())
        return await self._worker.run(self._store.notes.store_note, user_id, content, tags, label)

    async def update_note(
        self,
        user_id: str,
        note_id: str,
        content: str,
        tags: Sequence[str] | None = None,
        label: Label | None = None,
    ) -> Note | None:
        """Replace the user's note (None when the user has no such note), relabelled."""
        label = merge(label, writing_label())
        return await self._worker.run(
            self._store.notes.update_note, user_id, note_id, content, tags, label
        )

    async def delete_note(self, user_id: str, note_id: str) -> bool:
        """Delete the user's note (False when the user has no such note)."""
        return await self._worker.run(self._store.notes.delete_note, user_id, note_id)


def _open_configured(
    path: Path, config: MemoryConfig, embedder: Embedder | None, schemas: Sequence[str]
) -> MemoryStore:
    chosen = embedder or create_embedder(config, cache_dir=path.parent / "models")
    return MemoryStore(path, embedder=chosen, retrieval=config.retrieval, schemas=schemas)
