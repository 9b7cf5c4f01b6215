"""Memory: the embedded SQLite store, hybrid retrieval, notes and gateway sessions.

Owns the memory database file (`<workspace>/.oxydra/memory.db` by default) and the vector
index beside it. Must not talk to providers, run tools or know about frames.

Async facades (for the runtime and gateway; one worker thread each `Memory`):
`Memory` (conversation log, state, summaries, scratchpad), `MemoryRetrieval` (search,
chunks, notes) and `SessionStore` (gateway sessions). Sync core: `MemoryStore`.
Tables a higher layer owns (the scheduler's) run their SQL through `Memory.call`, on the
same worker thread and `Database` connection. The model-facing tools are `@tool`s in
`oxydra.memory.tools`, not imported here.
"""

from oxydra.memory._db import Database
from oxydra.memory._embed import Embedder, HashedEmbedder
from oxydra.memory._fastembed import (
    FastEmbedEmbedder,
    create_embedder,
    prepare_minilm_dir,
)
from oxydra.memory._memory import Memory
from oxydra.memory._memory_retrieval import MemoryRetrieval
from oxydra.memory._notes import notes_session_id
from oxydra.memory._session_store import SessionStore
from oxydra.memory._store import MemoryStore, index_path_for, resolve_db_path
from oxydra.memory._types import (
    ChunkInput,
    GatewaySession,
    Note,
    RestoredSession,
    ScratchpadState,
    ScratchpadWrite,
    SearchHit,
    SearchMode,
    SessionRecord,
    StoredEvent,
    SummaryState,
    UpsertResult,
)

__all__ = [
    "ChunkInput",
    "Database",
    "Embedder",
    "FastEmbedEmbedder",
    "GatewaySession",
    "HashedEmbedder",
    "Memory",
    "MemoryRetrieval",
    "MemoryStore",
    "Note",
    "RestoredSession",
    "ScratchpadState",
    "ScratchpadWrite",
    "SearchHit",
    "SearchMode",
    "SessionRecord",
    "SessionStore",
    "StoredEvent",
    "SummaryState",
    "UpsertResult",
    "create_embedder",
    "index_path_for",
    "notes_session_id",
    "prepare_minilm_dir",
    "resolve_db_path",
]
