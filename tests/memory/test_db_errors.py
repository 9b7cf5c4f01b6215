"""Bad database files and locks give a clear MemoryStoreError naming the path."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from oxydra.core import MemoryStoreError, Message
from oxydra.memory import MemoryStore

from .conftest import python_process

HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
"""


class TestBadFiles:
    def test_file_that_is_not_sqlite_is_reported_as_corrupt(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True)
        db_path.write_bytes(b"this is not a database\n" * 200)
        with pytest.raises(MemoryStoreError, match="corrupt") as caught:
            MemoryStore(db_path)
        assert str(db_path) in str(caught.value)
        assert caught.value.hint and "move the file aside" in caught.value.hint

    def test_damaged_schema_page_is_reported_as_corrupt(self, db_path: Path) -> None:
        with MemoryStore(db_path) as store:
            store.events.create_session("s1", user_id="alice")
        data = bytearray(db_path.read_bytes())
        data[100:4096] = b"\xff" * (4096 - 100)
        db_path.write_bytes(bytes(data))
        with pytest.raises(MemoryStoreError, match="corrupt") as caught:
            MemoryStore(db_path)
        assert str(db_path) in str(caught.value)

    def test_directory_that_cannot_exist_is_named(self, tmp_path: Path) -> None:
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("a file where a directory should be")
        path = blocker / "memory.db"
        with pytest.raises(MemoryStoreError) as caught:
            MemoryStore(path)
        assert str(path) in str(caught.value)


class TestLocks:
    def test_write_blocked_by_another_process_fails_clearly_after_the_timeout(
        self, db_path: Path
    ) -> None:
        MemoryStore(db_path).close()
        holder = python_process(HOLD_LOCK, str(db_path), stdin=-1)
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            with MemoryStore(db_path, busy_timeout_ms=100) as store:
                with pytest.raises(MemoryStoreError, match="locked") as caught:
                    store.events.create_session("s1", user_id="alice")
                assert str(db_path) in str(caught.value)
        finally:
            holder.communicate(input="", timeout=30)

    def test_write_waits_for_a_short_lock_instead_of_failing(self, db_path: Path) -> None:
        MemoryStore(db_path).close()
        holder = python_process(HOLD_LOCK, str(db_path), stdin=-1)
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with MemoryStore(db_path, busy_timeout_ms=30_000) as store:
            releaser = threading.Thread(target=holder.communicate, kwargs={"input": ""})
            releaser.start()
            store.events.create_session("s1", user_id="alice")
            releaser.join()
            assert store.events.get_session("s1") is not None


class TestNoSqliteExceptionEscapes:
    def test_calls_on_a_closed_store_raise_memory_store_error(self, db_path: Path) -> None:
        store = MemoryStore(db_path)
        store.events.create_session("s1", user_id="alice")
        store.close()
        calls = [
            lambda: store.events.recall("s1"),
            lambda: store.append_event("s1", Message(role="user", content="x")),
            lambda: store.retrieval.search("x"),
            lambda: store.notes.list_notes("alice"),
        ]
        for call in calls:
            with pytest.raises(MemoryStoreError) as caught:
                call()
            assert not isinstance(caught.value, sqlite3.Error)
            assert isinstance(caught.value.__cause__, sqlite3.Error)

    def test_use_from_another_thread_is_translated(self, store: MemoryStore) -> None:
        errors: list[BaseException] = []

        def other_thread() -> None:
            try:
                store.events.recall("s1")
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert len(errors) == 1 and isinstance(errors[0], MemoryStoreError)
