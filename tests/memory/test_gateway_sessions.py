"""Gateway sessions and channel mappings (the sync table behind SessionStore)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from oxydra.core import MemoryStoreError, new_session_id
from oxydra.memory import MemoryStore


def _pause() -> None:
    """Let the millisecond clock move so timestamps differ."""
    time.sleep(0.003)


class TestGatewaySessions:
    def test_create_sets_defaults_and_timestamps(self, store: MemoryStore) -> None:
        record = store.sessions.create("g1", "alice")
        assert (record.agent_name, record.channel_origin, record.archived) == (
            "default",
            "tui",
            False,
        )
        assert record.created_at == record.last_active_at
        assert store.sessions.get("g1") == record

    def test_a_taken_id_is_refused(self, store: MemoryStore) -> None:
        store.sessions.create("g1", "alice")
        with pytest.raises(MemoryStoreError, match="already exists"):
            store.sessions.create("g1", "alice")

    def test_get_or_create_is_idempotent_and_owner_checked(self, store: MemoryStore) -> None:
        first = store.sessions.get_or_create("runtime-alice", "alice")
        assert store.sessions.get_or_create("runtime-alice", "alice") == first
        with pytest.raises(MemoryStoreError, match="another user"):
            store.sessions.get_or_create("runtime-alice", "bob")

    def test_list_is_most_recently_active_first_and_touch_reorders(
        self, store: MemoryStore
    ) -> None:
        for name in ("a", "b", "c"):
            store.sessions.create(name, "alice")
            _pause()
        assert [s.session_id for s in store.sessions.list_sessions("alice")] == ["c", "b", "a"]
        assert store.sessions.touch("a")
        assert [s.session_id for s in store.sessions.list_sessions("alice")] == ["a", "c", "b"]

    def test_list_hides_archived_and_subagent_sessions_unless_asked(
        self, store: MemoryStore
    ) -> None:
        store.sessions.create("top", "alice")
        store.sessions.create("sub", "alice", parent_session_id="top")
        store.sessions.create("old", "alice")
        store.sessions.archive("old")
        assert [s.session_id for s in store.sessions.list_sessions("alice")] == ["top"]
        everything = store.sessions.list_sessions(
            "alice", include_archived=True, include_subagents=True
        )
        assert {s.session_id for s in everything} == {"top", "sub", "old"}
        assert store.sessions.count_active("alice") == 1

    def test_other_users_sessions_are_not_listed(self, store: MemoryStore) -> None:
        store.sessions.create("a1", "alice")
        store.sessions.create("b1", "bob")
        assert [s.session_id for s in store.sessions.list_sessions("bob")] == ["b1"]

    def test_display_name_archive_and_unarchive(self, store: MemoryStore) -> None:
        store.sessions.create("g1", "alice", display_name="first")
        assert store.sessions.update_display_name("g1", "renamed")
        assert store.sessions.archive("g1")
        record = store.sessions.get("g1")
        assert record is not None and (record.display_name, record.archived) == ("renamed", True)
        assert store.sessions.unarchive("g1")
        assert not store.sessions.touch("missing")

    def test_prefix_lookup_prefers_exact_match_and_escapes_wildcards(
        self, store: MemoryStore
    ) -> None:
        ids = [new_session_id() for _ in range(2)]
        for session_id in ids:
            store.sessions.create(session_id, "alice")
        store.sessions.create("ab", "alice")
        store.sessions.create("abc", "alice")
        assert [s.session_id for s in store.sessions.find_by_prefix("alice", ids[0][:30])] == [
            ids[0]
        ]
        assert next(s.session_id for s in store.sessions.find_by_prefix("alice", "ab")) == "ab"
        assert store.sessions.find_by_prefix("alice", "%") == []
        assert store.sessions.find_by_prefix("bob", "ab") == []

    def test_sessions_survive_a_restart(self, store: MemoryStore, db_path: Path) -> None:
        store.sessions.create("g1", "alice", display_name="keep me", channel_origin="telegram")
        store.sessions.set_channel_mapping("telegram", "42:7", "g1")
        store.close()
        with MemoryStore(db_path) as reopened:
            record = reopened.sessions.get("g1")
            assert record is not None and record.display_name == "keep me"
            assert reopened.sessions.get_channel_mapping("telegram", "42:7") == "g1"


class TestChannelMappings:
    def test_mapping_is_upserted(self, store: MemoryStore) -> None:
        store.sessions.create("g1", "alice")
        store.sessions.create("g2", "alice")
        assert store.sessions.get_channel_mapping("telegram", "1") is None
        store.sessions.set_channel_mapping("telegram", "1", "g1")
        store.sessions.set_channel_mapping("telegram", "1", "g2")
        assert store.sessions.get_channel_mapping("telegram", "1") == "g2"

    def test_mapping_to_an_unknown_session_is_refused(self, store: MemoryStore) -> None:
        with pytest.raises(MemoryStoreError):
            store.sessions.set_channel_mapping("telegram", "1", "missing")
