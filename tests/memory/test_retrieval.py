"""Chunks, upserts, filters, FTS triggers, the vector index and embedder changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxydra.core import MemoryStoreError, ToolArgumentsError
from oxydra.memory import ChunkInput, HashedEmbedder, MemoryStore, index_path_for
from oxydra.memory._retrieval import EXACT_SCOPE_MAX
from oxydra.memory._vectors import VectorIndex

TEXTS = {
    "c1": "The quarterly revenue report is due on Friday",
    "c2": "Alice prefers window seats on long flights",
    "c3": "The staging server runs Ubuntu 22.04",
}


def chunks(session: str = "s1", **overrides: str) -> list[ChunkInput]:
    texts = {**TEXTS, **overrides}
    return [ChunkInput(chunk_id=k, session_id=session, text=v) for k, v in texts.items()]


def vector_count(store: MemoryStore) -> int:
    row = store.db.query_one("SELECT count(*) FROM chunks_vec")
    return int(row[0]) if row else 0


class TestUpsert:
    def test_first_upsert_inserts_every_chunk_with_vector_and_fts_row(
        self, store: MemoryStore
    ) -> None:
        result = store.retrieval.upsert_chunks(chunks())
        assert (result.inserted, result.replaced, result.unchanged) == (3, 0, 0)
        assert vector_count(store) == 3
        assert store.db.query_one("SELECT count(*) FROM chunks_fts") == (3,)

    def test_upserting_the_same_chunks_again_changes_nothing(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(chunks())
        before = store.db.query("SELECT chunk_key, chunk_id FROM chunks ORDER BY chunk_key")
        generation = store.db.query_one(
            "SELECT value FROM memory_meta WHERE key = 'vector_generation'"
        )
        result = store.retrieval.upsert_chunks(chunks())
        assert (result.inserted, result.replaced, result.unchanged) == (0, 0, 3)
        assert store.db.query("SELECT chunk_key, chunk_id FROM chunks ORDER BY chunk_key") == before
        assert (
            store.db.query_one("SELECT value FROM memory_meta WHERE key = 'vector_generation'")
            == generation
        )

    def test_changed_text_replaces_the_chunk_under_a_new_key(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(chunks())
        result = store.retrieval.upsert_chunks(chunks(c1="The annual budget review is on Monday"))
        assert (result.inserted, result.replaced, result.unchanged) == (0, 1, 2)
        assert vector_count(store) == 3
        assert store.retrieval.search("quarterly", mode="fts") == []
        assert store.retrieval.search("budget", mode="fts")[0].chunk_id == "c1"

    def test_changed_metadata_only_updates_in_place(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(chunks())
        (key,) = store.db.query_one("SELECT chunk_key FROM chunks WHERE chunk_id = 'c2'") or (0,)
        store.retrieval.upsert_chunks(
            [ChunkInput(chunk_id="c2", session_id="s1", text=TEXTS["c2"], metadata={"tags": ["t"]})]
        )
        row = store.db.query_one("SELECT chunk_key, metadata_json FROM chunks WHERE chunk_id='c2'")
        assert row == (key, '{"tags":["t"]}')

    def test_a_chunk_of_an_unknown_session_is_refused_and_nothing_is_written(
        self, store: MemoryStore
    ) -> None:
        batch = [*chunks(), ChunkInput(chunk_id="x", session_id="nope", text="orphan")]
        with pytest.raises(MemoryStoreError, match="unknown session"):
            store.retrieval.upsert_chunks(batch)
        assert store.db.query_one("SELECT count(*) FROM chunks") == (0,)

    @pytest.mark.parametrize(
        "batch",
        [
            [ChunkInput(chunk_id="a", session_id="s1", text="  ")],
            [
                ChunkInput(chunk_id="a", session_id="s1", text="one"),
                ChunkInput(chunk_id="a", session_id="s1", text="two"),
            ],
        ],
    )
    def test_bad_batches_are_refused(self, store: MemoryStore, batch: list[ChunkInput]) -> None:
        with pytest.raises(ToolArgumentsError):
            store.retrieval.upsert_chunks(batch)

    def test_source_uri_groups_chunks_under_one_file_row(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(
            [
                ChunkInput(chunk_id=f"f{i}", session_id="s1", text=f"part {i}", source_uri="/a.md")
                for i in range(3)
            ]
        )
        assert store.db.query_one("SELECT count(*) FROM files") == (1,)
        assert store.db.query_one("SELECT count(DISTINCT file_id) FROM chunks") == (1,)

    def test_delete_chunks_removes_rows_vectors_and_fts(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(chunks())
        assert store.retrieval.delete_chunks(["c1", "missing"]) == 1
        assert vector_count(store) == 2
        assert store.retrieval.search("revenue", mode="fts") == []


class TestFtsTriggers:
    def test_updating_chunk_text_in_sql_keeps_fts_in_step(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(chunks())
        with store.db.write() as conn:
            conn.execute("UPDATE chunks SET chunk_text = 'zebra crossing' WHERE chunk_id = 'c3'")
        assert [h.chunk_id for h in store.retrieval.search("zebra", mode="fts")] == ["c3"]
        assert store.retrieval.search("ubuntu", mode="fts") == []
        check = store.db.query_one("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
        assert check is None

    def test_stemming_matches_other_word_forms(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(chunks())
        assert store.retrieval.search("flight seat", mode="fts")[0].chunk_id == "c2"

    def test_words_need_not_be_adjacent_or_all_present(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(chunks())
        hits = store.retrieval.search("revenue Friday spreadsheet", mode="fts")
        assert [h.chunk_id for h in hits] == ["c1"]


class TestFilters:
    @pytest.fixture
    def two_users(self, store: MemoryStore) -> MemoryStore:
        store.events.create_session("s2", user_id="alice")
        store.events.create_session("b1", user_id="bob")
        store.retrieval.upsert_chunks(chunks("s1"))
        store.retrieval.upsert_chunks(
            [
                ChunkInput(chunk_id="s2-1", session_id="s2", text="revenue grew in March"),
                ChunkInput(chunk_id="b-1", session_id="b1", text="Bob's revenue secret"),
            ]
        )
        return store

    @pytest.mark.parametrize("mode", ["hybrid", "vector", "fts"])
    def test_user_filter_never_returns_another_users_chunks(
        self, two_users: MemoryStore, mode: str
    ) -> None:
        hits = two_users.retrieval.search("Bob revenue secret", user_id="alice", mode=mode)  # type: ignore[arg-type]
        assert hits and all(h.session_id in ("s1", "s2") for h in hits)

    def test_session_filter_limits_to_those_sessions(self, two_users: MemoryStore) -> None:
        hits = two_users.retrieval.search("revenue", session_ids=["s2"])
        assert [h.chunk_id for h in hits] == ["s2-1"]

    def test_empty_session_list_finds_nothing(self, two_users: MemoryStore) -> None:
        assert two_users.retrieval.search("revenue", session_ids=[]) == []

    def test_tags_must_all_be_present(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(
            [
                ChunkInput(chunk_id="t1", session_id="s1", text="trip", metadata={"tags": ["a"]}),
                ChunkInput(
                    chunk_id="t2", session_id="s1", text="trip", metadata={"tags": ["a", "b"]}
                ),
            ]
        )
        assert [h.chunk_id for h in store.retrieval.search("trip", tags=["A", "b"])] == ["t2"]
        assert {h.chunk_id for h in store.retrieval.search("trip", tags=["a"])} == {"t1", "t2"}

    def test_large_scope_uses_ann_and_still_filters(self, store: MemoryStore) -> None:
        store.events.create_session("big", user_id="carol")
        store.retrieval.upsert_chunks(
            [
                ChunkInput(chunk_id=f"big-{i}", session_id="big", text=f"filler note {i} about x")
                for i in range(EXACT_SCOPE_MAX + 50)
            ]
        )
        store.retrieval.upsert_chunks(chunks("s1"))
        hits = store.retrieval.search("filler note about x", user_id="carol", top_k=10)
        assert len(hits) == 10 and all(h.session_id == "big" for h in hits)
        mine = store.retrieval.search("window seats flights", user_id="alice", mode="vector")
        assert mine[0].chunk_id == "c2" and all(h.session_id == "s1" for h in mine)


class TestSearchArguments:
    @pytest.mark.parametrize("query", ["", "   "])
    def test_empty_query_is_refused(self, store: MemoryStore, query: str) -> None:
        with pytest.raises(ToolArgumentsError):
            store.retrieval.search(query)

    @pytest.mark.parametrize("top_k", [0, 101])
    def test_top_k_out_of_range_is_refused(self, store: MemoryStore, top_k: int) -> None:
        with pytest.raises(ToolArgumentsError):
            store.retrieval.search("x", top_k=top_k)

    def test_results_are_ordered_by_score_and_carry_raw_scores(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(chunks())
        hits = store.retrieval.search("window seats on flights")
        assert hits[0].chunk_id == "c2"
        assert hits[0].vector_score is not None and hits[0].fts_score is not None
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert 0 < hits[-1].score <= hits[0].score <= 1.0

    def test_punctuation_only_query_searches_vectors_only(self, store: MemoryStore) -> None:
        store.retrieval.upsert_chunks(chunks())
        assert store.retrieval.search("?!", mode="fts") == []


class TestVectorIndexFile:
    def test_index_is_saved_beside_the_database_on_close(
        self, store: MemoryStore, db_path: Path
    ) -> None:
        store.retrieval.upsert_chunks(chunks())
        store.close()
        loaded = VectorIndex.load(index_path_for(db_path), 256, HashedEmbedder().name)
        assert loaded is not None and len(loaded[0]) == 3

    def test_missing_index_file_is_rebuilt_from_the_table(
        self, store: MemoryStore, db_path: Path
    ) -> None:
        store.retrieval.upsert_chunks(chunks())
        store.close()
        index_path_for(db_path).unlink()
        with MemoryStore(db_path) as reopened:
            hits = reopened.retrieval.search("window seats", mode="vector", top_k=1)
            assert hits[0].chunk_id == "c2"
        assert index_path_for(db_path).exists()

    def test_stale_index_file_is_resynchronised(self, store: MemoryStore, db_path: Path) -> None:
        store.retrieval.upsert_chunks(chunks())
        store.close()
        stale = index_path_for(db_path).read_bytes()
        with MemoryStore(db_path) as second:
            second.retrieval.delete_chunks(["c2"])
            second.retrieval.upsert_chunks(
                [ChunkInput(chunk_id="c4", session_id="s1", text="kittens playing with yarn")]
            )
        index_path_for(db_path).write_bytes(stale)
        with MemoryStore(db_path) as reopened:
            hits = reopened.retrieval.search("kittens yarn", mode="vector", top_k=10)
            assert hits[0].chunk_id == "c4"
            assert "c2" not in {h.chunk_id for h in hits}

    def test_damaged_index_file_is_rebuilt(self, store: MemoryStore, db_path: Path) -> None:
        store.retrieval.upsert_chunks(chunks())
        store.close()
        index_path_for(db_path).write_bytes(b"OXYVEC1\n\xff\xff\xff\x7fgarbage")
        with MemoryStore(db_path) as reopened:
            assert reopened.retrieval.search("ubuntu server", mode="vector")[0].chunk_id == "c3"

    def test_writes_by_another_store_are_picked_up_before_searching(
        self, store: MemoryStore, db_path: Path
    ) -> None:
        store.retrieval.upsert_chunks(chunks())
        with MemoryStore(db_path) as other:
            other.retrieval.upsert_chunks(
                [ChunkInput(chunk_id="c9", session_id="s1", text="penguins in Antarctica")]
            )
        hits = store.retrieval.search("penguins Antarctica", mode="vector", top_k=1)
        assert hits[0].chunk_id == "c9"


class TestEmbedderChange:
    def test_a_new_backend_re_embeds_every_chunk(self, store: MemoryStore, db_path: Path) -> None:
        store.retrieval.upsert_chunks(chunks())
        store.close()
        small = HashedEmbedder(dims=64)
        with MemoryStore(db_path, embedder=small) as reopened:
            models = reopened.db.query("SELECT DISTINCT embedding_model FROM chunks_vec")
            assert models == [(small.name,)]
            blob = reopened.db.query_one("SELECT length(embedding_blob) FROM chunks_vec")
            assert blob == (64 * 4,)
            meta = dict(reopened.db.query("SELECT key, value FROM memory_meta"))
            assert (meta["embedding_backend"], meta["embedding_dims"]) == (small.name, "64")
            assert reopened.retrieval.search("ubuntu server", mode="vector")[0].chunk_id == "c3"

    def test_an_interrupted_re_embed_resumes_at_the_next_open(
        self, store: MemoryStore, db_path: Path
    ) -> None:
        store.retrieval.upsert_chunks(chunks())
        with store.db.write() as conn:
            conn.execute("UPDATE chunks_vec SET embedding_model = 'old' WHERE chunk_key = 1")
        store.close()
        with MemoryStore(db_path) as reopened:
            models = reopened.db.query("SELECT DISTINCT embedding_model FROM chunks_vec")
            assert models == [(HashedEmbedder().name,)]

    def test_the_same_backend_re_embeds_nothing(self, store: MemoryStore, db_path: Path) -> None:
        store.retrieval.upsert_chunks(chunks())
        store.close()
        with MemoryStore(db_path) as reopened:
            assert reopened.retrieval.writer.reembed() == 0
