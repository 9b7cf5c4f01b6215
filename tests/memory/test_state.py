"""Session state: free-form values, the scratchpad and rolling summaries."""

from __future__ import annotations

import pytest

from oxydra.core import MemoryStoreError, Message, ToolArgumentsError
from oxydra.memory import MemoryStore


class TestFreeFormState:
    def test_values_round_trip_and_none_removes(self, store: MemoryStore) -> None:
        store.events.set_state("s1", "last_frame", {"type": "turn_completed", "n": 1})
        assert store.events.get_state("s1", "last_frame") == {"type": "turn_completed", "n": 1}
        store.events.set_state("s1", "last_frame", None)
        assert store.events.get_state("s1", "last_frame") is None

    def test_keys_are_independent(self, store: MemoryStore) -> None:
        store.events.set_state("s1", "a", 1)
        store.events.set_state("s1", "b", [2])
        assert (store.events.get_state("s1", "a"), store.events.get_state("s1", "b")) == (1, [2])


class TestScratchpad:
    def test_write_then_read(self, store: MemoryStore) -> None:
        result = store.events.write_scratchpad("s1", [" step one ", "step two"])
        assert (result.updated, result.item_count) == (True, 2)
        pad = store.events.read_scratchpad("s1")
        assert pad.items == ("step one", "step two") and pad.updated_at

    def test_rewriting_the_same_items_reports_no_update(self, store: MemoryStore) -> None:
        store.events.write_scratchpad("s1", ["a"])
        assert not store.events.write_scratchpad("s1", ["a"]).updated

    def test_clear_reports_whether_there_was_anything(self, store: MemoryStore) -> None:
        assert not store.events.clear_scratchpad("s1")
        store.events.write_scratchpad("s1", ["a"])
        assert store.events.clear_scratchpad("s1")
        assert store.events.read_scratchpad("s1").items == ()

    @pytest.mark.parametrize(
        "items",
        [[], [""], ["   "], ["x" * 241], [f"item {i}" for i in range(33)], ["é" * 240] * 32],
    )
    def test_limits_are_enforced(self, store: MemoryStore, items: list[str]) -> None:
        with pytest.raises(ToolArgumentsError):
            store.events.write_scratchpad("s1", items)

    def test_the_largest_allowed_scratchpad_is_accepted(self, store: MemoryStore) -> None:
        items = ["x" * 240] * 32
        assert store.events.write_scratchpad("s1", items).item_count == 32

    def test_scratchpad_of_an_unknown_session_is_refused(self, store: MemoryStore) -> None:
        with pytest.raises(MemoryStoreError, match="unknown session"):
            store.events.write_scratchpad("nope", ["a"])


class TestSummaries:
    @pytest.fixture
    def with_events(self, store: MemoryStore) -> MemoryStore:
        store.append_events("s1", [Message(role="user", content=f"m{i}") for i in range(10)])
        return store

    def test_summary_is_stored_with_its_range_and_events_stay(
        self, with_events: MemoryStore
    ) -> None:
        state = with_events.events.save_summary(
            "s1", expected_epoch=0, summary="first", upper_sequence=4, metadata={"lines": 4}
        )
        assert state is not None
        assert (state.epoch, state.lower_sequence, state.upper_sequence) == (1, 1, 4)
        assert state.metadata == {"lines": 4}
        assert with_events.events.last_sequence("s1") == 10
        assert len(with_events.events.recall("s1")) == 10

    def test_a_stale_epoch_is_ignored(self, with_events: MemoryStore) -> None:
        events = with_events.events
        assert events.save_summary("s1", expected_epoch=0, summary="a", upper_sequence=4)
        assert events.save_summary("s1", expected_epoch=0, summary="b", upper_sequence=6) is None
        current = events.load_summary("s1")
        assert current is not None and current.summary == "a"

    def test_the_upper_bound_never_moves_backwards(self, with_events: MemoryStore) -> None:
        events = with_events.events
        events.save_summary("s1", expected_epoch=0, summary="a", upper_sequence=6)
        assert events.save_summary("s1", expected_epoch=1, summary="b", upper_sequence=5) is None

    def test_history_keeps_every_summary(self, with_events: MemoryStore) -> None:
        events = with_events.events
        events.save_summary("s1", expected_epoch=0, summary="a", upper_sequence=4)
        events.save_summary("s1", expected_epoch=1, summary="b", upper_sequence=8, lower_sequence=5)
        assert [(s.epoch, s.summary) for s in events.summary_history("s1")] == [(1, "a"), (2, "b")]
        latest = events.load_summary("s1")
        assert latest is not None and latest.lower_sequence == 5

    @pytest.mark.parametrize(("lower", "upper"), [(0, 3), (5, 4), (1, 11)])
    def test_a_range_outside_the_stored_events_is_refused(
        self, with_events: MemoryStore, lower: int, upper: int
    ) -> None:
        with pytest.raises(MemoryStoreError, match="range"):
            with_events.events.save_summary(
                "s1", expected_epoch=0, summary="x", upper_sequence=upper, lower_sequence=lower
            )

    def test_no_summary_is_none(self, store: MemoryStore) -> None:
        assert store.events.load_summary("s1") is None
