"""The one async facade, `Memory`, on its worker thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from oxydra.config.schema import MemoryConfig
from oxydra.core import ConfigError, MemoryStoreError, Message
from oxydra.memory import HashedEmbedder, Memory


class SlowEmbedder:
    """A hashed embedder that takes its time and notes which thread called it."""

    def __init__(self, delay: float = 0.0) -> None:
        self._inner = HashedEmbedder()
        self.delay = delay
        self.threads: set[str] = set()

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dims(self) -> int:
        return self._inner.dims

    def embed(self, texts: Sequence[str]):  # type: ignore[no-untyped-def]
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return self._inner.embed(texts)


_EMBEDDER = "SELECT value FROM memory_meta WHERE key = 'embedding_backend'"


def _memory_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("oxydra-memory")]


async def test_events_round_trip_through_the_facade(db_path: Path) -> None:
    async with await Memory.open(db_path) as memory:
        await memory.create_session("s1", user_id="alice")
        sequences = await memory.append_events("s1", [Message(role="user", content="hello")])
        events = await memory.recall("s1")
        assert sequences == [1] and events[0].message.text == "hello"
        restored = await memory.restore_session("s1")
        assert restored is not None and restored.session.user_id == "alice"


async def test_store_work_runs_on_the_worker_thread_not_the_loop(db_path: Path) -> None:
    embedder = SlowEmbedder()
    async with await Memory.open(db_path, embedder=embedder) as memory:
        await memory.create_session("s1", user_id="alice")
        await memory.append_events("s1", [Message(role="user", content="hello")])
        await memory.search("hello", user_id="alice")
    assert embedder.threads and all(t.startswith("oxydra-memory") for t in embedder.threads)


async def test_the_loop_keeps_running_while_the_store_works(db_path: Path) -> None:
    async with await Memory.open(db_path, embedder=SlowEmbedder(delay=0.2)) as memory:
        await memory.create_session("s1", user_id="alice")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await memory.append_events("s1", [Message(role="user", content="slow to embed")])
        task.cancel()
        assert ticks > 0


async def test_concurrent_appends_get_distinct_increasing_sequences(db_path: Path) -> None:
    async with await Memory.open(db_path) as memory:
        await memory.create_session("s1", user_id="alice")
        messages = [Message(role="user", content=f"m{i}") for i in range(40)]
        batches = await asyncio.gather(*(memory.append_events("s1", [m]) for m in messages))
        assert sorted(s for batch in batches for s in batch) == list(range(1, 41))
        events = await memory.recall("s1")
        assert [e.sequence for e in events] == list(range(1, 41))


async def test_state_summary_and_scratchpad_through_the_facade(db_path: Path) -> None:
    async with await Memory.open(db_path) as memory:
        await memory.create_session("s1", user_id="alice")
        await memory.append_events("s1", [Message(role="user", content=f"m{i}") for i in range(5)])
        state = await memory.save_summary("s1", expected_epoch=0, summary="s", upper_sequence=3)
        assert state is not None
        assert (
            await memory.save_summary("s1", expected_epoch=0, summary="x", upper_sequence=4) is None
        )
        await memory.write_scratchpad("s1", ["plan"])
        assert (await memory.read_scratchpad("s1")).items == ("plan",)
        assert await memory.clear_scratchpad("s1")
        restored = await memory.restore_session("s1")
        assert restored is not None and len(restored.events) == 5 and restored.summary == state


async def test_notes_and_search_through_the_facade(db_path: Path) -> None:
    async with await Memory.open(db_path) as memory:
        note = await memory.store_note("alice", "Allergic to shellfish", ["health"])
        hits = await memory.search("shellfish allergy", user_id="alice")
        assert hits[0].note_id == note.note_id
        updated = await memory.update_note("alice", note.note_id, "Allergic to peanuts")
        assert updated is not None and updated.content == "Allergic to peanuts"
        assert (await memory.search("peanuts", user_id="alice"))[0].note_id == note.note_id
        assert await memory.delete_note("alice", note.note_id)
        assert not await memory.delete_note("alice", note.note_id)


async def test_calls_after_close_fail_clearly_and_close_is_idempotent(db_path: Path) -> None:
    memory = await Memory.open(db_path)
    await memory.close()
    await memory.close()
    with pytest.raises(MemoryStoreError, match="closed"):
        await memory.recall("s1")
    assert not _memory_threads()


async def test_a_failed_open_leaves_no_worker_thread(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"garbage" * 1000)
    with pytest.raises(MemoryStoreError, match="corrupt"):
        await Memory.open(db_path)
    assert not _memory_threads()


class TestFromConfig:
    async def test_default_path_is_under_the_workspace(self, tmp_path: Path) -> None:
        config = MemoryConfig(enabled=True, embedding_backend="deterministic")
        async with await Memory.from_config(config, workspace_root=tmp_path) as memory:
            assert memory.path == tmp_path / ".oxydra" / "memory.db"
            hashed = await memory.call(lambda db: db.query_one(_EMBEDDER))
            assert hashed == (HashedEmbedder().name,)
        assert memory.path.exists()

    async def test_relative_db_path_is_resolved_against_the_workspace(self, tmp_path: Path) -> None:
        config = MemoryConfig(db_path="data/mem.db", embedding_backend="deterministic")
        async with await Memory.from_config(config, workspace_root=tmp_path) as memory:
            assert memory.path == tmp_path / "data" / "mem.db"

    async def test_remote_database_is_a_config_error(self, tmp_path: Path) -> None:
        config = MemoryConfig(remote_url="libsql://example", auth_token="t")
        with pytest.raises(ConfigError, match="remote"):
            await Memory.from_config(config, workspace_root=tmp_path)


class TestCall:
    async def test_call_runs_on_the_worker_with_the_stores_connection(self, tmp_path: Path) -> None:
        from oxydra.memory import Database

        def probe(db: Database, table: str) -> tuple[str, int]:
            row = db.query_one("SELECT count(*) FROM sqlite_master WHERE name = ?", (table,))
            return threading.current_thread().name, row[0] if row else 0

        async with await Memory.open(tmp_path / "m.db", embedder=HashedEmbedder()) as memory:
            thread, found = await memory.call(probe, "memory_meta")
        assert thread.startswith("oxydra-memory") and found == 1

    async def test_call_after_close_is_a_store_error(self, tmp_path: Path) -> None:
        memory = await Memory.open(tmp_path / "m.db", embedder=HashedEmbedder())
        await memory.close()
        with pytest.raises(MemoryStoreError, match="closed"):
            await memory.call(lambda db: db.path)
