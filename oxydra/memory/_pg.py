"""The PostgreSQL backend of `Database`: the same interface over one psycopg 3 connection.

Theory of operation:

1. Every owner's SQL (memory, gateway, scheduler) is written once, in the SQLite dialect
   with `?` parameters. `translate` turns `?` outside string literals into `%s` and
   doubles every `%` (so `strftime('%Y…')` survives psycopg's placeholder parsing); the
   few SQLite functions that SQL uses (`strftime('…','now')`, `json_extract`, two-argument
   `json_each`) exist in the PostgreSQL schema as small SQL functions (migration 0001).
   Full-text and vector search differ by backend and branch on `Database.dialect`.
2. `write()` opens a transaction and takes one transaction-scoped advisory lock: writers
   queue across every host exactly as SQLite's `BEGIN IMMEDIATE` makes them queue across
   processes, so the read-then-insert invariants the owners rely on (next sequence,
   expected epoch, one running run) hold unchanged. Coordination that must not queue
   behind writers (the scheduler's claims) uses `claim()`: a transaction without that
   lock, for `FOR UPDATE SKIP LOCKED`.
3. A dropped connection (database restarted, network cut) fails the call in progress with
   a `MemoryStoreError`; the next call reconnects, so a host recovers when the database
   returns. Every psycopg exception is translated here, naming host, port and database;
   the password never appears (it is passed apart from the URL).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from oxydra.config.schema import MemoryConfig
from oxydra.core import ConfigError, MemoryStoreError
from oxydra.memory._db import Database, Row

if TYPE_CHECKING:
    import psycopg

# pg_advisory_xact_lock keys: bigints chosen once ("oxydra" in ASCII, then a purpose byte).
WRITE_LOCK = 0x6F787964726101
MIGRATE_LOCK = 0x6F787964726102


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite-style SQL (`?` parameters) as psycopg wants it (`%s`, literal `%` doubled).

    One linear pass; `?` inside a quoted string or identifier is left alone.
    """
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        out.append("%%" if char == "%" else char)
    return "".join(out)


def _driver() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise MemoryStoreError(
            "the PostgreSQL backend needs the psycopg driver, which is not installed",
            hint="pip install 'oxydra[postgres]' (oxydra.pyz bundles it)",
        ) from exc
    return psycopg


def describe(url: str) -> str:
    """`postgresql://host:port/dbname` for messages: no user, no password."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:  # an unparsable URL is reported by connect
        return "postgresql://<unparsable url>"
    host = parts.get("host") or "localhost"
    return f"postgresql://{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


def translate_error(exc: Exception, where: str) -> MemoryStoreError:
    """The `MemoryStoreError` that tells the operator what went wrong with the server."""
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return MemoryStoreError(
            f"PostgreSQL at {where} refused the login: {text}",
            hint="check memory.postgres_url's user and the password variable it names "
            "(memory.postgres_password_env)",
        )
    if (
        "connection refused" in lowered
        or "could not connect" in lowered
        or ("timeout expired" in lowered)
    ):
        return MemoryStoreError(
            f"cannot reach PostgreSQL at {where}: {text}",
            hint="start the database, or fix host and port in memory.postgres_url",
        )
    if 'database "' in lowered and "does not exist" in lowered:
        return MemoryStoreError(f"PostgreSQL at {where}: {text}", hint="create it: createdb <name>")
    return MemoryStoreError(f"PostgreSQL database {where}: {text}")


def connect_configured(config: MemoryConfig, environ: Mapping[str, str]) -> PgDatabase:
    """The database `[memory] postgres_url` names, with the password from the environment.

    Raises:
        ConfigError: no URL, an unparsable one, or one that carries a password.
        MemoryStoreError: the server cannot be reached or refuses the login.
    """
    url = config.postgres_url
    if not url:
        raise ConfigError(
            'memory.backend is "postgres" but memory.postgres_url is not set',
            key="memory.postgres_url",
            hint='postgres_url = "postgresql://oxydra@db.example:5432/oxydra"',
        )
    _driver()
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception as exc:
        raise ConfigError(
            f"memory.postgres_url is not a PostgreSQL URL ({exc})", key="memory.postgres_url"
        ) from exc
    if parts.get("password"):
        raise ConfigError(
            "memory.postgres_url must not contain the password",
            key="memory.postgres_url",
            hint=f"remove it from the URL and set the variable {config.postgres_password_env}",
        )
    return PgDatabase(url, password=environ.get(config.postgres_password_env))


class _Conn:
    """The slice of `sqlite3.Connection` the owners use, over a psycopg connection."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self._raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        cursor = self._raw.cursor()
        cursor.execute(translate(sql), tuple(params))
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self._raw.cursor()
        cursor.executemany(translate(sql), [tuple(row) for row in rows])
        return cursor


class PgDatabase(Database):
    """One connection to a PostgreSQL database, with `Database`'s interface.

    Shares no state with the SQLite class (its file handling does not apply); it is a
    subclass so every owner that takes a `Database` takes this one too.

    Args:
        url: libpq URL or conninfo, without a password.
        password: the password (from the variable the config names), or None.
        connect_timeout_s: how long connecting may take.
    """

    dialect = "postgres"

    def __init__(self, url: str, *, password: str | None = None, connect_timeout_s: int = 10):
        self.url = url
        self.where = describe(url)
        self.path = self.where
        self.password = password
        self._timeout = connect_timeout_s
        self._raw: psycopg.Connection[Any] | None = None
        self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        driver = _driver()
        extra: dict[str, Any] = {"connect_timeout": self._timeout, "autocommit": True}
        if self.password is not None:
            extra["password"] = self.password
        try:
            raw: psycopg.Connection[Any] = driver.connect(
                self.url, application_name="oxydra", **extra
            )
        except driver.Error as exc:
            raise translate_error(exc, self.where) from exc
        with contextlib.suppress(driver.Error):  # PostgreSQL 14+: a dead host's long query
            raw.execute("SET client_connection_check_interval = 1000")  # (a migration) ends
        self._raw = raw
        return raw

    def _live(self) -> psycopg.Connection[Any]:
        raw = self._raw
        if raw is None or raw.closed or raw.broken:
            if raw is not None:
                raw.close()
            raw = self._connect()
        return raw

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Translate any psycopg exception raised inside the block."""
        driver = _driver()
        try:
            yield
        except driver.Error as exc:
            raise translate_error(exc, self.where) from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        """A write transaction, queued behind every other host's writer (see module doc)."""
        with self._pg_transaction(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})") as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        """A read transaction: every query inside sees one snapshot."""
        with self._pg_transaction("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY") as c:
            yield c

    @contextlib.contextmanager
    def claim(self) -> Iterator[Any]:
        """A transaction without the writers' lock, for `FOR UPDATE SKIP LOCKED` claims."""
        with self._pg_transaction(None) as conn:
            yield conn

    @contextlib.contextmanager
    def _pg_transaction(self, first: str | None) -> Iterator[_Conn]:
        with self.errors():
            raw = self._live()
            with raw.transaction():
                conn = _Conn(raw)
                if first:
                    conn.execute(first)
                yield conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one read statement in its own (autocommit) transaction."""
        with self.errors():
            return _Conn(self._live()).execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a read statement, or None."""
        with self.errors():
            row: Row | None = _Conn(self._live()).execute(sql, params).fetchone()
            return row

    def script(self, sql: str) -> None:
        """Run a parameterless multi-statement script inside the current transaction."""
        with self.errors():
            self._live().execute(sql.encode())

    @property
    def raw(self) -> psycopg.Connection[Any]:
        """The psycopg connection (the migration runner's)."""
        return self._live()

    def vector_param(self, vector: Any) -> str:
        """A vector as pgvector's text input (`[0.1,0.2,…]`); PostgreSQL casts it."""
        return "[" + ",".join(repr(float(x)) for x in vector) + "]"

    def close(self) -> None:
        """Close the connection."""
        if self._raw is not None:
            with self.errors():
                self._raw.close()
