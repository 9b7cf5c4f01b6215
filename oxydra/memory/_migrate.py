"""Schema migrations: load the `.sql` files of the database's owners and apply them in order.

Rules:

1. A migration is `NNNN_name.sql` in a schema package; its version is the integer `NNNN`.
   The memory store's own package is always read; each other owner of tables in the file
   (the gateway, the scheduler) ships its own package, handed in by whoever opens the store
   (`Memory.open(..., schemas=...)`). Versions form one sequence per database file.
2. Applied versions are recorded in `memory_migrations`. At open, every known version not
   yet recorded is applied in ascending order, each in its own `BEGIN IMMEDIATE`
   transaction together with its record, so a crash leaves the schema at a whole version.
3. The "already applied?" check is repeated inside the write transaction, so two processes
   opening a fresh database at once apply each migration exactly once.
4. A database that records a version this code does not know was written by a newer
   Oxydra (or opened by its app with an owner's schema that this opener left out); it is
   refused rather than used with a schema we do not understand.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from importlib import resources

import msgspec

from oxydra.core import MemoryStoreError, get_logger
from oxydra.memory._db import Database

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
    found: list[Migration] = []
    suffix = "_pg" if dialect == "postgres" else ""
    for package in dict.fromkeys((MEMORY_SCHEMA, *schemas)):
        for entry in resources.files(package + suffix).iterdir():
            match = _NAME.match(entry.name)
            if match:
                sql = entry.read_text(encoding="utf-8")
                found.append(Migration(version=int(match[1]), name=match[2], sql=sql))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MemoryStoreError(f"duplicate migration versions in {versions} ({schemas})")
    return tuple(found)


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
    steps = load_migrations(schemas) if migrations is None else migrations
    exists = db.query_one(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'memory_migrations'"
    )
    if not exists:
        with db.write() as conn:
            conn.execute(_BOOKKEEPING)
    _refuse_newer(db, steps)
    done = applied_versions(db)
    for step in steps:
        if step.version not in done:
            _apply(db, step)
    return max((m.version for m in steps), default=0)


def _refuse_newer(db: Database, steps: tuple[Migration, ...]) -> None:
    known = {m.version for m in steps}
    unknown = sorted(applied_versions(db) - known)
    # Any recorded version we do not know is refused: a newer Oxydra's, or an owner's schema
    # this opener left out (the memory store's own versions interleave with the owners').
    if unknown:
        raise MemoryStoreError(
            f"memory database {db.path} has schema version {unknown[-1]}, newer than this "
            f"Oxydra understands ({max(known, default=0)})",
            hint="upgrade Oxydra, or point memory.db_path at another file (a store opened "
            "outside its app must name every owner's schema)",
        )


def _apply(db: Database, step: Migration) -> None:
    statements = split_statements(step.sql)
    with db.write() as conn:
        done = conn.execute(
            "SELECT 1 FROM memory_migrations WHERE version = ?", (step.version,)
        ).fetchone()
        if done:
            return
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO memory_migrations(version, name) VALUES (?, ?)",
            (step.version, step.name),
        )
    _log.info("applied memory migration", extra={"oxy": {"version": step.version}})


def schema_version(db: Database) -> int:
    """The highest applied version of the database (0 when none)."""
    row = db.query_one("SELECT max(version) FROM memory_migrations")
    return int(row[0]) if row and row[0] is not None else 0
