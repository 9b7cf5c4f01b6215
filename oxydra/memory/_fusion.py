"""Pure parts of hybrid search: the scope filter as SQL, and rank fusion.

Fusion is weighted reciprocal-rank fusion (Cormack et al., SIGIR 2009)::

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
from typing import Any

import msgspec

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
    where = " AND ".join(clauses) if clauses else "1 = 1"
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
