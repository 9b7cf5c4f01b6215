"""Upgrades that cannot brick: a newer program's upgrade is snapshotted and can be rolled
back for the older program; a kill -9 in the middle of a migration leaves the old version,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oxydra.gateway import SESSION_SCHEMA
from oxydra.memory import MemoryStore
from oxydra.memory._db import load_migrations
from oxydra.memory._pg import PgDatabase
from oxydra.scheduler import SCHEDULE_SCHEMA
from oxydra.testing.postgres import LocalPostgres

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = (SESSION_SCHEMA, SCHEDULE_SCHEMA)
OURS = max(m.version for m in load_migrations(SCHEMAS))


def _future_schema(root: Path, sqlite_sql: str, pg_sql: str) -> None:
    """A package `future_schema` (and its `_pg` twin) with version 90: a newer program's."""
    for name, sql in (("future_schema", sqlite_sql), ("future_schema_pg", pg_sql)):
        package = root / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "0090_future.sql").write_text(sql)


def _store(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxydra", "store", *args, "--workspace", str(cwd / "ws")],
        capture_output=True, text=True, timeout=120, cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_an_upgrade_by_a_newer_program_is_rolled_back_for_the_older_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ws" / ".oxydra" / "memory.db"
    with MemoryStore(path, schemas=SCHEMAS) as store:
        store.events.create_session("kept", user_id="alice")
    _future_schema(tmp_path / "pkgs", "CREATE TABLE future(x);\n", "SELECT 1;\n")
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    with MemoryStore(path, schemas=(*SCHEMAS, "future_schema")) as newer:
        assert newer.schema_version == 90
        newer.events.create_session("written-by-the-newer-program", user_id="alice")
    assert path.with_name(f"memory.db.v{OURS}.bak").exists()

    refused = _store(tmp_path, "status")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"has schema version 90, newer than this Oxydra understands ({OURS})" in refused.stderr
    assert "oxydra store rollback" in refused.stderr

    back = _store(tmp_path, "rollback")
    assert back.returncode == 0, back.stderr
    assert f"rolled back from schema version 90 to {OURS}" in back.stdout
    status = _store(tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert f"schema version: {OURS}" in status.stdout and "sessions: 1 rows" in status.stdout
    assert path.with_name("memory.db.v90.replaced").exists(), "the newer writes are kept aside"


_MIGRATE_SQLITE = """
import sys, time
from pathlib import Path
from oxydra.memory._db import Database, migrate
from oxydra.gateway import SESSION_SCHEMA
from oxydra.scheduler import SCHEDULE_SCHEMA

def pause():
    Path(sys.argv[2]).write_text("mid-migration")
    time.sleep(120)
    return 0

db = Database(Path(sys.argv[1]))
db.connection.create_function("pause", 0, pause)
migrate(db, schemas=[SESSION_SCHEMA, SCHEDULE_SCHEMA, "future_schema"])
"""


def _wait_for(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_kill_9_during_a_sqlite_migration_leaves_the_old_version(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with MemoryStore(path, schemas=SCHEMAS) as store:
        store.events.create_session("kept", user_id="alice")
    _future_schema(tmp_path / "pkgs", "CREATE TABLE future(x);\nSELECT pause();\n", "")
    marker = tmp_path / "marker"
    upgrade = subprocess.Popen(
        [sys.executable, "-c", _MIGRATE_SQLITE, str(path), str(marker)],
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{tmp_path / 'pkgs'}"},
    )
    try:
        _wait_for(marker.exists, "the migration to reach its pause")
        upgrade.send_signal(signal.SIGKILL)
        upgrade.wait(20)
    finally:
        if upgrade.poll() is None:
            upgrade.kill()
            upgrade.wait(20)
    with MemoryStore(path, schemas=SCHEMAS) as old:
        assert old.schema_version == OURS
        assert old.db.query_one("SELECT count(*) FROM sqlite_master WHERE name = 'future'") == (0,)
        assert old.events.get_session("kept") is not None


_MIGRATE_PG = """
import sys
from oxydra.memory._pg import PgDatabase
from oxydra.memory._pgmigrate import migrate_pg
from oxydra.gateway import SESSION_SCHEMA
from oxydra.scheduler import SCHEDULE_SCHEMA

migrate_pg(PgDatabase(sys.argv[1]), [SESSION_SCHEMA, SCHEDULE_SCHEMA, "future_schema"])
"""


def test_kill_9_during_a_postgres_migration_rolls_it_back(
    tmp_path: Path, pg_url: str, postgres_server: LocalPostgres
) -> None:
    MemoryStore(PgDatabase(pg_url), schemas=SCHEMAS).close()
    _future_schema(tmp_path / "pkgs", "", "CREATE TABLE future(x int);\nSELECT pg_sleep(120);\n")
    dbname = pg_url.rsplit("/", 1)[1]
    upgrade = subprocess.Popen(
        [sys.executable, "-c", _MIGRATE_PG, pg_url],
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{tmp_path / 'pkgs'}"},
    )
    sleeping = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '" + dbname + "' "
        "AND query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()"
    )
    try:
        _wait_for(lambda: postgres_server.psql(sleeping).strip() == "1", "the migration's sleep")
        upgrade.send_signal(signal.SIGKILL)
        upgrade.wait(20)
    finally:
        if upgrade.poll() is None:
            upgrade.kill()
            upgrade.wait(20)
    with MemoryStore(PgDatabase(pg_url), schemas=SCHEMAS) as old:  # waits for the rollback
        assert old.schema_version == OURS
        assert old.db.query_one("SELECT to_regclass('future') IS NULL") == (True,)
