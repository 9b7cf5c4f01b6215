"""The app's list of schema owners, and the store's open when its schema is current."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from oxydra.app.schemas import OWNER_SCHEMAS
from oxydra.channels import CHANNEL_SCHEMA
from oxydra.core.errors import MemoryStoreError
from oxydra.gateway import SESSION_SCHEMA
from oxydra.memory import MemoryStore
from oxydra.memory._db import load_migrations, migration_files
from oxydra.scheduler import SCHEDULE_SCHEMA


def test_the_written_out_names_are_the_owners() -> None:
    assert OWNER_SCHEMAS == (SESSION_SCHEMA, SCHEDULE_SCHEMA, CHANNEL_SCHEMA)


def test_files_found_without_importing_equal_those_of_the_imported_packages() -> None:
    from importlib import resources

    listed = {(v, n) for v, n, _ in migration_files(OWNER_SCHEMAS)}
    imported = set()
    for package in ("oxydra.memory.migrations", *OWNER_SCHEMAS):
        for entry in resources.files(package).iterdir():
            if entry.name.endswith(".sql"):
                version, _, name = entry.name.removesuffix(".sql").partition("_")
                imported.add((int(version), name))
    assert listed == imported and listed


def test_a_current_store_opens_and_a_missing_step_is_still_applied(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with MemoryStore(path, schemas=OWNER_SCHEMAS) as store:
        latest = store.schema_version
    with MemoryStore(path, schemas=OWNER_SCHEMAS) as store:  # the fast path
        assert store.schema_version == latest
    last = load_migrations(OWNER_SCHEMAS)[-1]
    with sqlite3.connect(path) as conn:  # as if the last step had never run
        conn.execute("DELETE FROM memory_migrations WHERE version = ?", (last.version,))
    try:  # not taken for current: the step runs again (and may fail on its own tables)
        MemoryStore(path, schemas=OWNER_SCHEMAS).close()
    except MemoryStoreError:
        return
    with sqlite3.connect(path) as conn:
        versions = {row[0] for row in conn.execute("SELECT version FROM memory_migrations")}
    assert last.version in versions


def test_a_store_with_an_unknown_version_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with MemoryStore(path, schemas=OWNER_SCHEMAS):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO memory_migrations (version, name) VALUES (9999, 'x')")
    with pytest.raises(MemoryStoreError, match="newer"):
        MemoryStore(path, schemas=OWNER_SCHEMAS)
