"""Moving a store between backends (SQLite <-> PostgreSQL) without loss, and proving it.

Theory of operation:

1. Both backends hold the same tables and columns at the same schema version (the twin
   migrations), so a copy is table by table, column by column. The source is read in one
   read transaction (on SQLite a WAL snapshot: a `vm` may go on writing meanwhile; what it
   writes after the snapshot is not copied, which is why the switch comes after the copy).
2. Only durable data moves. Left out: `memory_migrations` (the target records its own),
   `session_leases` and `session_frames` (live coordination), SQLite's FTS5 shadow tables
   (the triggers rebuild the index), and PostgreSQL's generated `chunk_tsv` and `rowid`.
3. Vectors change representation (float32 BLOB on SQLite, pgvector on PostgreSQL); both
   are normalised to float32 for the copy and the hash, so no precision is lost or faked.
4. The target must be empty (no sessions, schedules or gateway sessions) and at the same
   schema version; its own seed rows (`memory_meta`) are replaced. Identity sequences on
   PostgreSQL are moved past the copied keys.
5. `fingerprint` is a row count and a SHA-256 per table over the normalised rows in key
   order; a copy is verified by comparing source and target fingerprints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import msgspec

from oxydra.core import MemoryStoreError
from oxydra.memory._db import Database

# Copy order respects foreign keys; the key columns order rows for the hash.
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sessions", ("session_id",)),
    ("conversation_events", ("session_id", "sequence")),
    ("session_state", ("session_id",)),
    ("session_summaries", ("session_id", "epoch")),
    ("memory_meta", ("key",)),
    ("files", ("file_id",)),
    ("chunks", ("chunk_key",)),
    ("chunks_vec", ("chunk_key",)),
    ("gateway_sessions", ("session_id",)),
    ("channel_session_mappings", ("channel_id", "channel_context_id")),
    ("schedules", ("schedule_id",)),
    ("schedule_runs", ("run_id",)),
    ("scheduled_notifications", ("notification_id",)),
)
_SKIP_COLUMNS = {"chunk_tsv", "rowid"}
_IDENTITY = {
    "files": "file_id",
    "chunks": "chunk_key",
    "scheduled_notifications": "notification_id",
}
_VECTOR = ("chunks_vec", "embedding_blob")
_GUARDS = ("sessions", "schedules", "gateway_sessions")
BATCH = 500


class TablePrint(msgspec.Struct, frozen=True, kw_only=True):
    """One table's row count and content hash."""

    rows: int
    sha256: str


def _columns(db: Database, table: str) -> list[str]:
    if db.dialect == "postgres":
        rows = db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "AND table_schema = current_schema() ORDER BY ordinal_position",
            (table,),
        )
    else:
        rows = [(r[1],) for r in db.query(f"PRAGMA table_info({table})")]
    return [str(r[0]) for r in rows if r[0] not in _SKIP_COLUMNS]


def _floats(value: Any) -> list[float]:
    """A stored vector (float32 bytes or pgvector text) as float32-exact Python floats."""
    import numpy as np

    if isinstance(value, bytes | bytearray | memoryview):
        array = np.frombuffer(bytes(value), dtype="<f4")
    else:
        array = np.asarray(json.loads(str(value)), dtype="<f4")
    return [float(x) for x in array]


def _rows(db: Database, conn: Any, table: str, columns: list[str], keys: tuple[str, ...]):
    """The table's rows as dicts in key order, vectors normalised (rule 3)."""
    cursor = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(keys)}")
    while batch := cursor.fetchmany(BATCH):
        for values in batch:
            row = dict(zip(columns, values, strict=True))
            if (table, "embedding_blob") == _VECTOR:
                row["embedding_blob"] = _floats(row["embedding_blob"])
            yield row


def _snapshot(db: Database) -> Iterator[tuple[str, list[str], Any]]:
    """(table, columns, rows) for every durable table, inside one read transaction."""
    with db.read() as conn:
        for table, keys in TABLES:
            columns = _columns(db, table)
            yield table, columns, _rows(db, conn, table, columns, keys)


def fingerprint(db: Database) -> dict[str, TablePrint]:
    """Row count and SHA-256 of every durable table (rule 5)."""
    prints: dict[str, TablePrint] = {}
    for table, _, rows in _snapshot(db):
        digest, count = hashlib.sha256(table.encode()), 0
        for row in rows:
            digest.update(json.dumps(row, sort_keys=True, default=repr).encode())
            count += 1
        prints[table] = TablePrint(rows=count, sha256=digest.hexdigest())
    return prints


def copy_store(source: Database, target: Database) -> dict[str, TablePrint]:
    """Copy every durable table from `source` into the empty `target`, then verify.

    Both must be open and migrated to the same version. Returns the (equal) fingerprints.

    Raises:
        MemoryStoreError: the target holds data, or the copy does not match the source.
    """
    _require_empty(target)
    with target.write() as out:
        out.execute("DELETE FROM memory_meta")
        for table, columns, rows in _snapshot(source):
            wanted = [c for c in columns if c in set(_columns(target, table))]
            _insert(target, out, table, wanted, rows)
        if target.dialect == "postgres":
            for table, column in _IDENTITY.items():
                out.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                    f"(SELECT COALESCE(max({column}), 0) + 1 FROM {table}), false)"
                )
    before, after = fingerprint(source), fingerprint(target)
    if before != after:
        differ = sorted(t for t in before if before[t] != after.get(t))
        raise MemoryStoreError(
            f"the copy to {target.path} differs from {source.path} in {', '.join(differ)}",
            hint="the source changed during the copy, or a value did not survive; "
            "nothing was switched: empty the target and copy again",
        )
    return after


def _insert(target: Database, out: Any, table: str, columns: list[str], rows: Any) -> None:
    sql = f"INSERT INTO {table}({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    deferred: list[tuple[Any, Any]] = []
    pending: list[list[Any]] = []
    for row in rows:
        if table == "gateway_sessions" and row.get("parent_session_id"):
            deferred.append((row["parent_session_id"], row["session_id"]))
            row = {**row, "parent_session_id": None}  # parents may come later: set below
        if (table, "embedding_blob") == _VECTOR:
            row = {**row, "embedding_blob": target.vector_param(row["embedding_blob"])}
        pending.append([row[c] for c in columns])
        if len(pending) >= BATCH:
            out.executemany(sql, pending)
            pending = []
    if pending:
        out.executemany(sql, pending)
    for parent, child in deferred:
        out.execute(
            "UPDATE gateway_sessions SET parent_session_id = ? WHERE session_id = ?",
            (parent, child),
        )


def _require_empty(target: Database) -> None:
    for table in _GUARDS:
        row = target.query_one(f"SELECT count(*) FROM {table}")
        if row and row[0]:
            raise MemoryStoreError(
                f"the target store {target.path} already holds data ({row[0]} rows in {table})",
                hint="copy into an empty database, or remove the target's data first",
            )
