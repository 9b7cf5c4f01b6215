"""Memory: the embedded SQLite store, hybrid retrieval, notes and the conversation log.

Owns the memory database file (`<workspace>/.oxydra/memory.db` by default) and the vector
index beside it. Must not talk to providers, run tools or know about frames.

One async facade (one worker thread each): `Memory` — conversation log, scratchpad,
summaries, search and notes, what the layers above use. Sync core: `MemoryStore`. Tables a
higher layer owns (the gateway's, the scheduler's) run their SQL through `Memory.call`, on
the same worker thread and `Database` connection. The model-facing tools are `@tool`s in
`oxydra.memory.tools`, not imported here.
"""

from oxydra.memory._db import Database
from oxydra.memory._events import notes_session_id
from oxydra.memory._memory import Memory, MemoryStore, index_path_for, resolve_db_path
from oxydra.memory._types import (
    ChunkInput,
    ConversationRecord,
    Note,
    RestoredSession,
    ScratchpadState,
    ScratchpadWrite,
    SearchHit,
    SearchMode,
    StoredEvent,
    SummaryState,
    UpsertResult,
)
from oxydra.memory._vectors import (
    Embedder,
    FastEmbedEmbedder,
    HashedEmbedder,
    create_embedder,
    prepare_minilm_dir,
)

__all__ = [
    "ChunkInput",
    "ConversationRecord",
    "Database",
    "Embedder",
    "FastEmbedEmbedder",
    "HashedEmbedder",
    "Memory",
    "MemoryStore",
    "Note",
    "RestoredSession",
    "ScratchpadState",
    "ScratchpadWrite",
    "SearchHit",
    "SearchMode",
    "StoredEvent",
    "SummaryState",
    "UpsertResult",
    "create_embedder",
    "index_path_for",
    "notes_session_id",
    "prepare_minilm_dir",
    "resolve_db_path",
]
