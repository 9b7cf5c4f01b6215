"""Hybrid search over chunks, and the vector index that serves it (sync core; one thread).

Theory of operation:

1. Chunks are written by `ChunkWriter` (`_chunks`): embedded before the transaction,
   inserted / kept / replaced inside it with their vectors and FTS rows, and the
   `vector_generation` counter bumped. After the commit the in-memory usearch index gets
   the same additions and removals (`apply`).
2. A key's vector never changes, so the index is brought up to date by comparing key
   sets: it is resynchronised from `chunks_vec` whenever the stored generation differs
   from the one it reflects (another process wrote, a crash lost the last save, or the
   file is missing, and then everything is re-added). The index is saved beside the
   database on close and every 5000 changes.
3. The embedder's name and dimension are recorded in `memory_meta`; vectors of any other
   embedder are re-embedded at open (resumable: the rows still carrying another model
   name are the work left), so vectors of two models are never compared.
4. Searching: the vector side takes the nearest keys (exact dot products over the scope
   when the user/session/tag filter leaves at most 1024 chunks, else the index's search
   (exact up to 20k vectors, HNSW above) with a widening
   candidate count, post-filtered by SQL); the FTS side ranks by BM25 an OR of the
   query's words. Both lists (4 x top_k, at least 20, each) are fused by weighted
   reciprocal rank (below); ties go to the more recent chunk, then the chunk id.

Fusion (`fuse`) is weighted reciprocal-rank fusion (Cormack et al., SIGIR 2009)::

    score(d) = Σ_m  w_m / (K + rank_m(d))   over the modalities m that ranked d
    reported = score(d) / (Σ_m w_m / (K + 1))   over the modalities searched

with ranks starting at 1, `w_vector = 0.7` and `w_fts = 0.3` by default
(`[memory.retrieval] vector_weight / fts_weight`) and `K = 5`. The reported score is 1.0
only for a chunk ranked first by every modality searched; a chunk only one modality
found scores at most that modality's share of the weight. So, unlike per-list min-max
normalisation (upstream), a list with one weak hit does not hand it a perfect score.

Why K = 5 rather than the customary 60: our lists are short (4 x top_k, at least 20
candidates each). With K = 60, rank 1 weighs only 1.3 times rank 20, so any chunk the
keyword side matches on an incidental word overtakes the semantic top hit; with K = 5
the top ranks keep their lead. On the labelled set in tests/data/memory_recall.json
(top-5 hit rate on paraphrased questions, all-MiniLM-L6-v2) K = 60 scored 0.54,
K = 10 0.96, K = 5 0.96 with a better mean reciprocal rank (0.75 vs 0.66); with the
hashed embedder every K from 5 to 60 kept identifier questions at 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from oxydra.config.schema import RetrievalConfig
from oxydra.core import ToolArgumentsError, get_logger
from oxydra.core.provenance import decode_label
from oxydra.memory._chunks import (
    BATCH,
    Changes,
    ChunkWriter,
    current_generation,
    current_generation_in,
    row_from_input,
)
from oxydra.memory._db import Database
from oxydra.memory._text import fts_query, normalize_tags
from oxydra.memory._types import ChunkInput, SearchHit, SearchMode, UpsertResult
from oxydra.memory._vectors import Embedder, VectorIndex

if TYPE_CHECKING:
    import sqlite3

    from oxydra.memory._vectors import Keys, Vectors

_log = get_logger(__name__)
_json = msgspec.json.Encoder()
_meta_decoder = msgspec.json.Decoder(dict[str, Any])

EXACT_SCOPE_MAX = 1024
_MIN_CANDIDATES = 20
_ANN_MAX = 16384
_SAVE_EVERY = 5000
_MAX_TOP_K = 100


class RetrievalIndex:
    """Chunks, vectors, FTS rows and hybrid search over one database.

    Args:
        db: the open database (migrated).
        embedder: makes the vectors; a different one than last time triggers a re-embed.
        index_path: where the usearch index is persisted (beside the database).
        config: default `top_k` and fusion weights.
    """

    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        index_path: Path,
        config: RetrievalConfig | None = None,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._path = index_path
        self._config = config or RetrievalConfig()
        self.writer = ChunkWriter(db, embedder)
        self._index: VectorIndex | None = None
        self._generation = -1
        self._dirty = 0
        self._adopt_embedder()
        # The vector index (usearch + numpy, ~100 ms to import) is loaded on first use, so a
        # store used only as a conversation log never pays for it; committed changes made
        # before then are picked up by the generation check in `_ensure_index`.

    @property
    def embedder(self) -> Embedder:
        """The embedder in use."""
        return self._embedder

    # -- embedder changes -------------------------------------------------------------

    def _adopt_embedder(self) -> None:
        name, dims = self._embedder.name, str(self._embedder.dims)
        wanted = {"embedding_backend": name, "embedding_dims": dims}
        stored: dict[str, str] = dict(
            self._db.query(
                "SELECT key, value FROM memory_meta "
                "WHERE key IN ('embedding_backend', 'embedding_dims')"
            )
        )
        if stored != wanted:
            with self._db.write() as conn:
                conn.executemany(
                    "INSERT INTO memory_meta(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    list(wanted.items()),
                )
        previous = stored.get("embedding_backend")
        if previous is not None and previous != name:
            _log.warning("embedding backend changed from %s to %s; re-embedding", previous, name)
        count = self.writer.reembed()
        if count:
            _log.info("re-embedded %d chunks with %s", count, name)

    # -- writing ----------------------------------------------------------------------

    def upsert_chunks(self, chunks: Sequence[ChunkInput]) -> UpsertResult:
        """Insert, replace or leave each chunk (by `chunk_id` and content hash).

        One transaction for the whole batch: chunks, their vectors and FTS rows.

        Raises:
            ToolArgumentsError: a chunk has no text, or an id repeats in the batch.
            MemoryStoreError: a chunk names an unknown session.
        """
        rows = [row_from_input(chunk) for chunk in chunks]
        if len({row.chunk_id for row in rows}) != len(rows):
            raise ToolArgumentsError("a chunk id appears twice in one upsert")
        known = self._known_digests([row.chunk_id for row in rows])
        self.writer.embed_rows([row for row in rows if known.get(row.chunk_id) != row.digest])
        with self._db.write() as conn:
            changes = self.writer.write_rows(conn, rows)
        self.apply(changes)
        return changes.result()

    def _known_digests(self, chunk_ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(chunk_ids), BATCH):
            batch = chunk_ids[start : start + BATCH]
            rows = self._db.query(
                "SELECT chunk_id, content_hash FROM chunks "
                f"WHERE chunk_id IN ({', '.join('?' * len(batch))})",
                batch,
            )
            found.update((row[0], row[1]) for row in rows)
        return found

    def delete_chunks(self, chunk_ids: Sequence[str]) -> int:
        """Delete chunks by id; return how many existed."""
        if not chunk_ids:
            return 0
        with self._db.write() as conn:
            changes = self.writer.delete_where(
                conn, "c.chunk_id IN (SELECT value FROM json_each(?))",
                (_json.encode(list(chunk_ids)).decode(),),
            )  # fmt: skip
        self.apply(changes)
        return len(changes.removed_keys)

    # -- the vector index -------------------------------------------------------------

    def apply(self, changes: Changes) -> None:
        """Replay a committed transaction's changes on the in-memory index."""
        if changes.generation is None:
            return
        if self._index is None:
            if changes.added_keys or changes.removed_keys:
                self._ensure_index()  # loads and resynchronises, this change included
                self._dirty += 1
            return
        import numpy as np

        try:
            self._index.remove(np.asarray(changes.removed_keys, dtype=np.uint64))
            if changes.added_keys:
                self._index.add(
                    np.asarray(changes.added_keys, dtype=np.uint64),
                    np.stack(changes.added_vectors).astype(np.float32, copy=False),
                )
        except (RuntimeError, ValueError) as exc:
            _log.warning("vector index update failed (%s); resynchronising", exc)
            self._generation = -1
            return
        if changes.generation - changes.bumps == self._generation:
            self._generation = changes.generation
        self._dirty += len(changes.added_keys) + len(changes.removed_keys)
        if self._dirty >= _SAVE_EVERY:
            self.save_index()

    def _ensure_index(self) -> VectorIndex:
        generation = current_generation(self._db)
        if self._index is not None and generation == self._generation:
            return self._index
        if self._index is None:
            name, dims = self._embedder.name, self._embedder.dims
            loaded = VectorIndex.load(self._path, dims, name)
            self._index, self._generation = loaded or (VectorIndex(dims, name), -1)
            if self._generation == generation:
                return self._index
        return self._resync(self._index)

    def _resync(self, index: VectorIndex) -> VectorIndex:
        import numpy as np

        with self._db.read() as conn:
            generation = current_generation_in(conn)
            stored = np.fromiter(
                (row[0] for row in conn.execute(
                    "SELECT chunk_key FROM chunks_vec WHERE embedding_model = ?",
                    (self._embedder.name,),
                )),
                dtype=np.uint64,
            )  # fmt: skip
            present = index.keys()
            extra = np.setdiff1d(present, stored, assume_unique=True)
            missing = np.setdiff1d(stored, present, assume_unique=True)
            index.remove(extra)
            self._add_stored(conn, index, missing)
        self._generation = generation
        changed = len(extra) + len(missing)
        if changed:
            _log.info("vector index resynchronised: +%d -%d", len(missing), len(extra))
            self._dirty += changed
        if changed >= 1000 or (changed and not self._path.exists()):
            self.save_index()
        return index

    def _add_stored(self, conn: sqlite3.Connection, index: VectorIndex, keys: Keys) -> None:
        import numpy as np

        for start in range(0, len(keys), BATCH):
            batch = [int(k) for k in keys[start : start + BATCH]]
            rows = conn.execute(
                "SELECT chunk_key, embedding_blob FROM chunks_vec "
                f"WHERE chunk_key IN ({', '.join('?' * len(batch))})",
                batch,
            ).fetchall()
            if rows:
                matrix = np.stack([np.frombuffer(row[1], dtype="<f4") for row in rows])
                index.add(np.asarray([row[0] for row in rows], dtype=np.uint64), matrix)

    def save_index(self) -> None:
        """Persist the index beside the database (atomic replace)."""
        if self._index is not None:
            self._index.save(self._path, self._generation)
            self._dirty = 0

    def close(self) -> None:
        """Save the index if it changed since the last save."""
        if self._index is not None and (self._dirty or not self._path.exists()):
            self.save_index()

    # -- searching --------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        session_ids: Sequence[str] | None = None,
        tags: Sequence[str] = (),
        top_k: int | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        """The `top_k` chunks best matching `query` within the filter, best first.

        Args:
            query: free text; must contain something.
            user_id: only chunks of this user's sessions.
            session_ids: only chunks of these sessions (an empty list finds nothing).
            tags: only chunks whose metadata `tags` hold every one of these.
            top_k: how many hits (1-100); the configured default when None.
            mode: `hybrid`, or one modality alone (`vector`, `fts`) for comparison.

        Raises:
            ToolArgumentsError: empty query, top_k out of range, bad tags.
        """
        count = self._config.top_k if top_k is None else top_k
        if not 1 <= count <= _MAX_TOP_K:
            raise ToolArgumentsError(f"top_k must be between 1 and {_MAX_TOP_K}")
        if not query.strip():
            raise ToolArgumentsError("the search query must not be empty")
        if session_ids is not None and not session_ids:
            return []
        scope = build_scope(user_id=user_id, session_ids=session_ids, tags=normalize_tags(tags))
        want = max(count * 4, _MIN_CANDIDATES)
        vector = self._vector_candidates(query, scope, want) if mode != "fts" else None
        fts = self._fts_candidates(query, scope, want) if mode != "vector" else None
        fused = fuse(
            vector,
            fts,
            vector_weight=1.0 if mode == "vector" else self._config.vector_weight,
            fts_weight=1.0 if mode == "fts" else self._config.fts_weight,
        )
        return self._hits(fused, count)

    def _vector_candidates(self, query: str, scope: Scope, want: int) -> list[tuple[int, float]]:
        vector = self._embedder.embed([query])[0]
        if not vector.any():
            return []
        index = self._ensure_index()
        if scope.unfiltered:
            keys, sims = index.search(vector, want)
            return list(zip(keys.tolist(), sims.tolist(), strict=True))
        size = self._db.query_one(
            f"SELECT count(*) FROM (SELECT 1 FROM chunks c WHERE {scope.where} LIMIT ?)",
            (*scope.params, EXACT_SCOPE_MAX + 1),
        )
        if not size or not size[0]:
            return []
        if size[0] <= EXACT_SCOPE_MAX:
            return self._exact(index, vector, self._scope_keys(scope), want)
        return self._filtered_ann(index, vector, scope, want)

    def _scope_keys(self, scope: Scope) -> Keys:
        import numpy as np

        rows = self._db.query(f"SELECT c.chunk_key FROM chunks c WHERE {scope.where}", scope.params)
        return np.asarray([row[0] for row in rows], dtype=np.uint64)

    def _exact(
        self, index: VectorIndex, vector: Vectors, keys: Keys, want: int
    ) -> list[tuple[int, float]]:
        import numpy as np

        best: list[tuple[int, float]] = []
        for start in range(0, len(keys), EXACT_SCOPE_MAX):
            present, matrix = index.vectors(keys[start : start + EXACT_SCOPE_MAX])
            sims = matrix @ vector
            top = np.argsort(-sims, kind="stable")[:want]
            best += zip(present[top].tolist(), sims[top].tolist(), strict=True)
        best.sort(key=lambda pair: -pair[1])
        return best[:want]

    def _filtered_ann(
        self, index: VectorIndex, vector: Vectors, scope: Scope, want: int
    ) -> list[tuple[int, float]]:
        count = want * 4
        while True:
            keys, sims = index.search(vector, count)
            allowed = self._in_scope(keys.tolist(), scope)
            picked = [
                (key, sim)
                for key, sim in zip(keys.tolist(), sims.tolist(), strict=True)
                if key in allowed
            ]
            if len(picked) >= want or count >= len(index):
                return picked[:want]
            if count >= _ANN_MAX:
                return self._exact(index, vector, self._scope_keys(scope), want)
            count *= 4

    def _in_scope(self, keys: list[int], scope: Scope) -> set[int]:
        # CROSS JOIN keeps SQLite from scanning the user index instead of looking the
        # few candidate keys up by primary key.
        rows = self._db.query(
            "SELECT c.chunk_key FROM json_each(?) AS j CROSS JOIN chunks AS c "
            f"ON c.chunk_key = j.value WHERE {scope.where}",
            (_json.encode(keys).decode(), *scope.params),
        )
        return {int(row[0]) for row in rows}

    def _fts_candidates(self, query: str, scope: Scope, want: int) -> list[tuple[int, float]]:
        match = fts_query(query)
        if match is None:
            return []
        rows = self._db.query(
            "SELECT c.chunk_key, bm25(chunks_fts) AS rank FROM chunks_fts "
            "JOIN chunks c ON c.chunk_key = chunks_fts.rowid "
            f"WHERE chunks_fts MATCH ? AND {scope.where} ORDER BY rank LIMIT ?",
            (match, *scope.params, want),
        )
        return [(int(row[0]), -float(row[1])) for row in rows]

    def _hits(self, fused: list[Fused], count: int) -> list[SearchHit]:
        if not fused:
            return []
        by_key = {f.key: f for f in fused}
        rows = self._db.query(
            "SELECT chunk_key, chunk_id, session_id, chunk_text, note_id, sequence_start, "
            "sequence_end, metadata_json, created_at, provenance_json FROM chunks "
            "WHERE chunk_key IN (SELECT value FROM json_each(?))",
            (_json.encode(list(by_key)).decode(),),
        )
        hits = [_hit(row, by_key[int(row[0])]) for row in rows]
        hits.sort(key=_hit_order)
        return hits[:count]


def _hit(row: tuple[Any, ...], fused: Fused) -> SearchHit:
    return SearchHit(
        chunk_id=row[1], session_id=row[2], text=row[3], score=fused.score,
        vector_score=fused.vector_score, fts_score=fused.fts_score, note_id=row[4],
        sequence_start=row[5], sequence_end=row[6], metadata=_meta_decoder.decode(row[7]),
        created_at=row[8], label=decode_label(row[9]),
    )  # fmt: skip


def _hit_order(hit: SearchHit) -> tuple[float, int, str]:
    recency = hit.sequence_end or hit.sequence_start or 0
    return (-round(hit.score, 12), -recency, hit.chunk_id)


# ---- the scope filter and rank fusion (pure) -------------------------------------

RRF_K = 5


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """Which chunks a search may return: SQL over the alias `c` (the chunks table)."""

    where: str
    params: tuple[Any, ...]
    unfiltered: bool


def build_scope(
    *, user_id: str | None, session_ids: Sequence[str] | None, tags: Sequence[str]
) -> Scope:
    """The filter for a user, a set of sessions and required tags (all optional)."""
    clauses: list[str] = []
    params: list[Any] = []
    if user_id is not None:
        clauses.append("c.user_id = ?")
        params.append(user_id)
    if session_ids is not None:
        clauses.append(f"c.session_id IN ({', '.join('?' * len(session_ids))})")
        params.extend(session_ids)
    for tag in tags:
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(c.metadata_json, '$.tags') t WHERE t.value = ?)"
        )
        params.append(tag)
    where = " AND ".join(clauses) if clauses else "1"
    return Scope(where=where, params=tuple(params), unfiltered=not clauses)


class Fused(msgspec.Struct, frozen=True, kw_only=True):
    """A chunk's fused score and the raw scores behind it."""

    key: int
    score: float
    vector_score: float | None
    fts_score: float | None


def fuse(
    vector: Sequence[tuple[int, float]] | None,
    fts: Sequence[tuple[int, float]] | None,
    *,
    vector_weight: float,
    fts_weight: float,
    k: int = RRF_K,
) -> list[Fused]:
    """Fuse two ranked lists of `(key, raw score)`, best first; None = not searched.

    Returns every key of either list, by fused score descending (ties keep no order;
    the caller breaks them).
    """
    searched = (vector_weight if vector is not None else 0.0) + (
        fts_weight if fts is not None else 0.0
    )
    if searched <= 0:
        raise ValueError("at least one searched modality needs a positive weight")
    best = searched / (k + 1)
    scores: dict[int, float] = {}
    raw_vector = _accumulate(scores, vector or (), vector_weight, k)
    raw_fts = _accumulate(scores, fts or (), fts_weight, k)
    fused = [
        Fused(
            key=key,
            score=score / best,
            vector_score=raw_vector.get(key),
            fts_score=raw_fts.get(key),
        )
        for key, score in scores.items()
    ]
    fused.sort(key=lambda f: -f.score)
    return fused


def _accumulate(
    scores: dict[int, float], ranked: Sequence[tuple[int, float]], weight: float, k: int
) -> dict[int, float]:
    raw: dict[int, float] = {}
    for rank, (key, value) in enumerate(ranked, start=1):
        if key in raw:
            continue
        raw[key] = value
        scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return raw
