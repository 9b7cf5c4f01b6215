"""Real processes: concurrent writers and a writer killed with SIGKILL."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from oxydra.memory import MemoryStore, notes_session_id

from .conftest import python_process

WRITER = """
import sys
from oxydra.core import Message
from oxydra.memory import MemoryStore

path, session, count, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
store = MemoryStore(path, busy_timeout_ms=30_000)
store.events.create_session(session, user_id="u")
for i in range(count):
    text = f"{label} message {i} about topic{i % 7}"
    sequence = store.append_event(session, Message(role="user", content=text))
    if i % 10 == 0:
        store.notes.store_note("u", f"{label} note {i}")
    print(sequence, flush=True)
store.close()
"""


def _integrity(store: MemoryStore) -> None:
    assert store.db.query_one("PRAGMA integrity_check") == ("ok",)
    assert store.db.query_one("PRAGMA foreign_key_check") is None
    store.db.query("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")


@pytest.mark.parametrize("shared_session", [True, False])
def test_two_processes_writing_at_once_lose_and_corrupt_nothing(
    db_path: Path, shared_session: bool
) -> None:
    count = 120
    sessions = ("shared", "shared") if shared_session else ("one", "two")
    writers = [
        python_process(WRITER, str(db_path), session, str(count), label)
        for session, label in zip(sessions, ("A", "B"), strict=True)
    ]
    outputs = [w.communicate(timeout=300) for w in writers]
    for writer, (_, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
    with MemoryStore(db_path) as store:
        _integrity(store)
        texts: list[str] = []
        for session in set(sessions):
            events = store.events.recall(session)
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))
            texts += [e.message.text for e in events]
        for label in ("A", "B"):
            mine = [t for t in texts if t.startswith(f"{label} ")]
            assert mine == [f"{label} message {i} about topic{i % 7}" for i in range(count)]
        assert len(store.notes.list_notes("u")) == 2 * (count // 10)
        hits = store.retrieval.search("B message 119", user_id="u", mode="fts", top_k=1)
        assert hits[0].text == "B message 119 about topic0"
        vectors = store.retrieval.search("A note 110", user_id="u", mode="vector", top_k=5)
        assert vectors and all(h.session_id in (*sessions, notes_session_id("u")) for h in vectors)


def test_a_writer_killed_mid_run_loses_no_committed_event(db_path: Path) -> None:
    writer = python_process(WRITER, str(db_path), "s", "100000", "K")
    assert writer.stdout is not None and writer.stderr is not None
    committed: list[int] = []
    while len(committed) < 60:
        line = writer.stdout.readline()
        assert line, writer.stderr.read()
        committed.append(int(line))
    writer.send_signal(signal.SIGKILL)
    # Read the rest through the same buffered file: `communicate()` reads the raw pipe and
    # would miss lines `readline` already pulled into the buffer (seen under load).
    with writer.stdout, writer.stderr:
        rest = writer.stdout.read()
        err = writer.stderr.read()
    assert writer.wait(timeout=60) == -signal.SIGKILL, err
    committed += [int(line) for line in rest.split()]

    with MemoryStore(db_path) as store:
        _integrity(store)
        stored = [e.sequence for e in store.events.recall("s")]
        assert set(committed) <= set(stored)
        assert stored == list(range(1, len(stored) + 1))
        assert stored[-1] - committed[-1] <= 1
        next_sequence = store.append_event("s", store.events.recall("s", limit=1)[0].message)
        assert next_sequence == stored[-1] + 1
        assert store.retrieval.search("K message 5", user_id="u", mode="fts")
