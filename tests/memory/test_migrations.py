"""Schema migrations: fresh databases, in-place upgrades, refusal of newer schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxydra.channels import CHANNEL_SCHEMA
from oxydra.core import MemoryStoreError, Message
from oxydra.gateway import SESSION_SCHEMA
from oxydra.memory import MemoryStore
from oxydra.memory._db import (
    Database,
    Migration,
    applied_versions,
    load_migrations,
    migrate,
    split_statements,
)
from oxydra.scheduler import SCHEDULE_SCHEMA

OWNERS = (SESSION_SCHEMA, SCHEDULE_SCHEMA, CHANNEL_SCHEMA)  # what the app opens the store with

EXPECTED_TABLES = {
    "sessions",
    "conversation_events",
    "session_state",
    "session_summaries",
    "memory_meta",
    "files",
    "chunks",
    "chunks_vec",
    "chunks_fts",
    "memory_migrations",
}
OWNED_TABLES = {
    "gateway_sessions",
    "channel_session_mappings",
    "schedules",
    "schedule_runs",
    "scheduled_notifications",
    "session_leases",
    "session_frames",
}


def _tables(db: Database) -> set[str]:
    rows = db.query("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    return {row[0] for row in rows}


class TestShippedMigrations:
    def test_migrations_load_from_package_data_in_version_order(self) -> None:
        migrations = load_migrations(OWNERS)
        versions = [m.version for m in migrations]
        assert versions == sorted(versions)
        assert versions[0] == 1
        assert len(set(versions)) == len(versions)

    def test_every_migration_splits_into_complete_statements(self) -> None:
        for migration in load_migrations(OWNERS):
            statements = split_statements(migration.sql)
            assert statements, migration.name
            assert all(s.rstrip().endswith(";") for s in statements)

    def test_trigger_bodies_stay_one_statement(self) -> None:
        script = "CREATE TABLE t(x);\nCREATE TRIGGER g AFTER INSERT ON t BEGIN\n  SELECT 1;\nEND;\n"
        assert len(split_statements(script)) == 2

    def test_schedule_tables_come_only_from_the_scheduler_migration(self) -> None:
        mentions = [m.name for m in load_migrations(OWNERS) if "schedule" in m.sql.lower()]
        assert mentions == ["schedules", "run_leases"]

    def test_each_owner_ships_its_own_migrations(self) -> None:
        own = {m.name for m in load_migrations()}
        assert not any("gateway" in n or "schedule" in n for n in own)
        assert {m.name for m in load_migrations([SESSION_SCHEMA])} - own == {
            "gateway_sessions",
            "session_leases",
            "session_frames",
            "session_lifecycle",
            "subagent_jobs",
        }
        assert {m.name for m in load_migrations([SCHEDULE_SCHEMA])} - own == {
            "schedules",
            "run_leases",
        }

    def test_two_owners_claiming_one_version_is_an_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        package = tmp_path / "clashing_schema"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "0003_clash.sql").write_text("CREATE TABLE clash(x);\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        with pytest.raises(MemoryStoreError, match="duplicate"):
            load_migrations([SESSION_SCHEMA, "clashing_schema"])


class TestOpening:
    def test_fresh_database_gets_every_table_and_records_every_version(self, db_path: Path) -> None:
        with MemoryStore(db_path, schemas=OWNERS) as store:
            assert EXPECTED_TABLES | OWNED_TABLES <= _tables(store.db)
            assert applied_versions(store.db) == {m.version for m in load_migrations(OWNERS)}
            assert store.schema_version == load_migrations(OWNERS)[-1].version

    def test_the_store_alone_creates_only_its_own_tables(self, db_path: Path) -> None:
        with MemoryStore(db_path) as store:
            assert EXPECTED_TABLES <= _tables(store.db)
            assert not OWNED_TABLES & _tables(store.db)

    def test_a_database_with_owners_tables_is_refused_without_their_schemas(
        self, db_path: Path
    ) -> None:
        MemoryStore(db_path, schemas=OWNERS).close()
        with pytest.raises(MemoryStoreError, match="every owner"):
            MemoryStore(db_path)

    def test_pragmas_are_wal_full_sync_and_foreign_keys(self, db_path: Path) -> None:
        with MemoryStore(db_path) as store:
            assert store.db.query_one("PRAGMA journal_mode") == ("wal",)
            assert store.db.query_one("PRAGMA synchronous") == (2,)
            assert store.db.query_one("PRAGMA foreign_keys") == (1,)
            assert store.db.query_one("PRAGMA busy_timeout") == (5000,)

    def test_reopening_applies_nothing_twice(self, db_path: Path) -> None:
        MemoryStore(db_path).close()
        with MemoryStore(db_path) as store:
            rows = store.db.query("SELECT count(*) FROM memory_migrations")
            assert rows[0][0] == len(load_migrations())

    @pytest.mark.parametrize("applied", [1, 2])
    def test_older_database_upgrades_in_place_keeping_its_data(
        self, db_path: Path, applied: int
    ) -> None:
        old = Database(db_path)
        migrate(old, load_migrations()[:applied])
        with old.write() as conn:
            conn.execute("INSERT INTO sessions(session_id, user_id) VALUES ('old', 'alice')")
            conn.execute(
                "INSERT INTO conversation_events(session_id, sequence, payload_json) "
                """VALUES ('old', 1, '{"role":"user","content":"kept"}')"""
            )
        assert "gateway_sessions" not in _tables(old)
        old.close()

        with MemoryStore(db_path, schemas=OWNERS) as store:
            assert EXPECTED_TABLES | OWNED_TABLES <= _tables(store.db)
            events = store.events.recall("old")
            assert [e.message for e in events] == [Message(role="user", content="kept")]
            store.append_event("old", Message(role="user", content="after upgrade"))
            assert store.events.last_sequence("old") == 2

    def test_database_from_a_newer_version_is_refused_naming_the_path(self, db_path: Path) -> None:
        MemoryStore(db_path).close()
        db = Database(db_path)
        with db.write() as conn:
            conn.execute("INSERT INTO memory_migrations(version, name) VALUES (9999, 'future')")
        db.close()
        with pytest.raises(MemoryStoreError, match="newer") as caught:
            MemoryStore(db_path)
        assert str(db_path) in str(caught.value)

    def test_failed_migration_leaves_no_partial_schema(self, db_path: Path) -> None:
        broken = (
            *load_migrations()[:1],
            Migration(version=2, name="broken", sql="CREATE TABLE half(x);\nNOT SQL AT ALL;\n"),
        )
        db = Database(db_path)
        migrate(db, broken[:1])
        with pytest.raises(MemoryStoreError):
            migrate(db, broken)
        assert "half" not in _tables(db)
        assert applied_versions(db) == {1}
        db.close()

    def test_an_upgrade_applies_every_pending_step_or_none(self, db_path: Path) -> None:
        """Steps 2 and 3 go in one transaction: 3 failing takes 2 back with it."""
        steps = (
            *load_migrations()[:1],
            Migration(version=2, name="fine", sql="CREATE TABLE fine(x);\n"),
            Migration(version=3, name="broken", sql="NOT SQL AT ALL;\n"),
        )
        db = Database(db_path)
        migrate(db, steps[:1])
        with pytest.raises(MemoryStoreError):
            migrate(db, steps)
        assert "fine" not in _tables(db) and applied_versions(db) == {1}
        db.close()


def test_every_step_has_a_postgres_twin_of_the_same_version() -> None:
    """Both backends are versioned alike: a store moved between them keeps its version."""
    owners = [SESSION_SCHEMA, SCHEDULE_SCHEMA]
    sqlite = {(m.version, m.name) for m in load_migrations(owners)}
    postgres = {(m.version, m.name) for m in load_migrations(owners, dialect="postgres")}
    assert sqlite == postgres
