"""The gateway's own tables in the memory database: sessions and channel mappings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oxydra.core import MemoryStoreError, new_session_id
from oxydra.gateway import SESSION_SCHEMA
from oxydra.gateway._store import MemorySessionRecords
from oxydra.gateway._table import SessionRecord, SessionTable
from oxydra.memory import Memory, MemoryStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "memory.db"


def table(store: MemoryStore) -> SessionTable:
    return SessionTable(store.db)


@pytest.fixture(params=["sqlite", "postgres"])
def reopen(request: pytest.FixtureRequest, db_path: Path) -> Callable[[], MemoryStore]:
    """Opens the test's store, SQLite or PostgreSQL: the table's SQL is shared by both."""
    if request.param == "sqlite":
        return lambda: MemoryStore(db_path, schemas=[SESSION_SCHEMA])
    from oxydra.memory._pg import PgDatabase

    url = request.getfixturevalue("pg_url")
    return lambda: MemoryStore(PgDatabase(url), schemas=[SESSION_SCHEMA])


@pytest.fixture
def store(reopen: Callable[[], MemoryStore]) -> Iterator[MemoryStore]:
    opened = reopen()
    yield opened
    opened.close()


def _pause() -> None:
    """Let the millisecond clock move so timestamps differ."""
    time.sleep(0.003)


class TestGatewaySessions:
    def test_create_sets_defaults_and_timestamps(self, store: MemoryStore) -> None:
        record = table(store).create("g1", "alice")
        assert (record.agent_name, record.channel_origin, record.archived) == (
            "default",
            "tui",
            False,
        )
        assert record.created_at == record.last_active_at
        assert table(store).get("g1") == record

    def test_a_taken_id_is_refused(self, store: MemoryStore) -> None:
        table(store).create("g1", "alice")
        with pytest.raises(MemoryStoreError, match="already exists"):
            table(store).create("g1", "alice")

    def test_get_or_create_is_idempotent_and_owner_checked(self, store: MemoryStore) -> None:
        first = table(store).get_or_create("runtime-alice", "alice")
        assert table(store).get_or_create("runtime-alice", "alice") == first
        with pytest.raises(MemoryStoreError, match="another user"):
            table(store).get_or_create("runtime-alice", "bob")

    def test_list_is_most_recently_active_first_and_touch_reorders(
        self, store: MemoryStore
    ) -> None:
        for name in ("a", "b", "c"):
            table(store).create(name, "alice")
            _pause()
        assert [s.session_id for s in table(store).list_sessions("alice")] == [
            "c",
            "b",
            "a",
        ]
        assert table(store).touch("a")
        assert [s.session_id for s in table(store).list_sessions("alice")] == [
            "a",
            "c",
            "b",
        ]

    def test_list_hides_archived_and_subagent_sessions_unless_asked(
        self, store: MemoryStore
    ) -> None:
        table(store).create("top", "alice")
        table(store).create("sub", "alice", parent_session_id="top")
        table(store).create("old", "alice")
        table(store).archive("old")
        assert [s.session_id for s in table(store).list_sessions("alice")] == ["top"]
        everything = table(store).list_sessions(
            "alice", include_archived=True, include_subagents=True
        )
        assert {s.session_id for s in everything} == {"top", "sub", "old"}
        assert table(store).count_active("alice") == 1

    def test_other_users_sessions_are_not_listed(self, store: MemoryStore) -> None:
        table(store).create("a1", "alice")
        table(store).create("b1", "bob")
        assert [s.session_id for s in table(store).list_sessions("bob")] == ["b1"]

    def test_display_name_archive_and_unarchive(self, store: MemoryStore) -> None:
        table(store).create("g1", "alice", display_name="first")
        assert table(store).update_display_name("g1", "renamed")
        assert table(store).archive("g1")
        record = table(store).get("g1")
        assert record is not None and (record.display_name, record.archived) == ("renamed", True)
        assert table(store).unarchive("g1")
        assert not table(store).touch("missing")

    def test_prefix_lookup_prefers_exact_match_and_escapes_wildcards(
        self, store: MemoryStore
    ) -> None:
        ids = [new_session_id() for _ in range(2)]
        for session_id in ids:
            table(store).create(session_id, "alice")
        table(store).create("ab", "alice")
        table(store).create("abc", "alice")
        assert [s.session_id for s in table(store).find_by_prefix("alice", ids[0][:30])] == [ids[0]]
        assert next(s.session_id for s in table(store).find_by_prefix("alice", "ab")) == "ab"
        assert table(store).find_by_prefix("alice", "%") == []
        assert table(store).find_by_prefix("bob", "ab") == []

    def test_sessions_survive_a_restart(
        self, store: MemoryStore, reopen: Callable[[], MemoryStore]
    ) -> None:
        table(store).create("g1", "alice", display_name="keep me", channel_origin="telegram")
        table(store).set_channel_mapping("telegram", "42:7", "g1")
        store.close()
        with reopen() as reopened:
            record = table(reopened).get("g1")
            assert record is not None and record.display_name == "keep me"
            assert table(reopened).get_channel_mapping("telegram", "42:7") == "g1"


class TestChannelMappings:
    def test_mapping_is_upserted(self, store: MemoryStore) -> None:
        table(store).create("g1", "alice")
        table(store).create("g2", "alice")
        assert table(store).get_channel_mapping("telegram", "1") is None
        table(store).set_channel_mapping("telegram", "1", "g1")
        table(store).set_channel_mapping("telegram", "1", "g2")
        assert table(store).get_channel_mapping("telegram", "1") == "g2"

    def test_mapping_to_an_unknown_session_is_refused(self, store: MemoryStore) -> None:
        with pytest.raises(MemoryStoreError):
            table(store).set_channel_mapping("telegram", "1", "missing")


async def test_the_gateway_store_is_resumable_after_reopening(db_path: Path) -> None:
    async with await Memory.open(db_path, schemas=[SESSION_SCHEMA]) as memory:
        records = MemorySessionRecords(memory)
        await records.create(SessionRecord(session_id="g1", user_id="alice", display_name="one"))
        await records.create(SessionRecord(session_id="g2", user_id="alice"))
        await records.create(SessionRecord(session_id="s", user_id="alice", parent_session_id="g1"))
        await records.touch("g1")
    async with await Memory.open(db_path, schemas=[SESSION_SCHEMA]) as memory:
        records = MemorySessionRecords(memory)
        listed = await records.list_sessions("alice")
        assert {s.session_id for s in listed} == {"g1", "s", "g2"}
        record = await records.get("g1")
        assert record is not None and record.display_name == "one"
        assert await records.count_active("alice") == 2, "sub-agent sessions do not count"
        assert [s.session_id for s in await records.find_by_prefix("alice", "g")] != []
        assert [s.session_id for s in await records.find_by_prefix("alice", "g1")] == ["g1"]
        assert await records.find_by_prefix("bob", "g") == []
