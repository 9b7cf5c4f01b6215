"""Sessions and the conversation event log."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from oxydra.core import MediaPart, MemoryStoreError, Message, TextPart, ToolCall
from oxydra.memory import MemoryStore

MESSAGES = [
    Message(role="system", content="You are Oxydra."),
    Message(role="user", content="Book me a table for two at 8pm"),
    Message(
        role="assistant",
        content="Checking availability",
        tool_calls=(
            ToolCall(
                id="call-1",
                name="web_search",
                arguments={"query": "tables tonight", "count": 3},
                provider_details={"thought_signature": "abc"},
            ),
        ),
    ),
    Message(role="tool", content='{"results": []}', tool_call_id="call-1", name="web_search"),
    Message(role="assistant", content=(TextPart(text="Done: "), TextPart(text="booked."))),
]


class TestEventRoundTrip:
    def test_messages_come_back_equal_and_in_order(self, store: MemoryStore) -> None:
        sequences = store.append_events("s1", MESSAGES)
        assert sequences == [1, 2, 3, 4, 5]
        events = store.events.recall("s1")
        assert [e.message for e in events] == MESSAGES
        assert [e.sequence for e in events] == sequences

    def test_events_survive_reopening(self, store: MemoryStore, db_path: Path) -> None:
        store.append_events("s1", MESSAGES)
        store.close()
        with MemoryStore(db_path) as reopened:
            assert [e.message for e in reopened.events.recall("s1")] == MESSAGES

    def test_media_bytes_are_not_stored(self, store: MemoryStore, db_path: Path) -> None:
        secret = b"\x00IMAGE-BYTES-" * 1000
        message = Message(
            role="user",
            content=(
                TextPart(text="what is this?"),
                MediaPart(mime_type="image/jpeg", data=secret),
            ),
        )
        store.append_event("s1", message)
        stored = store.events.recall("s1")[0].message
        assert stored.media == ()
        assert "image/jpeg" in stored.text and "13000 bytes" in stored.text
        row = store.db.query_one("SELECT payload_json FROM conversation_events")
        assert row is not None and "IMAGE" not in row[0]

    def test_recall_with_limit_returns_the_last_events_ascending(self, store: MemoryStore) -> None:
        store.append_events("s1", MESSAGES)
        assert [e.sequence for e in store.events.recall("s1", limit=2)] == [4, 5]
        assert [e.sequence for e in store.events.recall("s1", after_sequence=3)] == [4, 5]

    def test_recall_of_an_empty_session_is_empty(self, store: MemoryStore) -> None:
        assert store.events.recall("s1") == []
        assert store.events.last_sequence("s1") == 0


class TestSequences:
    def test_automatic_sequences_continue_after_the_last(self, store: MemoryStore) -> None:
        store.append_event("s1", MESSAGES[0], sequence=10)
        assert store.append_event("s1", MESSAGES[1]) == 11

    @pytest.mark.parametrize("sequence", [0, 1, 2])
    def test_a_sequence_not_above_the_last_is_refused(
        self, store: MemoryStore, sequence: int
    ) -> None:
        store.append_events("s1", MESSAGES[:2])
        with pytest.raises(MemoryStoreError, match="not above"):
            store.append_event("s1", MESSAGES[2], sequence=sequence)

    def test_a_refused_batch_stores_nothing(self, store: MemoryStore) -> None:
        store.append_event("s1", MESSAGES[0], sequence=5)
        with pytest.raises(MemoryStoreError):
            store.append_events("s1", MESSAGES[1:3], first_sequence=4)
        assert store.events.last_sequence("s1") == 5
        assert store.db.query_one("SELECT count(*) FROM chunks") == (0,)

    def test_appending_to_an_unknown_session_fails(self, store: MemoryStore) -> None:
        with pytest.raises(MemoryStoreError, match="unknown session"):
            store.append_event("nope", MESSAGES[1])

    def test_sequences_are_per_session(self, store: MemoryStore) -> None:
        store.events.create_session("s2", user_id="alice")
        store.append_event("s1", MESSAGES[1])
        assert store.append_event("s2", MESSAGES[1]) == 1


class TestSessions:
    def test_create_is_get_or_create(self, store: MemoryStore) -> None:
        first = store.events.get_session("s1")
        again = store.events.create_session("s1", user_id="alice", agent_identity="x")
        assert first == again

    def test_a_session_cannot_change_owner(self, store: MemoryStore) -> None:
        with pytest.raises(MemoryStoreError, match="another user"):
            store.events.create_session("s1", user_id="bob")

    def test_restore_returns_session_events_and_summary(self, store: MemoryStore) -> None:
        store.append_events("s1", MESSAGES)
        store.events.save_summary("s1", expected_epoch=0, summary="so far", upper_sequence=3)
        restored = store.events.restore_session("s1")
        assert restored is not None
        assert restored.session.user_id == "alice"
        assert [e.message for e in restored.events] == MESSAGES
        assert restored.summary is not None and restored.summary.upper_sequence == 3

    def test_restoring_an_unknown_session_gives_none(self, store: MemoryStore) -> None:
        assert store.events.restore_session("missing") is None

    def test_a_users_sessions_are_listed_most_recent_first(self, store: MemoryStore) -> None:
        store.events.create_session("s2", user_id="alice")
        store.events.create_session("b1", user_id="bob")
        time.sleep(0.003)  # let the millisecond clock move: equal times sort by id
        store.append_event("s1", MESSAGES[1])
        listed = [s.session_id for s in store.events.list_sessions("alice")]
        assert listed == ["s1", "s2"]
        assert [s.session_id for s in store.events.list_sessions("bob")] == ["b1"]

    def test_deleting_a_session_removes_its_events_and_chunks(self, store: MemoryStore) -> None:
        store.append_events("s1", MESSAGES)
        assert store.events.delete_session("s1")
        assert store.events.recall("s1") == []
        assert store.db.query_one("SELECT count(*) FROM chunks") == (0,)
        assert store.db.query_one("SELECT count(*) FROM chunks_fts") == (0,)
        assert not store.events.delete_session("s1")


class TestConversationIndexing:
    def test_user_assistant_and_tool_messages_are_indexed_but_not_system(
        self, store: MemoryStore
    ) -> None:
        store.append_events("s1", MESSAGES)
        sources = {
            row[0]
            for row in store.db.query("SELECT json_extract(metadata_json, '$.source') FROM chunks")
        }
        assert sources == {
            "user_message",
            "assistant_tool_call",
            "tool_output",
            "assistant_message",
        }

    def test_chunk_ids_follow_upstream_format(self, store: MemoryStore) -> None:
        store.append_event("s1", MESSAGES[1])
        (chunk_id,) = store.db.query_one("SELECT chunk_id FROM chunks") or ("",)
        prefix, session, sequence, index, digest = chunk_id.split(":")
        assert (prefix, session, sequence, index, len(digest)) == ("chunk", "s1", "1", "0", 16)

    def test_long_messages_become_overlapping_chunks(self, store: MemoryStore) -> None:
        text = " ".join(f"token{i}" for i in range(400))
        store.append_event("s1", Message(role="user", content=text))
        rows = store.db.query("SELECT chunk_text, metadata_json FROM chunks ORDER BY chunk_key")
        assert len(rows) > 1 and all(len(r[0]) <= 640 for r in rows)

    def test_repeated_text_in_a_session_is_indexed_once(self, store: MemoryStore) -> None:
        store.append_event("s1", Message(role="user", content="ok"))
        store.append_event("s1", Message(role="user", content="ok"))
        assert store.db.query_one("SELECT count(*) FROM chunks") == (1,)
        assert store.events.last_sequence("s1") == 2

    def test_indexing_can_be_skipped(self, store: MemoryStore) -> None:
        store.append_event("s1", MESSAGES[1], index=False)
        assert store.db.query_one("SELECT count(*) FROM chunks") == (0,)

    def test_indexed_messages_are_searchable_in_their_session(self, store: MemoryStore) -> None:
        store.append_events("s1", MESSAGES)
        hits = store.retrieval.search("table for two", session_ids=["s1"], top_k=1)
        assert hits[0].text == "Book me a table for two at 8pm"
        assert hits[0].sequence_start == 2
