"""`MemoryStore`: the synchronous core, one open database with all its parts.

Use it directly from one thread (tests, CLI tools); the runtime uses the async facades
(`Memory`), which runs it on its worker thread.
Opening migrates the schema, adopts the embedder (re-embedding when it changed) and
loads or rebuilds the vector index.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from oxydra.config.schema import MemoryConfig, RetrievalConfig
from oxydra.core import ConfigError, Message
from oxydra.memory._chunks import Changes, ChunkRow, conversation_rows, stamp_rows
from oxydra.memory._db import Database
from oxydra.memory._embed import Embedder, HashedEmbedder
from oxydra.memory._events import EventLog
from oxydra.memory._migrate import migrate
from oxydra.memory._notes import NoteBook
from oxydra.memory._retrieval import RetrievalIndex

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
        path: the SQLite file (created with its directory when missing).
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
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        retrieval: RetrievalConfig | None = None,
        busy_timeout_ms: int = 5000,
        index_path: Path | None = None,
        schemas: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        self.db = Database(self.path, busy_timeout_ms=busy_timeout_ms)
        try:
            self.schema_version = migrate(self.db, schemas=schemas)
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
