"""The memory database file: one SQLite connection, transactions, errors, migrations.

Theory of operation:

1. A `Database` owns one `sqlite3.Connection` and is used from one thread (sqlite3's
   `check_same_thread` enforces it); the async facade funnels every call through its
   worker thread.
2. The connection runs in autocommit mode (`isolation_level=None`), so a transaction is
   exactly the statements inside `with db.write()` or `with db.read()`. Writes start with
   `BEGIN IMMEDIATE`: the write lock is taken up front, so two processes queue on the busy
   timeout instead of failing when a read lock cannot be upgraded.
3. Durability: WAL journal with `synchronous=FULL`, so a committed transaction survives a
   crash or power cut of this process; `foreign_keys=ON` on every connection.
4. Every `sqlite3` exception is translated here, once, into `MemoryStoreError` naming the
   database path; none escapes the package.

Migrations (`migrate`):

1. A migration is `NNNN_name.sql` in a schema package; its version is the integer `NNNN`.
   The memory store's own package is always read; each other owner of tables in the file
   (the gateway, the scheduler) ships its own package, handed in by whoever opens the store
   (`Memory.open(..., schemas=...)`). Versions form one sequence per database file.
2. Applied versions are recorded in `memory_migrations`. At open, every known version not
   yet recorded is applied in ascending order, all in ONE `BEGIN IMMEDIATE` transaction
   with their records, so a crash or kill mid-upgrade leaves the store at its old version.
3. The "already applied?" check is repeated inside the write transaction, so two processes
   opening a fresh database at once apply each migration exactly once.
4. Before upgrading a store that already has a version, a copy is taken beside it with the
   online backup API (`memory.db.v<old version>.bak`); `oxydra store rollback` restores it
   for the previous program.
5. A store already at every known version is not touched: the migration files are listed
   (their names carry the versions), not read, and the schema packages are found from
   `oxydra`'s own resources rather than imported (an owner's package may import much of
   its layer: `oxydra.channels` loads every channel).
6. A database that records a version this code does not know was written by a newer
   Oxydra (or opened by its app with an owner's schema that this opener left out); it is
   refused rather than used with a schema we do not understand, naming both versions and,
   when the snapshot exists, the rollback command.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import msgspec

from oxydra.core import MemoryStoreError, get_logger

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


# ---- schema migrations -----------------------------------------------------------

_log = get_logger(__name__)
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS memory_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    """One schema step: its version, name and SQL script."""

    version: int
    name: str
    sql: str


MEMORY_SCHEMA = "oxydra.memory.migrations"


def load_migrations(
    schemas: Sequence[str] = (), *, dialect: str = "sqlite"
) -> tuple[Migration, ...]:
    """The memory store's migrations and those of `schemas` (owner packages), by version.

    On PostgreSQL each package's twin `<package>_pg` is read instead (same versions).

    Raises:
        MemoryStoreError: two steps claim one version.
    """
    found = [
        Migration(version=version, name=name, sql=entry.read_text(encoding="utf-8"))
        for version, name, entry in migration_files(schemas, dialect=dialect)
    ]
    return tuple(found)


def migration_files(
    schemas: Sequence[str] = (), *, dialect: str = "sqlite"
) -> list[tuple[int, str, Traversable]]:
    """The migration files of the memory store and of `schemas`, unread, by version.

    Raises:
        MemoryStoreError: two files claim one version.
    """
    found: list[tuple[int, str, Traversable]] = []
    suffix = "_pg" if dialect == "postgres" else ""
    root = None
    for package in dict.fromkeys((MEMORY_SCHEMA, *schemas)):
        head, _, rest = (package + suffix).partition(".")
        if head == "oxydra" and rest:  # found, not imported (theory 5)
            root = root or files("oxydra")
            folder = root.joinpath(rest.replace(".", "/"))
        else:
            folder = files(package + suffix)
        for entry in folder.iterdir():
            match = _NAME.match(entry.name)
            if match:
                found.append((int(match[1]), match[2], entry))
    found.sort(key=lambda m: m[0])
    versions = [m[0] for m in found]
    if len(set(versions)) != len(versions):
        raise MemoryStoreError(f"duplicate migration versions in {versions} ({schemas})")
    return found


def split_statements(script: str) -> list[str]:
    """Cut a script into complete statements (trigger bodies stay whole).

    `executescript` would commit any open transaction first, so each statement is run
    with `execute` inside our own transaction instead.
    """
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise MemoryStoreError(f"incomplete SQL statement at the end of a migration: {pending!r}")
    return statements


def applied_versions(db: Database) -> set[int]:
    """The versions recorded in the database."""
    rows = db.query("SELECT version FROM memory_migrations")
    return {int(row[0]) for row in rows}


def migrate(
    db: Database, migrations: tuple[Migration, ...] | None = None, schemas: Sequence[str] = ()
) -> int:
    """Bring the schema of `db` up to the latest of `migrations` (by default the memory
    store's and those of the owner packages `schemas`); return its version.

    Raises:
        MemoryStoreError: the database was written by a newer version, or a step failed.
    """
    exists = db.query_one(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'memory_migrations'"
    )
    if migrations is None:
        files = migration_files(schemas)
        known = {version for version, _, _ in files}
        if exists and known and applied_versions(db) == known:  # current (theory 5)
            return max(known)
        migrations = tuple(
            Migration(version=version, name=name, sql=entry.read_text(encoding="utf-8"))
            for version, name, entry in files
        )
    steps = migrations
    if not exists:
        with db.write() as conn:
            conn.execute(_BOOKKEEPING)
    _refuse_newer(db, steps)
    done = applied_versions(db)
    pending = [step for step in steps if step.version not in done]
    if pending and done and isinstance(db.path, Path):  # an upgrade of a store in use
        snapshot(db, max(done))
    if pending:
        _apply(db, pending)
    return max((m.version for m in steps), default=0)


def snapshot_path(path: Path, version: int) -> Path:
    """Where the copy of `path` taken before upgrading it from `version` is kept."""
    return path.with_name(f"{path.name}.v{version}.bak")


def snapshot(db: Database, version: int) -> Path:
    """Copy the database (SQLite online backup, consistent while others write) beside it,
    before an upgrade from `version`; `oxydra store rollback` restores it."""
    assert isinstance(db.path, Path)
    target = snapshot_path(db.path, version)
    partial = target.with_name(target.name + ".partial")
    with db.errors():
        out = sqlite3.connect(partial)
        try:
            db.connection.backup(out)
        finally:
            out.close()
    partial.replace(target)
    _log.info("snapshot before upgrade", extra={"oxy": {"path": str(target)}})
    return target


def _refuse_newer(db: Database, steps: tuple[Migration, ...]) -> None:
    known = {m.version for m in steps}
    unknown = sorted(applied_versions(db) - known)
    # Any recorded version we do not know is refused: a newer Oxydra's, or an owner's schema
    # this opener left out (the memory store's own versions interleave with the owners').
    if unknown:
        ours = max(known, default=0)
        back = ""
        if isinstance(db.path, Path) and snapshot_path(db.path, ours).exists():
            back = (
                f", or return to the snapshot taken before it was upgraded from version {ours}: "
                "`oxydra store rollback` (with this program; the vm stopped)"
            )
        raise MemoryStoreError(
            f"memory database {db.path} has schema version {unknown[-1]}, newer than this "
            f"Oxydra understands ({ours})",
            hint=f"run the newer oxydra.pyz that upgraded it{back}; a store opened outside "
            "its app must name every owner's schema",
        )


def _apply(db: Database, steps: list[Migration]) -> None:
    """Every pending step in ONE write transaction: a crash or kill mid-upgrade leaves the
    store at its old version, which the previous program still opens."""
    scripts = [(step, split_statements(step.sql)) for step in steps]
    with db.write() as conn:
        done = {int(r[0]) for r in conn.execute("SELECT version FROM memory_migrations")}
        for step, statements in scripts:
            if step.version in done:  # another process applied it meanwhile
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO memory_migrations(version, name) VALUES (?, ?)",
                (step.version, step.name),
            )
    _log.info("applied memory migrations", extra={"oxy": {"to": steps[-1].version}})


def schema_version(db: Database) -> int:
    """The highest applied version of the database (0 when none)."""
    row = db.query_one("SELECT max(version) FROM memory_migrations")
    return int(row[0]) if row and row[0] is not None else 0
