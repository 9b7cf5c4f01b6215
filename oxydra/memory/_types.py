"""Records the memory store hands out and takes in (msgspec Structs, frozen)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from oxydra.core import Label, Message

SearchMode = Literal["hybrid", "vector", "fts"]


class ConversationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation session of the store (the runtime's history; the gateway keeps its own
    `SessionRecord`s)."""

    session_id: str
    user_id: str | None
    agent_identity: str | None
    created_at: str
    updated_at: str


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One stored message with its place in the session's log."""

    session_id: str
    sequence: int
    message: Message
    created_at: str


class SummaryState(msgspec.Struct, frozen=True, kw_only=True):
    """A rolling summary and the range of events it covers (inclusive).

    `epoch` counts the summaries of the session; a writer passes the epoch it read as
    `expected_epoch` so a stale writer cannot overwrite a newer summary.
    """

    session_id: str
    epoch: int
    lower_sequence: int
    upper_sequence: int
    summary: str
    metadata: dict[str, Any] = {}
    created_at: str = ""
    label: Label | None = None


class ScratchpadState(msgspec.Struct, frozen=True, kw_only=True):
    """The session's working plan: a short list of items."""

    session_id: str
    items: tuple[str, ...] = ()
    updated_at: str | None = None

    @property
    def item_count(self) -> int:
        """How many items the scratchpad holds."""
        return len(self.items)


class ScratchpadWrite(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of a scratchpad write: whether the content changed, and its size."""

    updated: bool
    item_count: int


class RestoredSession(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to rebuild a session's context after a restart."""

    session: ConversationRecord
    events: tuple[StoredEvent, ...]
    summary: SummaryState | None


class ChunkInput(msgspec.Struct, frozen=True, kw_only=True):
    """A chunk to index with `upsert_chunks`; `chunk_id` is its identity.

    Attributes:
        chunk_id: stable id chosen by the caller; upserting the same id replaces the chunk.
        session_id: the session the chunk belongs to (must exist; gives the owning user).
        text: the text to embed and to index for full-text search.
        metadata: free JSON; a `tags` list here is what tag filters match.
        source_uri: optional origin (a file path, `conversation://...`); groups chunks.
    """

    chunk_id: str
    session_id: str
    text: str
    metadata: dict[str, Any] = {}
    sequence_start: int | None = None
    sequence_end: int | None = None
    source_uri: str | None = None
    note_id: str | None = None
    label: Label | None = None


class UpsertResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one `upsert_chunks` call changed."""

    inserted: int = 0
    replaced: int = 0
    unchanged: int = 0


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    """One retrieved chunk.

    Attributes:
        score: fused score in (0, 1]; 1.0 means first in every modality searched.
        vector_score: cosine similarity to the query, when the vector side found it.
        fts_score: BM25 relevance (higher is better), when full-text search found it.
    """

    chunk_id: str
    session_id: str
    text: str
    score: float
    vector_score: float | None = None
    fts_score: float | None = None
    note_id: str | None = None
    sequence_start: int | None = None
    sequence_end: int | None = None
    metadata: dict[str, Any] = {}
    created_at: str = ""
    label: Label | None = None


class Note(msgspec.Struct, frozen=True, kw_only=True):
    """A user's saved memory note."""

    note_id: str
    user_id: str
    content: str
    tags: tuple[str, ...] = ()
    source: str = "memory_save"
    created_at: str = ""
    updated_at: str = ""
    label: Label | None = None
