"""Writing chunks: rows, their vectors and FTS entries, inside write transactions.

Rules (see `_retrieval` for the whole picture):

1. Texts are embedded before the write transaction, so the database lock is held for
   milliseconds, not for a model run.
2. A row is inserted, left alone (same `chunk_id`, session and content hash; only its
   metadata may be updated), or replaced: deleted and inserted under a new `chunk_key`.
   A key's vector therefore never changes, which is what lets the vector index be
   resynchronised by comparing key sets.
3. Every transaction that adds or removes vectors bumps `vector_generation` (once per
   call; `Changes.bumps` counts them when calls are merged into one transaction).
4. The FTS5 rows follow the `chunks` table through triggers (migration 0002).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from oxydra.core import Label, MemoryStoreError, Message, ToolArgumentsError
from oxydra.core.provenance import encode_label
from oxydra.memory._db import Database
from oxydra.memory._text import (
    chunk_id_for,
    chunk_windows,
    collapse_whitespace,
    content_hash,
    message_source,
    message_text,
    now_iso,
)
from oxydra.memory._types import ChunkInput, UpsertResult
from oxydra.memory._vectors import Embedder

_json = msgspec.json.Encoder()
BATCH = 500


class ChunkRow(msgspec.Struct, kw_only=True):
    """A chunk ready to be written: its input, digest and (once embedded) vector."""

    chunk_id: str
    session_id: str
    text: str
    digest: str
    metadata: dict[str, Any]
    sequence_start: int | None = None
    sequence_end: int | None = None
    source_uri: str | None = None
    note_id: str | None = None
    label: Label | None = None
    vector: Any = None


class Changes(msgspec.Struct, kw_only=True):
    """What a write transaction did to chunks, to replay on the index after commit."""

    added_keys: list[int] = []
    added_vectors: list[Any] = []
    removed_keys: list[int] = []
    generation: int | None = None
    bumps: int = 0
    inserted: int = 0
    replaced: int = 0
    unchanged: int = 0

    def merge(self, other: Changes) -> Changes:
        """Both sets of changes, as one transaction's."""
        return Changes(
            added_keys=self.added_keys + other.added_keys,
            added_vectors=self.added_vectors + other.added_vectors,
            removed_keys=self.removed_keys + other.removed_keys,
            generation=max(self.generation or 0, other.generation or 0) or None,
            bumps=self.bumps + other.bumps,
            inserted=self.inserted + other.inserted,
            replaced=self.replaced + other.replaced,
            unchanged=self.unchanged + other.unchanged,
        )

    def result(self) -> UpsertResult:
        """The counts for the caller."""
        return UpsertResult(
            inserted=self.inserted, replaced=self.replaced, unchanged=self.unchanged
        )


def row_from_input(chunk: ChunkInput) -> ChunkRow:
    """A `ChunkRow` for an `upsert_chunks` input (text must not be blank)."""
    if not chunk.text.strip():
        raise ToolArgumentsError(f"chunk {chunk.chunk_id!r} has no text")
    return ChunkRow(
        chunk_id=chunk.chunk_id, session_id=chunk.session_id, text=chunk.text,
        digest=content_hash(chunk.text), metadata=dict(chunk.metadata),
        sequence_start=chunk.sequence_start, sequence_end=chunk.sequence_end,
        source_uri=chunk.source_uri, note_id=chunk.note_id, label=chunk.label,
    )  # fmt: skip


class ChunkWriter:
    """Writes chunk rows and vectors for one database and embedder (sync; one thread)."""

    def __init__(self, db: Database, embedder: Embedder) -> None:
        self._db = db
        self._embedder = embedder

    def reembed(self) -> int:
        """Embed every chunk whose vector is missing or from another model; return count."""
        done = after = 0
        while True:
            rows = self._db.query(
                "SELECT c.chunk_key, c.chunk_text FROM chunks c "
                "LEFT JOIN chunks_vec v ON v.chunk_key = c.chunk_key "
                "WHERE c.chunk_key > ? AND (v.chunk_key IS NULL OR v.embedding_model != ?) "
                "ORDER BY c.chunk_key LIMIT ?",
                (after, self._embedder.name, BATCH),
            )
            if not rows:
                return done
            after = int(rows[-1][0])
            vectors = self._embedder.embed([row[1] for row in rows])
            with self._db.write() as conn:
                conn.executemany(
                    "INSERT INTO chunks_vec(chunk_key, embedding_blob, embedding_model) "
                    "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM chunks WHERE chunk_key = ?) "
                    "ON CONFLICT(chunk_key) DO UPDATE SET embedding_blob = "
                    "excluded.embedding_blob, embedding_model = excluded.embedding_model",
                    [
                        (row[0], blob(vector), self._embedder.name, row[0])
                        for row, vector in zip(rows, vectors, strict=True)
                    ],
                )
                bump_generation(conn)
            done += len(rows)

    def embed_rows(self, rows: Sequence[ChunkRow]) -> None:
        """Give each row without a vector its embedding (outside any transaction)."""
        pending = [row for row in rows if row.vector is None]
        for start in range(0, len(pending), BATCH):
            batch = pending[start : start + BATCH]
            vectors = self._embedder.embed([row.text for row in batch])
            for row, vector in zip(batch, vectors, strict=True):
                row.vector = vector

    def write_rows(
        self, conn: sqlite3.Connection, rows: Sequence[ChunkRow], *, dedup: bool = False
    ) -> Changes:
        """Write rows inside the caller's write transaction.

        With `dedup`, a row whose text already exists in its session is skipped
        (conversation indexing: a repeated "ok" is indexed once).
        """
        changes = Changes()
        users: dict[str, str | None] = {}
        for row in rows:
            if dedup and _has_digest(conn, row.session_id, row.digest):
                changes.unchanged += 1
                continue
            same, removed = self._reconcile(conn, row)
            if same:
                changes.unchanged += 1
                continue
            if removed is None:
                changes.inserted += 1
            else:
                changes.replaced += 1
                changes.removed_keys.append(removed)
            changes.added_keys.append(self._insert(conn, row, users))
            changes.added_vectors.append(row.vector)
        if changes.added_keys or changes.removed_keys:
            changes.generation = bump_generation(conn)
            changes.bumps = 1
        return changes

    def _reconcile(self, conn: sqlite3.Connection, row: ChunkRow) -> tuple[bool, int | None]:
        """(unchanged?, key deleted to make room) for a row against its stored version."""
        old = conn.execute(
            "SELECT chunk_key, content_hash, session_id, metadata_json, provenance_json "
            "FROM chunks WHERE chunk_id = ?",
            (row.chunk_id,),
        ).fetchone()
        if old is None:
            return False, None
        if old[1] != row.digest or old[2] != row.session_id:
            conn.execute("DELETE FROM chunks WHERE chunk_key = ?", (old[0],))
            return False, int(old[0])
        metadata = _json.encode(row.metadata).decode()
        label = encode_label(row.label)
        if old[3] != metadata or old[4] != label:
            conn.execute(
                "UPDATE chunks SET metadata_json = ?, note_id = ?, sequence_start = ?, "
                "sequence_end = ?, updated_at = ?, provenance_json = ? WHERE chunk_key = ?",
                (metadata, row.note_id, row.sequence_start, row.sequence_end, now_iso(),
                 label, old[0]),
            )  # fmt: skip
        return True, None

    def delete_where(self, conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> Changes:
        """Delete the chunks matching `where` (over alias `c`) in the caller's transaction."""
        keys = [
            int(row[0])
            for row in conn.execute(f"SELECT c.chunk_key FROM chunks c WHERE {where}", params)
        ]
        changes = Changes(removed_keys=keys)
        for start in range(0, len(keys), BATCH):
            batch = keys[start : start + BATCH]
            conn.execute(
                f"DELETE FROM chunks WHERE chunk_key IN ({', '.join('?' * len(batch))})", batch
            )
        if keys:
            changes.generation = bump_generation(conn)
            changes.bumps = 1
        return changes

    def _insert(self, conn: sqlite3.Connection, row: ChunkRow, users: dict[str, str | None]) -> int:
        if row.session_id not in users:
            found = conn.execute(
                "SELECT user_id FROM sessions WHERE session_id = ?", (row.session_id,)
            ).fetchone()
            if found is None:
                raise MemoryStoreError(f"unknown session {row.session_id!r}; create it first")
            users[row.session_id] = found[0]
        if row.vector is None:
            row.vector = self._embedder.embed([row.text])[0]
        file_id = _file_id(conn, row.session_id, row.source_uri) if row.source_uri else None
        key = conn.execute(
            "INSERT INTO chunks(chunk_id, session_id, user_id, file_id, note_id, sequence_start, "
            "sequence_end, chunk_text, metadata_json, content_hash, provenance_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING chunk_key",
            (row.chunk_id, row.session_id, users[row.session_id], file_id, row.note_id,
             row.sequence_start, row.sequence_end, row.text,
             _json.encode(row.metadata).decode(), row.digest, encode_label(row.label)),
        ).fetchone()[0]  # fmt: skip
        conn.execute(
            "INSERT INTO chunks_vec(chunk_key, embedding_blob, embedding_model) VALUES (?, ?, ?)",
            (key, blob(row.vector), self._embedder.name),
        )
        return int(key)


def blob(vector: Any) -> bytes:
    import numpy as np

    return np.asarray(vector, dtype="<f4").tobytes()


def _has_digest(conn: sqlite3.Connection, session_id: str, digest: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM chunks WHERE session_id = ? AND content_hash = ? LIMIT 1",
        (session_id, digest),
    )
    return found.fetchone() is not None


def _file_id(conn: sqlite3.Connection, session_id: str, source_uri: str) -> int:
    conn.execute(
        "INSERT INTO files(session_id, source_uri) VALUES (?, ?) "
        "ON CONFLICT(session_id, source_uri, content_hash) DO NOTHING",
        (session_id, source_uri),
    )
    row = conn.execute(
        "SELECT file_id FROM files WHERE session_id = ? AND source_uri = ? AND content_hash = ''",
        (session_id, source_uri),
    ).fetchone()
    return int(row[0])


def bump_generation(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "UPDATE memory_meta SET value = CAST(value AS INTEGER) + 1 "
        "WHERE key = 'vector_generation' RETURNING value"
    ).fetchone()
    return int(row[0])


def current_generation_in(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM memory_meta WHERE key = 'vector_generation'").fetchone()
    return int(row[0]) if row else 0


def current_generation(db: Database) -> int:
    row = db.query_one("SELECT value FROM memory_meta WHERE key = 'vector_generation'")
    return int(row[0]) if row else 0


# ---- rows for conversation messages and notes ---------------------------------------
#
# Chunk rows for conversation messages and notes (upstream's ids and metadata).
#
# Rows are built before the write transaction so their text can be embedded outside it;
# `stamp_*` fills in what only the transaction knows (the event's sequence number).
# System messages are not indexed: the system prompt repeats in every session and would
# crowd real content out of search results.

NOTE_SCHEMA_VERSION = 1


def conversation_rows(session_id: str, message: Message) -> list[ChunkRow]:
    """Unstamped rows for one message (empty for system messages and empty text)."""
    if message.role == "system":
        return []
    source = message_source(message)
    windows = chunk_windows(message_text(message))
    metadata: dict[str, Any] = {"source": source, "role": message.role}
    if message.tool_call_id:
        metadata["tool_call_id"] = message.tool_call_id
    rows = _rows(session_id, windows, metadata, f"conversation://{session_id}/{source}")
    for row in rows:
        row.label = message.trust_label
    return rows


def note_rows(
    session_id: str,
    note_id: str,
    content: str,
    *,
    tags: Sequence[str],
    source: str,
    created_at: str,
    updated_at: str,
    label: Label | None = None,
) -> list[ChunkRow]:
    """Unstamped rows for a note's content (with the note's label)."""
    metadata: dict[str, Any] = {
        "note_id": note_id,
        "source": source,
        "tags": list(tags),
        "created_at": created_at,
        "updated_at": updated_at,
        "schema_version": NOTE_SCHEMA_VERSION,
        "role": "user",
    }
    rows = _rows(session_id, chunk_windows(collapse_whitespace(content)), metadata, None)
    for row in rows:
        row.note_id = note_id
        row.label = label
    return rows


def _rows(
    session_id: str, windows: list[str], metadata: dict[str, Any], source_uri: str | None
) -> list[ChunkRow]:
    return [
        ChunkRow(
            chunk_id="",
            session_id=session_id,
            text=window,
            digest=content_hash(window),
            metadata={**metadata, "chunk_index": index, "chunk_count": len(windows)},
            source_uri=source_uri,
        )
        for index, window in enumerate(windows)
    ]


def stamp_rows(rows: Sequence[ChunkRow], sequence: int) -> None:
    """Give rows the event's sequence and their final chunk ids."""
    for index, row in enumerate(rows):
        row.chunk_id = chunk_id_for(row.session_id, sequence, index, row.digest)
        row.sequence_start = row.sequence_end = sequence
        row.metadata = {**row.metadata, "sequence_start": sequence, "sequence_end": sequence}
