"""`MemoryRetrieval`: hybrid search, chunk upserts and user notes (async facade).

Provenance crosses here (the worker thread does not see the caller's context variables):
a note stored during a tool call keeps the call's `writing_label()`, and labelled hits a
search returns are reported with `note_read`, so the tool result that shows them is
labelled too (docs/taint.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from oxydra.core.provenance import Label, merge, note_read, writing_label
from oxydra.memory._store import MemoryStore
from oxydra.memory._types import ChunkInput, Note, SearchHit, SearchMode, UpsertResult
from oxydra.memory._worker import StoreWorker


class MemoryRetrieval:
    """Search and notes over the memory database.

    Obtain it as `memory.retrieval`; every method runs on the store's worker thread (the
    query is embedded there too). See `RetrievalIndex` and `NoteBook` for semantics.
    """

    def __init__(self, store: MemoryStore, worker: StoreWorker) -> None:
        self._index = store.retrieval
        self._notes = store.notes
        self._worker = worker

    @property
    def embedder_name(self) -> str:
        """Name of the embedder whose vectors are searched."""
        return self._index.embedder.name

    async def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        session_ids: Sequence[str] | None = None,
        tags: Sequence[str] = (),
        top_k: int | None = None,
        mode: SearchMode = "hybrid",
    ) -> list[SearchHit]:
        """The best chunks for `query` within the user/session/tag filter."""
        hits = await self._worker.run(
            self._index.search, query, user_id=user_id, session_ids=session_ids, tags=tags,
            top_k=top_k, mode=mode,
        )  # fmt: skip
        for hit in hits:
            note_read(hit.label)
        return hits

    async def upsert_chunks(self, chunks: Sequence[ChunkInput]) -> UpsertResult:
        """Insert, replace or keep chunks (idempotent by id and content hash)."""
        return await self._worker.run(self._index.upsert_chunks, chunks)

    async def delete_chunks(self, chunk_ids: Sequence[str]) -> int:
        """Delete chunks by id; return how many existed."""
        return await self._worker.run(self._index.delete_chunks, chunk_ids)

    async def store_note(
        self,
        user_id: str,
        content: str,
        tags: Sequence[str] | None = None,
        label: Label | None = None,
    ) -> Note:
        """Save a note for the user; it carries `label` and the current call's label."""
        label = merge(label, writing_label())
        return await self._worker.run(self._notes.store_note, user_id, content, tags, label)

    async def update_note(
        self,
        user_id: str,
        note_id: str,
        content: str,
        tags: Sequence[str] | None = None,
        label: Label | None = None,
    ) -> Note | None:
        """Replace the user's note (None when the user has no such note), relabelled."""
        label = merge(label, writing_label())
        return await self._worker.run(
            self._notes.update_note, user_id, note_id, content, tags, label
        )

    async def delete_note(self, user_id: str, note_id: str) -> bool:
        """Delete the user's note (False when the user has no such note)."""
        return await self._worker.run(self._notes.delete_note, user_id, note_id)

    async def get_note(self, user_id: str, note_id: str) -> Note | None:
        """The user's note, or None."""
        return await self._worker.run(self._notes.get_note, user_id, note_id)

    async def list_notes(self, user_id: str) -> list[Note]:
        """All of the user's notes, oldest first."""
        return await self._worker.run(self._notes.list_notes, user_id)
