"""User notes: saving, updating, deleting, and isolation between users."""

from __future__ import annotations

import re

import pytest

from oxydra.core import ToolArgumentsError
from oxydra.memory import MemoryStore, notes_session_id


class TestNotes:
    def test_a_saved_note_has_a_uuid_id_tags_and_timestamps(self, store: MemoryStore) -> None:
        note = store.notes.store_note("alice", "Prefers aisle seats", [" Travel ", "travel"])
        assert re.fullmatch(r"note-[0-9a-f-]{36}", note.note_id)
        assert note.tags == ("travel",) and note.created_at == note.updated_at
        assert store.notes.get_note("alice", note.note_id) == note

    def test_notes_live_in_the_users_memory_session(self, store: MemoryStore) -> None:
        note = store.notes.store_note("alice", "Likes tea")
        session = store.events.get_session(notes_session_id("alice"))
        assert session is not None and session.user_id == "alice"
        event = store.events.recall(notes_session_id("alice"))[0].message
        assert (event.role, event.text, event.tool_call_id) == ("user", "Likes tea", note.note_id)

    def test_note_chunks_carry_upstream_metadata(self, store: MemoryStore) -> None:
        note = store.notes.store_note("alice", "Likes tea", ["drinks"])
        hit = store.retrieval.search("tea", user_id="alice")[0]
        assert hit.note_id == note.note_id
        assert hit.metadata["note_id"] == note.note_id
        assert hit.metadata["tags"] == ["drinks"] and hit.metadata["schema_version"] == 1
        assert hit.metadata["source"] == "memory_save"

    def test_update_replaces_content_keeps_id_created_at_and_tags(self, store: MemoryStore) -> None:
        note = store.notes.store_note("alice", "Prefers aisle seats", ["travel"])
        updated = store.notes.update_note("alice", note.note_id, "Prefers window seats")
        assert updated is not None
        assert (updated.note_id, updated.created_at, updated.tags) == (
            note.note_id,
            note.created_at,
            ("travel",),
        )
        assert updated.source == "memory_update"
        assert store.retrieval.search("aisle", user_id="alice", mode="fts") == []
        texts = [h.text for h in store.retrieval.search("window", user_id="alice", mode="fts")]
        assert texts == ["Prefers window seats"]
        assert [n.content for n in store.notes.list_notes("alice")] == ["Prefers window seats"]

    def test_update_can_replace_tags(self, store: MemoryStore) -> None:
        note = store.notes.store_note("alice", "x y z", ["a"])
        updated = store.notes.update_note("alice", note.note_id, "x y z", ["b", "c"])
        assert updated is not None and updated.tags == ("b", "c")

    def test_delete_removes_the_note_its_chunks_and_its_event(self, store: MemoryStore) -> None:
        note = store.notes.store_note("alice", "Temporary fact about llamas")
        assert store.notes.delete_note("alice", note.note_id)
        assert store.notes.get_note("alice", note.note_id) is None
        assert store.retrieval.search("llamas", user_id="alice") == []
        assert store.events.recall(notes_session_id("alice")) == []
        assert not store.notes.delete_note("alice", note.note_id)

    def test_a_long_note_is_indexed_in_several_chunks_and_deleted_whole(
        self, store: MemoryStore
    ) -> None:
        note = store.notes.store_note("alice", " ".join(f"fact{i}" for i in range(300)))
        count = store.db.query_one("SELECT count(*) FROM chunks WHERE note_id = ?", (note.note_id,))
        assert count is not None and count[0] > 1
        store.notes.delete_note("alice", note.note_id)
        assert store.db.query_one("SELECT count(*) FROM chunks") == (0,)

    def test_notes_are_listed_oldest_first(self, store: MemoryStore) -> None:
        first = store.notes.store_note("alice", "one")
        second = store.notes.store_note("alice", "two")
        assert [n.note_id for n in store.notes.list_notes("alice")] == [
            first.note_id,
            second.note_id,
        ]

    @pytest.mark.parametrize("content", ["", "   ", "x" * 16_001])
    def test_bad_content_is_refused(self, store: MemoryStore, content: str) -> None:
        with pytest.raises(ToolArgumentsError):
            store.notes.store_note("alice", content)

    def test_unknown_note_updates_to_none(self, store: MemoryStore) -> None:
        assert store.notes.update_note("alice", "note-missing", "x") is None


class TestIsolation:
    @pytest.fixture
    def notes(self, store: MemoryStore) -> dict[str, str]:
        a = store.notes.store_note("alice", "The vault combination is 12-34-56", ["secret"])
        b = store.notes.store_note("bob", "Bob's locker code is 9876")
        return {"alice": a.note_id, "bob": b.note_id}

    @pytest.mark.parametrize("mode", ["hybrid", "vector", "fts"])
    def test_user_a_never_finds_user_bs_note(
        self, store: MemoryStore, notes: dict[str, str], mode: str
    ) -> None:
        for query in ("vault combination 12-34-56", "secret", "locker code"):
            hits = store.retrieval.search(
                query,
                user_id="bob",
                session_ids=[notes_session_id("bob")],
                mode=mode,  # type: ignore[arg-type]
            )
            assert notes["alice"] not in {h.note_id for h in hits}

    def test_another_users_note_id_cannot_be_read_changed_or_deleted(
        self, store: MemoryStore, notes: dict[str, str]
    ) -> None:
        alice_note = notes["alice"]
        assert store.notes.get_note("bob", alice_note) is None
        assert store.notes.update_note("bob", alice_note, "hijacked") is None
        assert not store.notes.delete_note("bob", alice_note)
        kept = store.notes.get_note("alice", alice_note)
        assert kept is not None and kept.content == "The vault combination is 12-34-56"

    def test_searching_bobs_session_as_alice_finds_nothing(
        self, store: MemoryStore, notes: dict[str, str]
    ) -> None:
        hits = store.retrieval.search(
            "locker code", user_id="alice", session_ids=[notes_session_id("bob")]
        )
        assert hits == []
