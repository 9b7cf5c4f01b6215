"""The labelled retrieval set (tests/data/memory_recall.json) and its hit-rate measure.

Shared by the quality tests and `bench/bench_memory.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from oxydra.memory import MemoryStore, SearchMode

DATA = Path(__file__).resolve().parents[1] / "data" / "memory_recall.json"
USER = "alice"


class Query(msgspec.Struct, frozen=True):
    """One labelled query."""

    kind: str
    query: str
    note: str


class RecallSet(msgspec.Struct, frozen=True):
    """Notes by label, distractor notes, and queries."""

    notes: dict[str, str]
    distractors: list[str]
    queries: list[Query]


def load_recall_set() -> RecallSet:
    """Read the labelled set."""
    raw = json.loads(DATA.read_text(encoding="utf-8"))
    return msgspec.convert({k: raw[k] for k in ("notes", "distractors", "queries")}, RecallSet)


def fill(store: MemoryStore, recall: RecallSet) -> dict[str, str]:
    """Save every note and distractor for USER; return label -> note id."""
    ids = {
        label: store.notes.store_note(USER, text).note_id for label, text in recall.notes.items()
    }
    for text in recall.distractors:
        store.notes.store_note(USER, text)
    return ids


def hit_rate(
    store: MemoryStore,
    recall: RecallSet,
    ids: dict[str, str],
    *,
    mode: SearchMode,
    kind: str | None = None,
    top_k: int = 5,
) -> float:
    """Share of queries (of `kind`, or all) whose note is in the top `top_k` hits."""
    queries = [q for q in recall.queries if kind is None or q.kind == kind]
    found = 0
    for query in queries:
        hits = store.retrieval.search(query.query, user_id=USER, top_k=top_k, mode=mode)
        found += any(hit.note_id == ids[query.note] for hit in hits)
    return found / len(queries)
