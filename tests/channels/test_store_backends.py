"""Every `ChannelStore` statement runs on SQLite and on PostgreSQL (the SQL is shared).

The channel's tables had PostgreSQL twins, but its upserts were SQLite-only (two-argument
`max()`, an unqualified column in `DO UPDATE`): on PostgreSQL the first Telegram message
failed to store and the poll loop died.
"""

from __future__ import annotations

import pytest

from oxydra.channels._store import ChannelStore, OutPiece
from oxydra.memory import Memory


@pytest.fixture
def memory(either_store: Memory) -> Memory:
    """The store under test, SQLite then PostgreSQL."""
    return either_store


async def test_ingress_moves_the_offset_forward_only_and_stores_once(memory: Memory) -> None:
    store = ChannelStore(memory, "telegram:1")
    assert await store.offset() == 0
    assert await store.accept(5, "alice", "111", b'{"text": "hi"}')
    assert not await store.accept(5, "alice", "111", b'{"text": "hi"}'), "stored once"
    assert await store.offset() == 5
    assert not await store.accept(3, None, "111", b"")  # an old id skipped
    assert await store.offset() == 5, "the offset never moves back"
    [row] = await store.open_messages()
    assert (row.update_id, row.person, row.state) == (5, "alice", "pending")
    await store.mark_running(5, "s1", 1001)
    [row] = await store.open_messages()
    assert (row.session_id, row.placeholder_id) == ("s1", 1001)


async def test_an_answer_and_its_delivery(memory: Memory) -> None:
    store = ChannelStore(memory, "telegram:1")
    await store.accept(7, "alice", "111", b"{}")
    await store.answer(
        7, "111", [OutPiece(kind="send", plain="a"), OutPiece(kind="send", plain="b")]
    )
    assert await store.open_messages() == []
    first, second = await store.pending()
    await store.sent(first.id, 1234)
    await store.failed(second.id, "502", final=False)
    counts = await store.counts()
    assert (counts["sent"], counts["pending"], counts["inbox_open"]) == (1, 1, 0)
    await store.failed(second.id, "502", final=True)
    assert (await store.counts())["failed"] == 1


async def test_people_sessions_and_spend(memory: Memory) -> None:
    store = ChannelStore(memory, "telegram:1")
    assert await store.session_for("alice", "111") is None
    await store.bind("alice", "111", "s1")
    await store.bind("alice", "111", "s2")  # rebound
    assert await store.session_for("alice", "111") == "s2"
    assert await store.contexts_of("s2") == [("alice", "111")]
    assert await store.bound() == [("alice", "111", "s2")]
    await store.add_spend("alice", 0.25)
    await store.add_spend("alice", 0.5)
    assert await store.spent_today("alice") == pytest.approx(0.75)
