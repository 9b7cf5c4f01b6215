"""One SQLite connection with our pragmas, explicit transactions and error translation.

Theory of operation:

1. A `Database` owns one `sqlite3.Connection` and is used from one thread (sqlite3's
   `check_same_thread` enforces it); the async facades funnel every call through their
   worker thread.
2. The connection runs in autocommit mode (`isolation_level=None`), so a transaction is
   exactly the statements inside `with db.write()` or `with db.read()`. Writes start with
   `BEGIN IMMEDIATE`: the write lock is taken up front, so two processes queue on the busy
   timeout instead of failing when a read lock cannot be upgraded.
3. Durability: WAL journal with `synchronous=FULL`, so a committed transaction survives a
   crash or power cut of this process; `foreign_keys=ON` on every connection.
4. Every `sqlite3` exception is translated here, once, into `MemoryStoreError` naming the
   database path; none escapes the package.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from oxydra.core import MemoryStoreError

Row = tuple[Any, ...]


EMPTY_GRACE_SECS = 2.0


def _refuse_empty(path: Path) -> None:
    """A zero-length file where a database should be was truncated: never start it afresh.

    SQLite would open it as a new, empty database and every stored session, memory and
    schedule would silently be gone; a missing file is different (a first start). Another
    process creating the file this instant has it empty for a few milliseconds, so an empty
    file is given `EMPTY_GRACE_SECS` to gain its header before it is refused.
    """
    deadline = time.monotonic() + EMPTY_GRACE_SECS
    while True:
        try:
            empty = path.stat().st_size == 0
        except OSError:
            return
        if not empty or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if empty:
        raise MemoryStoreError(
            f"memory database {path} is empty (0 bytes): it was truncated, so its data is gone "
            "from this file; restore it from a backup, or delete it to start with an empty store"
        )


def translate_error(exc: sqlite3.Error, path: Path | str) -> MemoryStoreError:
    """The `MemoryStoreError` that tells the operator what went wrong with `path`."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return MemoryStoreError(
            f"memory database {path} is locked by another process ({text})",
            hint="another oxydra process holds a write lock; wait for it or stop it",
        )
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return MemoryStoreError(
            f"memory database {path} is corrupt or not a SQLite database ({text})",
            hint="move the file aside; a new empty database is created at the next start",
        )
    if "unable to open" in lowered or "readonly" in lowered or "read-only" in lowered:
        return MemoryStoreError(
            f"cannot open memory database {path} for writing ({text})",
            hint="check that the directory exists and is writable",
        )
    if isinstance(exc, sqlite3.IntegrityError):
        return MemoryStoreError(f"memory database {path}: constraint failed ({text})")
    return MemoryStoreError(f"memory database {path}: {text}")


class Database:
    """An open memory database file (the PostgreSQL backend, `_pg.PgDatabase`, shares
    this interface).

    Args:
        path: the database file; its directory is created if missing.
        busy_timeout_ms: how long a write waits for another process's lock.

    Attributes:
        dialect: `"sqlite"` or `"postgres"`; search and claims branch on it.
        path: the file (a `postgresql://host:port/db` label on PostgreSQL), for messages.
    """

    dialect = "sqlite"
    path: Path | str

    def __init__(self, path: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MemoryStoreError(
                f"cannot create the directory of memory database {path}: {exc}"
            ) from exc
        _refuse_empty(path)
        with self.errors():
            self._conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
        try:
            self._configure(busy_timeout_ms)
        except MemoryStoreError:
            self._conn.close()
            raise

    def _configure(self, busy_timeout_ms: int) -> None:
        with self.errors():
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            mode = self._enable_wal(busy_timeout_ms / 1000)
            self._conn.execute("PRAGMA synchronous = FULL")
        if str(mode).lower() != "wal":
            raise MemoryStoreError(
                f"memory database {self.path} cannot use WAL journaling (got {mode!r})",
                hint="put the database on a local file system",
            )

    def _enable_wal(self, timeout_s: float) -> str:
        """Switch to WAL, retrying while another process holds the lock.

        Changing the journal mode needs an exclusive lock and SQLite does not apply the
        busy timeout to it, so two processes creating the database at once would
        otherwise fail with "database is locked".
        """
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        while True:
            try:
                mode = str(self._conn.execute("PRAGMA journal_mode").fetchone()[0])
                if mode.lower() == "wal":
                    return mode
                return str(self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.OperationalError as exc:
                busy = (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Translate any `sqlite3` exception raised inside the block."""
        try:
            yield
        except sqlite3.Error as exc:
            raise translate_error(exc, self.path) from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (`BEGIN IMMEDIATE`), committed when the block ends."""
        with self._transaction("BEGIN IMMEDIATE") as conn:
            yield conn

    @contextlib.contextmanager
    def claim(self) -> Iterator[sqlite3.Connection]:
        """A transaction for claiming work (`FOR UPDATE SKIP LOCKED` on PostgreSQL); on
        SQLite the write lock already makes claims exclusive."""
        with self._transaction("BEGIN IMMEDIATE") as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees one snapshot."""
        with self._transaction("BEGIN") as conn:
            yield conn

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self.errors():
            self._conn.execute(begin)
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one read statement outside an explicit transaction."""
        with self.errors():
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a read statement, or None."""
        with self.errors():
            row: Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def vector_param(self, vector: Any) -> Any:
        """A vector as this backend stores it: little-endian float32 bytes."""
        import numpy as np

        return np.asarray(vector, dtype="<f4").tobytes()

    @property
    def connection(self) -> sqlite3.Connection:
        """The raw connection, for the migration runner."""
        return self._conn

    def close(self) -> None:
        """Close the connection; committed WAL content is replayed by the next opener."""
        with self.errors():
            self._conn.close()


def placeholders(count: int) -> str:
    """`?, ?, ?` for an `IN (...)` list of `count` values."""
    return ", ".join("?" * count)
