"""Schema migrations on PostgreSQL: the same versions as SQLite, all pending steps in one
transaction.

Rules (the SQLite runner's, `_migrate`, with what PostgreSQL adds):

1. The steps are the `<owner package>_pg` twins of the SQLite files, same version numbers,
   recorded in `memory_migrations` with the program version that applied them.
2. Every pending step and its record run in ONE transaction under an advisory lock: hosts
   starting together queue, the first migrates, the rest find nothing left to do; a crash
   or kill mid-upgrade rolls the whole upgrade back, so the previous program still opens
   the database (DDL is transactional here).
3. pgvector is checked first: created when missing and allowed, else refused with how to
   install it, before anything else is touched.
4. A recorded version this program does not know is refused, naming both versions.
"""

from __future__ import annotations

from collections.abc import Sequence

from oxydra.core import MemoryStoreError, get_logger
from oxydra.memory._db import Migration, load_migrations
from oxydra.memory._pg import MIGRATE_LOCK, PgDatabase

_log = get_logger(__name__)

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS memory_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                             'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    program    TEXT
)
"""


def ensure_vector(db: PgDatabase) -> str:
    """The pgvector version, creating the extension when it is available but not enabled.

    Raises:
        MemoryStoreError: pgvector is not installed on the server, or may not be enabled.
    """
    row = db.query_one("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    if row:
        return str(row[0])
    try:
        with db.claim() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except MemoryStoreError as exc:
        raise MemoryStoreError(
            f"PostgreSQL at {db.path} has no pgvector extension ({exc})",
            hint="install pgvector on the server (Debian: apt-get install "
            "postgresql-<major>-pgvector; or build it from source) and run `CREATE EXTENSION "
            "vector;` in this database as a superuser",
        ) from exc
    row = db.query_one("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    return str(row[0]) if row else ""


def migrate_pg(
    db: PgDatabase,
    schemas: Sequence[str] = (),
    *,
    migrations: tuple[Migration, ...] | None = None,
    program: str = "",
) -> int:
    """Bring the database's schema up to the latest step; return its version.

    Raises:
        MemoryStoreError: pgvector missing, schema newer than this program, a step failed.
    """
    steps = load_migrations(schemas, dialect="postgres") if migrations is None else migrations
    ensure_vector(db)
    latest = max((m.version for m in steps), default=0)
    with db.claim() as conn:
        conn.execute(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
        conn.execute(_BOOKKEEPING)
        done = {int(r[0]) for r in conn.execute("SELECT version FROM memory_migrations")}
        _refuse_newer(db, done, {m.version for m in steps})
        for step in steps:
            if step.version in done:
                continue
            db.script(step.sql)
            conn.execute(
                "INSERT INTO memory_migrations(version, name, program) VALUES (?, ?, ?)",
                (step.version, step.name, program),
            )
            _log.info("applied memory migration", extra={"oxy": {"version": step.version}})
    return latest


def _refuse_newer(db: PgDatabase, done: set[int], known: set[int]) -> None:
    unknown = sorted(done - known)
    if unknown:
        raise MemoryStoreError(
            f"memory database {db.path} has schema version {unknown[-1]}, newer than this "
            f"Oxydra understands ({max(known, default=0)})",
            hint="run the newer oxydra.pyz that upgraded it; a store opened outside its app "
            "must name every owner's schema",
        )


def schema_version_pg(db: PgDatabase) -> int:
    """The highest applied version (0 for an empty database)."""
    exists = db.query_one("SELECT to_regclass('memory_migrations') IS NOT NULL")
    if not exists or not exists[0]:
        return 0
    row = db.query_one("SELECT max(version) FROM memory_migrations")
    return int(row[0]) if row and row[0] is not None else 0
