"""Memory store benchmarks: ingest, hybrid search latency, ANN recall, retrieval quality.

Run from the repository root: `python bench/bench_memory.py` (or through `make bench`).
Prints figures; asserts nothing. Needs the `vectors` extra; the quality section also
uses the bundled real model when the `embed` extra is installed.

Sections:
1. `upsert_chunks` ingest throughput with the hashed embedder (embedding included), in
   batches of 1000 synthetic ~540-character chunks, up to 100k chunks.
2. Hybrid search latency p50/p99 at 10k and 100k chunks (hashed embedder): filtered by
   user (the whole corpus in scope: ANN path), by one session (~1000 chunks: exact
   path), and unfiltered.
3. recall@10 of the usearch HNSW index against exact cosine search at 100k chunks.
4. Top-5 hit rate and MRR on the labelled set (tests/data/memory_recall.json) for
   hybrid, vector-only and FTS-only search, hashed vs all-MiniLM-L6-v2, plus upstream's
   whole-query phrase FTS for comparison.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from oxydra.memory import (  # noqa: E402
    ChunkInput,
    Embedder,
    FastEmbedEmbedder,
    HashedEmbedder,
    MemoryStore,
    prepare_minilm_dir,
)
from tests.memory.recall_set import USER, RecallSet, fill, load_recall_set  # noqa: E402

SESSIONS = 100
BATCH = 1000
QUERIES = 300
_SYLLABLES = "ka to ri mu sen lo pa ve dra qui zor ne li ba tem ox yu fa gri sho".split()


class Corpus:
    """Synthetic text with topics: each text mixes one topic's words with background words.

    Real memory is topical (a trip, a project, a bug), which gives embeddings the
    clustered structure ANN indexes rely on; uniformly random text would not.
    """

    def __init__(self, seed: int = 7, topics: int = 400) -> None:
        self.rng = random.Random(seed)
        words = {self._word() for _ in range(40_000)}
        self.vocab = sorted(words)
        self.rng.shuffle(self.vocab)
        self.weights = [1 / (rank + 1) for rank in range(len(self.vocab))]
        self.topics = [self.rng.sample(self.vocab[2000:], 40) for _ in range(topics)]

    def _word(self) -> str:
        return "".join(self.rng.choice(_SYLLABLES) for _ in range(self.rng.randint(2, 4)))

    def text(self, words: int = 80) -> str:
        """A chunk-sized text (~540 characters)."""
        topic = self.rng.choice(self.topics)
        half = words // 2
        mixed = self.rng.choices(topic, k=half) + self.rng.choices(
            self.vocab, self.weights, k=words - half
        )
        self.rng.shuffle(mixed)
        return " ".join(mixed)

    def query(self) -> str:
        """A short query drawn from one topic."""
        return " ".join(self.rng.sample(self.rng.choice(self.topics), self.rng.randint(2, 6)))


def _ingest(store: MemoryStore, start: int, stop: int, corpus: Corpus) -> float:
    elapsed = 0.0
    for first in range(start, stop, BATCH):
        batch = [
            ChunkInput(
                chunk_id=f"c{i}",
                session_id=f"s{i % SESSIONS}",
                text=corpus.text(),
                metadata={"tags": ["even"] if i % 2 == 0 else []},
            )
            for i in range(first, min(first + BATCH, stop))
        ]
        began = time.perf_counter()
        store.retrieval.upsert_chunks(batch)
        elapsed += time.perf_counter() - began
    return (stop - start) / elapsed


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50 * 1000:6.2f} ms   p99 {p99 * 1000:6.2f} ms"


def _latency(store: MemoryStore, corpus: Corpus, size: int) -> None:
    queries = [corpus.query() for _ in range(QUERIES)]
    scenarios = {
        "user filter (ANN)": {"user_id": "bench"},
        "one session (exact)": {"user_id": "bench", "session_ids": ["s3"]},
        "unfiltered": {},
    }
    for label, filters in scenarios.items():
        for query in queries[:20]:
            store.retrieval.search(query, top_k=8, **filters)  # type: ignore[arg-type]
        samples = []
        for query in queries:
            began = time.perf_counter()
            store.retrieval.search(query, top_k=8, **filters)  # type: ignore[arg-type]
            samples.append(time.perf_counter() - began)
        print(f"  hybrid search, {size:>6} chunks, {label:<20} {_percentiles(samples)}")


def _ann_recall(store: MemoryStore, corpus: Corpus) -> None:
    import numpy as np

    from oxydra.memory._vectors import EXPANSION_SEARCH

    index = store.retrieval._ensure_index()
    keys = index.keys()
    _, matrix = index.vectors(keys)
    vectors = store.retrieval.embedder.embed([corpus.query() for _ in range(200)])
    exact = [set(keys[np.argsort(-(matrix @ v))[:10]].tolist()) for v in vectors]
    raw = index._index
    for expansion in (64, EXPANSION_SEARCH, 256):
        raw.expansion_search = expansion
        found = [set(raw.search(v, 10).keys.tolist()) for v in vectors]
        recall = statistics.mean(len(e & f) / 10 for e, f in zip(exact, found, strict=True))
        print(
            f"  HNSW recall@10 vs exact cosine, {len(keys)} vectors, "
            f"expansion_search {expansion:>3}: {recall:.3f}"
        )
    raw.expansion_search = EXPANSION_SEARCH


def _quality(recall: RecallSet, embedder: Embedder, label: str, workdir: Path) -> None:
    store = MemoryStore(workdir / f"quality-{label}.db", embedder=embedder)
    ids = fill(store, recall)
    kinds = ["paraphrase", "keyword", "identifier", None]
    for mode in ("hybrid", "vector", "fts"):
        cells = []
        for kind in kinds:
            hit, rr = _score(store, recall, ids, mode, kind)
            cells.append(f"{kind or 'all'} {hit:.2f}/{rr:.2f}")
        print(f"  {label:<8} {mode:<7} hit@5/MRR  " + "   ".join(cells))
    phrase = _phrase_fts(store, recall, ids)
    print(f"  {label:<8} upstream phrase-FTS hit@5 on keyword questions: {phrase:.2f}")
    store.close()


def _score(
    store: MemoryStore, recall: RecallSet, ids: dict[str, str], mode: str, kind: str | None
) -> tuple[float, float]:
    queries = [q for q in recall.queries if kind is None or q.kind == kind]
    hits, ranks = 0, 0.0
    for query in queries:
        found = store.retrieval.search(query.query, user_id=USER, top_k=20, mode=mode)  # type: ignore[arg-type]
        order = [h.note_id for h in found]
        target = ids[query.note]
        hits += target in order[:5]
        ranks += 1 / (order.index(target) + 1) if target in order else 0.0
    return hits / len(queries), ranks / len(queries)


def _phrase_fts(store: MemoryStore, recall: RecallSet, ids: dict[str, str]) -> float:
    queries = [q for q in recall.queries if q.kind == "keyword"]
    found = 0
    for query in queries:
        rows = store.db.query(
            "SELECT c.note_id FROM chunks_fts JOIN chunks c ON c.chunk_key = chunks_fts.rowid "
            "WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT 5",
            ('"' + query.query.replace('"', '""') + '"',),
        )
        found += ids[query.note] in {row[0] for row in rows}
    return found / len(queries)


def _real_model(workdir: Path) -> Embedder | None:
    try:
        return FastEmbedEmbedder(prepare_minilm_dir(workdir / "minilm"))
    except Exception as exc:  # a missing extra or model: report and go on
        print(f"  (real model unavailable: {exc})")
        return None


def main() -> None:
    """Run every section and print its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        real = _real_model(workdir)
        corpus = Corpus()
        store = MemoryStore(workdir / "bench.db")
        for s in range(SESSIONS):
            store.events.create_session(f"s{s}", user_id="bench")
        print("memory store benchmarks (hashed embedder, 256 dims)")
        rate = _ingest(store, 0, 10_000, corpus)
        print(f"  upsert_chunks ingest, first 10k chunks: {rate:,.0f} chunks/s")
        _latency(store, corpus, 10_000)
        rate = _ingest(store, 10_000, 100_000, corpus)
        print(f"  upsert_chunks ingest, 10k -> 100k chunks: {rate:,.0f} chunks/s")
        _latency(store, corpus, 100_000)
        _ann_recall(store, corpus)
        began = time.perf_counter()
        store.close()
        print(f"  close (saves the vector index): {time.perf_counter() - began:.2f} s")
        began = time.perf_counter()
        MemoryStore(workdir / "bench.db").close()
        print(f"  reopen with a current index file: {time.perf_counter() - began:.2f} s")
        (workdir / "bench.db.usearch").unlink()
        began = time.perf_counter()
        MemoryStore(workdir / "bench.db").close()
        print(f"  reopen rebuilding the index from the table: {time.perf_counter() - began:.2f} s")
        print("retrieval quality on tests/data/memory_recall.json (top-5 hit rate / MRR)")
        recall = load_recall_set()
        _quality(recall, HashedEmbedder(), "hashed", workdir)
        if real is not None:
            _quality(recall, real, "minilm", workdir)


if __name__ == "__main__":
    main()
