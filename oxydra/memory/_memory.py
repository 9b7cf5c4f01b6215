"""The memory store: its sync core (`MemoryStore`), its worker thread and its async facade.

`Memory.open` / `Memory.from_config` start one worker thread and open the `MemoryStore` on
it (migrations, embedder, vector index); every method runs there, so nothing here blocks the
loop. The runtime uses the conversation log, scratchpad, summaries, search and notes; tables
a higher layer owns (the gateway's, the scheduler's) run their SQL through `Memory.call`.
Everything else the store can do is its sync core (`MemoryStore`), for tests and tools,
used directly from one thread.

The worker: SQLite connections and the usearch index belong to one thread; funnelling every
call through a single worker makes it the only writer of this process, keeps the event loop
free while SQLite waits on fsync or a lock and while the embedder runs, and serialises
calls in the order they were awaited. A call whose awaiting task is cancelled still runs
to completion on the worker (its transaction commits or rolls back whole).

Provenance crosses here (the worker thread does not see the caller's context variables):
a note stored during a tool call keeps the call's `writing_label()`, and labelled hits a
search returns are reported with `note_read`, so the tool result that shows them is
labelled too (docs/taint.md).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Concatenate, ParamSpec, TypeVar

from oxydra.config.schema import MemoryConfig, RetrievalConfig
from oxydra.core import ConfigError, Label, MemoryStoreError, Message
from oxydra.core.provenance import merge, note_read, writing_label
from oxydra.memory._chunks import Changes, ChunkRow, conversation_rows, stamp_rows
from oxydra.memory._db import Database, migrate
from oxydra.memory._events import EventLog, NoteBook
from oxydra.memory._retrieval import RetrievalIndex
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
from oxydra.memory._vectors import Embedder, HashedEmbedder, create_embedder

P = ParamSpec("P")
T = TypeVar("T")

# ---- the sync core ---------------------------------------------------------------

DEFAULT_DB_NAME = "memory.db"


def index_path_for(db_path: Path) -> Path:
    """Where the vector index of a database lives: `<db>.usearch` beside it."""
    return db_path.with_name(db_path.name + ".usearch")


def resolve_db_path(config: MemoryConfig, workspace_root: Path | None = None) -> Path:
    """The database file for a config: `db_path` (relative to the workspace root), else
    `<workspace_root or cwd>/.oxydra/memory.db`.

    Raises:
        ConfigError: a remote (libSQL/Turso) database is configured; it is not supported.
    """
    if config.remote_url:
        raise ConfigError(
            "a remote memory database (memory.remote_url) is not supported",
            key="memory.remote_url",
            hint="remove remote_url; memory is stored in a local SQLite file",
        )
    root = workspace_root if workspace_root is not None else Path.cwd()
    if config.db_path:
        path = Path(config.db_path).expanduser()
        return path if path.is_absolute() else root / path
    return root / ".oxydra" / DEFAULT_DB_NAME


class MemoryStore:
    """The memory database and everything over it (sync; use from one thread).

    Args:
        path: the SQLite file (created with its directory when missing), or an open
            `PgDatabase` (the PostgreSQL backend; it is closed with the store).
        embedder: makes vectors; the hashed embedder when None.
        retrieval: default top_k and fusion weights.
        busy_timeout_ms: how long a write waits for another process's lock.
        index_path: the vector index file; `<path>.usearch` when None.
        schemas: migration packages of the other owners of tables in this file (the
            gateway's, the scheduler's), applied with the store's own.

    Attributes:
        events: sessions, events, state, summaries, scratchpad (`EventLog`).
        retrieval: chunks and hybrid search (`RetrievalIndex`).
        notes: per-user notes (`NoteBook`).
        schema_version: the database's schema version after migration.

    Raises:
        MemoryStoreError: the file is corrupt, locked, unwritable or from a newer version.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | Database,
        *,
        embedder: Embedder | None = None,
        retrieval: RetrievalConfig | None = None,
        busy_timeout_ms: int = 5000,
        index_path: Path | None = None,
        schemas: Sequence[str] = (),
    ) -> None:
        if isinstance(path, Database):  # an open PostgreSQL database (`_pg.PgDatabase`)
            self.db = path
            self.path = Path(str(path.path))
        else:
            self.path = Path(path)
            self.db = Database(self.path, busy_timeout_ms=busy_timeout_ms)
        try:
            self.schema_version = self._migrate(schemas)
            self.events = EventLog(self.db)
            self.retrieval = RetrievalIndex(
                self.db,
                embedder or HashedEmbedder(),
                index_path or index_path_for(self.path),
                retrieval,
            )
            self.notes = NoteBook(self.db, self.events, self.retrieval)
        except BaseException:
            self.db.close()
            raise

    def _migrate(self, schemas: Sequence[str]) -> int:
        if self.db.dialect == "postgres":
            from oxydra.memory._pgmigrate import migrate_pg

            return migrate_pg(self.db, schemas)  # type: ignore[arg-type]
        return migrate(self.db, schemas=schemas)

    def append_event(
        self,
        session_id: str,
        message: Message,
        *,
        sequence: int | None = None,
        index: bool = True,
    ) -> int:
        """Store a message (media blanked) and index its text; return its sequence.

        The event and its chunks are written in one transaction. `sequence` defaults to
        the last one + 1; a given one must be above the last.

        Raises:
            MemoryStoreError: unknown session, sequence not increasing, database failure.
        """
        return self.append_events(session_id, [message], first_sequence=sequence, index=index)[0]

    def append_events(
        self,
        session_id: str,
        messages: Sequence[Message],
        *,
        first_sequence: int | None = None,
        index: bool = True,
    ) -> list[int]:
        """Store several messages in one transaction; return their sequences."""
        prepared = [conversation_rows(session_id, m) if index else [] for m in messages]
        self.retrieval.writer.embed_rows([row for rows in prepared for row in rows])
        changes = Changes()
        sequences: list[int] = []
        with self.db.write() as conn:
            for offset, (message, rows) in enumerate(zip(messages, prepared, strict=True)):
                wanted = None if first_sequence is None else first_sequence + offset
                sequence = self.events.insert_event(conn, session_id, message, wanted)
                sequences.append(sequence)
                changes = changes.merge(self._index_rows(conn, rows, sequence))
        self.retrieval.apply(changes)
        return sequences

    def _index_rows(self, conn: sqlite3.Connection, rows: list[ChunkRow], sequence: int) -> Changes:
        if not rows:
            return Changes()
        stamp_rows(rows, sequence)
        return self.retrieval.writer.write_rows(conn, rows, dedup=True)

    def delete_session(self, session_id: str) -> bool:
        """Delete a session for good: its events, state, summaries, chunks, their FTS rows
        and vectors (the index too, not only its table). True when it existed."""
        with self.db.write() as conn:
            changes = self.retrieval.writer.delete_where(conn, "c.session_id = ?", (session_id,))
            cursor = conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            existed = cursor.rowcount > 0
        self.retrieval.apply(changes)
        return existed

    def close(self) -> None:
        """Save the vector index and close the database."""
        try:
            self.retrieval.close()
        finally:
            self.db.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ---- the worker thread -----------------------------------------------------------


class StoreWorker:
    """A single-thread executor with an async `run`."""

    def __init__(self, name: str = "oxydra-memory") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._closed = False

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` on the worker thread and await its result.

        Raises:
            MemoryStoreError: the worker was shut down.
        """
        if self._closed:
            raise MemoryStoreError("the memory store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        """Stop accepting calls; wait for the running one."""
        self._closed = True
        self._executor.shutdown(wait=True)

    @property
    def closed(self) -> bool:
        """Whether `shutdown` was called."""
        return self._closed


# ---- the async facade ------------------------------------------------------------


class Memory:
    """Conversation memory for the runtime (async; one worker thread per instance).

    Create with `await Memory.open(path)` or `await Memory.from_config(config)`, and
    `await memory.close()` (or `async with`) when done.

    Attributes:
        path: the database file (a `postgresql://host:port/db` label on PostgreSQL).
        dialect: `"sqlite"` (one host) or `"postgres"` (hosts may share the store).
    """

    def __init__(self, store: MemoryStore, worker: StoreWorker) -> None:
        self._store = store
        self._worker = worker
        self.path = store.path
        self.dialect = store.db.dialect

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str] | Database,
        *,
        embedder: Embedder | None = None,
        retrieval: RetrievalConfig | None = None,
        busy_timeout_ms: int = 5000,
        schemas: Sequence[str] = (),
    ) -> Memory:
        """Open (creating or migrating) the database at `path` (or an open `PgDatabase`);
        `schemas` are the migration packages of the other owners of its tables (the
        gateway's, the scheduler's).

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

        The bundled model directory is assembled under `<db dir>/models/`. With
        `backend = "postgres"` the store is the PostgreSQL database at `postgres_url`.

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

    def notifications(self, channel: str) -> AsyncIterator[str | None]:
        """What other hosts `pg_notify` on `channel` (PostgreSQL only; `_pgbus.listen`).

        Raises:
            MemoryStoreError: the store is SQLite (one host: nothing to listen to).
        """
        from oxydra.memory._pg import PgDatabase

        db = self._store.db
        if not isinstance(db, PgDatabase):
            raise MemoryStoreError("notifications need the PostgreSQL backend")
        from oxydra.memory._pgbus import listen

        return listen(db.url, db.password, channel)

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
    where: Path | Database = path
    if config.backend == "postgres":
        from oxydra.memory._pg import connect_configured

        where = connect_configured(config, os.environ)
    return MemoryStore(where, embedder=chosen, retrieval=config.retrieval, schemas=schemas)
