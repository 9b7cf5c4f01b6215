"""The memory store's behaviour on the PostgreSQL backend: the SQLite suites' classes run
again against a real PostgreSQL 16 + pgvector (tests/conftest.py's `pg_url`), and the
recall test on the labelled set holds on both backends.

Tests that look at SQLite's own files (FTS5 table, usearch file, reopening by path) are
switched off by name below, each with its reason; everything else must pass unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oxydra.core import MemoryStoreError
from oxydra.memory import FastEmbedEmbedder, HashedEmbedder, MemoryStore, prepare_minilm_dir
from oxydra.memory._pg import PgDatabase

from . import test_events, test_notes, test_retrieval, test_state
from .recall_set import RecallSet, fill, hit_rate, load_recall_set


@pytest.fixture
def store(pg_url: str) -> Iterator[MemoryStore]:
    """A store on a fresh PostgreSQL database, hashed embedder, session `s1` of `alice`."""
    opened = MemoryStore(PgDatabase(pg_url))
    opened.events.create_session("s1", user_id="alice")
    yield opened
    opened.close()


class TestEventRoundTrip(test_events.TestEventRoundTrip):
    test_events_survive_reopening = None  # reopens by file path
    test_media_bytes_are_not_stored = None  # reopens by file path


class TestSequences(test_events.TestSequences):
    pass


class TestSessions(test_events.TestSessions):
    test_deleting_a_session_removes_its_events_and_chunks = None  # counts chunks_fts rows


class TestConversationIndexing(test_events.TestConversationIndexing):
    pass


class TestUpsert(test_retrieval.TestUpsert):
    test_first_upsert_inserts_every_chunk_with_vector_and_fts_row = None  # counts chunks_fts


class TestFilters(test_retrieval.TestFilters):
    pass


class TestSearchArguments(test_retrieval.TestSearchArguments):
    pass


class TestNotes(test_notes.TestNotes):
    pass


class TestIsolation(test_notes.TestIsolation):
    pass


class TestFreeFormState(test_state.TestFreeFormState):
    pass


class TestScratchpad(test_state.TestScratchpad):
    pass


class TestSummaries(test_state.TestSummaries):
    pass


# -- retrieval quality on PostgreSQL -----------------------------------------------------


@pytest.fixture(scope="module")
def recall() -> RecallSet:
    return load_recall_set()


@pytest.fixture(scope="module")
def hashed_pg(postgres_server: object, recall: RecallSet) -> Iterator[tuple[MemoryStore, dict]]:
    url = postgres_server.create_database("quality_hashed")  # type: ignore[attr-defined]
    store = MemoryStore(PgDatabase(url), embedder=HashedEmbedder())
    yield store, fill(store, recall)
    store.close()


def test_keyword_and_identifier_questions_are_found_on_postgres(
    hashed_pg: tuple[MemoryStore, dict], recall: RecallSet
) -> None:
    store, ids = hashed_pg
    for kind in ("keyword", "identifier"):
        assert hit_rate(store, recall, ids, mode="hybrid", kind=kind) == 1.0
        assert hit_rate(store, recall, ids, mode="fts", kind=kind) == 1.0


def test_hybrid_on_postgres_is_at_least_as_good_as_the_weaker_modality(
    hashed_pg: tuple[MemoryStore, dict], recall: RecallSet
) -> None:
    store, ids = hashed_pg
    rates = {mode: hit_rate(store, recall, ids, mode=mode) for mode in ("hybrid", "vector", "fts")}
    assert rates["hybrid"] >= min(rates["vector"], rates["fts"])


def test_the_real_model_on_postgres_recalls_paraphrases_as_on_sqlite(
    postgres_server: object, recall: RecallSet, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same labelled set, the same model: PostgreSQL's hybrid recall on paraphrased
    questions is within 0.1 of SQLite's (ranking functions differ: BM25 vs ts_rank_cd)."""
    pytest.importorskip("fastembed")
    model = FastEmbedEmbedder(prepare_minilm_dir(tmp_path_factory.mktemp("m") / "minilm"))
    url = postgres_server.create_database("quality_real")  # type: ignore[attr-defined]
    rates = []
    for where in (tmp_path_factory.mktemp("q") / "r.db", PgDatabase(url)):
        store = MemoryStore(where, embedder=model)
        try:
            ids = fill(store, recall)
            rates.append(hit_rate(store, recall, ids, mode="hybrid", kind="paraphrase"))
        finally:
            store.close()
    sqlite_rate, pg_rate = rates
    assert pg_rate >= sqlite_rate - 0.1, rates
    assert pg_rate >= 0.8, rates


def test_a_newer_schema_is_refused_with_both_versions(pg_url: str) -> None:
    MemoryStore(PgDatabase(pg_url)).close()
    db = PgDatabase(pg_url)
    with db.write() as conn:
        conn.execute("INSERT INTO memory_migrations(version, name) VALUES (99, 'future')")
    db.close()
    with pytest.raises(MemoryStoreError, match=r"schema version 99, newer than .*\(20\)"):
        MemoryStore(PgDatabase(pg_url))


@pytest.mark.parametrize(
    "query", ["backup.sh", "backup", "/etc/passwd", "passwd", "ops@example.com", "example"]
)
async def test_full_text_finds_words_inside_file_names_paths_and_addresses_on_both_stores(
    pg_url: str, tmp_path: Path, query: str
) -> None:
    """PostgreSQL's parser keeps `backup.sh` whole; SQLite's FTS5 cuts it into words. Both
    stores find a note by the whole token and by a word inside it (migration 0020)."""
    from oxydra.memory import Memory

    found = {}
    for name, target in (("sqlite", tmp_path / "m.db"), ("postgres", PgDatabase(pg_url))):
        memory = await Memory.open(target, embedder=HashedEmbedder())
        try:
            await memory.store_note("alice", "always run backup.sh first, then read /etc/passwd")
            await memory.store_note("alice", "mail ops@example.com about the outage")
            await memory.store_note("alice", "prefers tea over coffee")
            hits = await memory.search(query, user_id="alice", mode="fts")
            found[name] = sorted(h.text for h in hits)
        finally:
            await memory.close()
    assert found["postgres"] == found["sqlite"] and len(found["sqlite"]) == 1, found
