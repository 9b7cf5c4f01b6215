"""Chunk rows for conversation messages and notes (upstream's ids and metadata).

Rows are built before the write transaction so their text can be embedded outside it;
`stamp_*` fills in what only the transaction knows (the event's sequence number).
System messages are not indexed: the system prompt repeats in every session and would
crowd real content out of search results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oxydra.core import Label, Message
from oxydra.memory._chunks import ChunkRow
from oxydra.memory._text import (
    chunk_id_for,
    chunk_windows,
    collapse_whitespace,
    content_hash,
    message_source,
    message_text,
)

NOTE_SCHEMA_VERSION = 1


def conversation_rows(session_id: str, message: Message) -> list[ChunkRow]:
    """Unstamped rows for one message (empty for system messages and empty text)."""
    if message.role == "system":
        return []
    source = message_source(message)
    windows = chunk_windows(message_text(message))
    metadata: dict[str, Any] = {"source": source, "role": message.role}
    if message.tool_call_id:
        metadata["tool_call_id"] = message.tool_call_id
    rows = _rows(session_id, windows, metadata, f"conversation://{session_id}/{source}")
    for row in rows:
        row.label = message.trust_label
    return rows


def note_rows(
    session_id: str,
    note_id: str,
    content: str,
    *,
    tags: Sequence[str],
    source: str,
    created_at: str,
    updated_at: str,
    label: Label | None = None,
) -> list[ChunkRow]:
    """Unstamped rows for a note's content."""
    metadata: dict[str, Any] = {
        "note_id": note_id,
        "source": source,
        "tags": list(tags),
        "created_at": created_at,
        "updated_at": updated_at,
        "schema_version": NOTE_SCHEMA_VERSION,
        "role": "user",
    }
    rows = _rows(session_id, chunk_windows(collapse_whitespace(content)), metadata, None)
    for row in rows:
        row.note_id = note_id
        row.label = label
    return rows


def _rows(
    session_id: str, windows: list[str], metadata: dict[str, Any], source_uri: str | None
) -> list[ChunkRow]:
    return [
        ChunkRow(
            chunk_id="",
            session_id=session_id,
            text=window,
            digest=content_hash(window),
            metadata={**metadata, "chunk_index": index, "chunk_count": len(windows)},
            source_uri=source_uri,
        )
        for index, window in enumerate(windows)
    ]


def stamp_rows(rows: Sequence[ChunkRow], sequence: int) -> None:
    """Give rows the event's sequence and their final chunk ids."""
    for index, row in enumerate(rows):
        row.chunk_id = chunk_id_for(row.session_id, sequence, index, row.digest)
        row.sequence_start = row.sequence_end = sequence
        row.metadata = {**row.metadata, "sequence_start": sequence, "sequence_end": sequence}
