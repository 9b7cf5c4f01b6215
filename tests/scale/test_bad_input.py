"""A PostgreSQL store that is unreachable, refuses the login, lacks pgvector or was
written by a newer program: `vm` refuses to start with one clear line naming the server and
what to do, never a traceback; a turn during an outage fails cleanly and the host recovers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxydra.core import ConfigError, MemoryStoreError
from oxydra.memory import MemoryStore
from oxydra.memory._pg import PgDatabase
from oxydra.testing.postgres import LocalPostgres

ROOT = Path(__file__).resolve().parents[2]


def _vm(tmp_path: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`oxydra vm` on the PostgreSQL store at `url`; returns once it exits."""
    return subprocess.run(
        [sys.executable, "-m", "oxydra", "vm", "--user-id", "alice",
         "--workspace-root", str(tmp_path / "ws"),
         "--set", "memory.backend=postgres", "--set", f"memory.postgres_url={url}",
         "--set", "selection.provider=openai"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
             "OPENAI_API_KEY": "k", **env},
    )  # fmt: skip


def _refused(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_an_unreachable_database_names_host_and_port(tmp_path: Path) -> None:
    done = _vm(tmp_path, "postgresql://oxydra@127.0.0.1:1/oxydra")
    _refused(done, "cannot reach PostgreSQL at postgresql://127.0.0.1:1/oxydra", "hint:")


def test_a_password_in_the_url_is_refused_before_connecting(tmp_path: Path) -> None:
    done = _vm(tmp_path, "postgresql://oxydra:hunter2@127.0.0.1:1/oxydra")
    _refused(done, "memory.postgres_url must not contain the password", "OXYDRA_POSTGRES_PASSWORD")
    assert "hunter2" not in done.stderr


def test_a_missing_url_names_the_key() -> None:
    from oxydra.config.schema import MemoryConfig
    from oxydra.memory._pg import connect_configured

    with pytest.raises(ConfigError, match=r"memory\.postgres_url is not set"):
        connect_configured(MemoryConfig(backend="postgres"), {})


@pytest.fixture(scope="module")
def guarded() -> Iterator[LocalPostgres]:
    """A cluster whose TCP logins need a password."""
    server = LocalPostgres.start(password="right-password")
    yield server
    server.stop()


def test_a_wrong_password_is_refused_with_the_variable_to_fix(
    tmp_path: Path, guarded: LocalPostgres
) -> None:
    url = guarded.create_database("pw_wrong")
    done = _vm(tmp_path, url, OXYDRA_POSTGRES_PASSWORD="wrong-password")
    _refused(done, "refused the login", "password authentication failed", "postgres_password_env")
    assert "wrong-password" not in done.stderr


def test_the_right_password_from_the_named_variable_opens_the_store(
    guarded: LocalPostgres,
) -> None:
    from oxydra.config.schema import MemoryConfig
    from oxydra.memory._pg import connect_configured

    url = guarded.create_database("pw_right")
    config = MemoryConfig(backend="postgres", postgres_url=url, postgres_password_env="PW")
    MemoryStore(connect_configured(config, {"PW": "right-password"})).close()


def test_pgvector_that_cannot_be_enabled_is_refused_with_how_to_install(
    tmp_path: Path, postgres_server: LocalPostgres
) -> None:
    postgres_server.create_role("plain")
    url = postgres_server.create_database("no_vector", owner="plain")
    done = _vm(tmp_path, url)
    _refused(done, "has no pgvector extension", "install pgvector", "CREATE EXTENSION vector")
    tables = postgres_server.psql("SELECT count(*) FROM pg_tables WHERE schemaname='public'",
                                  "no_vector")  # fmt: skip
    assert tables.strip() == "0", "nothing was created before the check"


def test_a_store_from_a_newer_program_is_refused_by_vm(tmp_path: Path, pg_url: str) -> None:
    from oxydra.gateway import SESSION_SCHEMA
    from oxydra.memory._db import load_migrations
    from oxydra.scheduler import SCHEDULE_SCHEMA

    MemoryStore(PgDatabase(pg_url), schemas=(SESSION_SCHEMA, SCHEDULE_SCHEMA)).close()
    db = PgDatabase(pg_url)
    with db.write() as conn:
        conn.execute("INSERT INTO memory_migrations(version, name) VALUES (42, 'future')")
    db.close()
    done = _vm(tmp_path, pg_url)
    ours = max(m.version for m in load_migrations([SESSION_SCHEMA, SCHEDULE_SCHEMA]))
    _refused(done, f"has schema version 42, newer than this Oxydra understands ({ours})")


def test_a_turn_during_an_outage_fails_cleanly_and_the_store_recovers(
    postgres_server: LocalPostgres, pg_url: str
) -> None:
    """The database connection is cut (as by a restart): the call in progress fails with a
    `MemoryStoreError`, and the next call reconnects."""
    store = MemoryStore(PgDatabase(pg_url))
    store.events.create_session("s1", user_id="alice")
    dbname = pg_url.rsplit("/", 1)[1]
    postgres_server.psql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'"
    )
    with pytest.raises(MemoryStoreError, match="PostgreSQL"):
        store.events.get_session("s1")
    assert store.events.get_session("s1") is not None, "reconnected on the next call"
    store.close()
