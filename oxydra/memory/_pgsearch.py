"""The two search sides on PostgreSQL: pgvector (HNSW, cosine) and full text (tsvector).

The SQLite backend keeps a usearch index beside the file and an FTS5 table; here both
live in the database, so every host searches the same data with nothing to resynchronise.

1. Vectors are stored as `vector` of any dimension; the HNSW index is an expression index
   on `embedding_blob::vector(<dims>)` with cosine ops, created at open for the embedder's
   dimension (one per dimension ever used; a changed embedder re-embeds every row first).
   Similarity is `1 - cosine distance`, which for the normalised vectors the embedders
   produce is the dot product the SQLite side computes.
2. A scoped search (user, sessions, tags) filters in the same statement; the planner
   scans the scope exactly when it is small and walks the HNSW graph otherwise, with
   `hnsw.ef_search` raised to the candidate count so a filter does not starve it.
3. Full text: the query's words (`query_terms`, as on SQLite) each through
   `plainto_tsquery('english', …)` and OR-ed, against a vector of the text's whole tokens
   and of the words between punctuation (PostgreSQL keeps `backup.sh` whole, FTS5 cuts
   it: migration 0020), ranked by `ts_rank_cd`; ranks differ from
   FTS5's BM25 but the fused order keeps the matching chunks on top (the recall test runs
   on both backends).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oxydra.memory._db import Database
from oxydra.memory._text import query_terms


def ensure_hnsw(db: Database, dims: int) -> None:
    """Create the cosine HNSW index for vectors of `dims` dimensions (idempotent)."""
    with db.write() as conn:
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS idx_chunks_vec_hnsw_{int(dims)} ON chunks_vec "
            f"USING hnsw ((embedding_blob::vector({int(dims)})) vector_cosine_ops)"
        )


def vector_candidates(
    db: Database,
    vector: Any,
    dims: int,
    model: str,
    scope: tuple[str, Sequence[Any]],
    want: int,
) -> list[tuple[int, float]]:
    """The `want` nearest chunks in `scope` (SQL over alias `c`, its parameters):
    (chunk_key, cosine similarity), best first."""
    where, params = scope
    literal = db.vector_param(vector)
    cast = f"vector({int(dims)})"
    with db.read() as conn:
        conn.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(want * 2, 1000))}")
        rows = conn.execute(
            f"SELECT c.chunk_key, 1 - (v.embedding_blob::{cast} <=> ?::{cast}) AS sim "
            "FROM chunks_vec v JOIN chunks c ON c.chunk_key = v.chunk_key "
            f"WHERE v.embedding_model = ? AND {where} "
            f"ORDER BY v.embedding_blob::{cast} <=> ?::{cast} LIMIT ?",
            (literal, model, *params, literal, want),
        ).fetchall()
    return [(int(row[0]), float(row[1])) for row in rows]


def fts_candidates(
    db: Database, query: str, scope: tuple[str, Sequence[Any]], want: int
) -> list[tuple[int, float]]:
    """The `want` best full-text matches in `scope`: (chunk_key, rank), best first."""
    where, params = scope
    terms = query_terms(query)
    if not terms:
        return []
    tsquery = " || ".join(["plainto_tsquery('english', ?)"] * len(terms))
    rows = db.query(
        f"WITH q AS (SELECT ({tsquery}) AS query) "
        "SELECT c.chunk_key, ts_rank_cd(c.chunk_tsv, q.query) AS rank FROM chunks c, q "
        f"WHERE c.chunk_tsv @@ q.query AND {where} ORDER BY rank DESC, c.chunk_key "
        "LIMIT ?",
        (*terms, *params, want),
    )
    return [(int(row[0]), float(row[1])) for row in rows]
