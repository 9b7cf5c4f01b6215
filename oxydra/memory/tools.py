"""The memory tools the model calls, as plain async functions + schemas.

Each tool is `async def tool(target, user_id, session_id, **params) -> str`: `target` is
`MemoryRetrieval`;
`user_id` and `session_id` come from the per-call tool context, never from the model, so
a model can only reach the calling user's notes. The tool layer wraps each `ToolSpec`
(name, description, JSON Schema, read-only flag, timeout) as a registered tool.

Outputs are JSON text (upstream's shapes). Bad arguments raise `ToolArgumentsError`; an
unknown note raises `ToolError`; the runtime turns both into feedback for the model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from oxydra.core import FunctionDecl, ToolArgumentsError, ToolError
from oxydra.memory._notes import notes_session_id
from oxydra.memory._text import MAX_TAG_CHARS, MAX_TAGS
from oxydra.memory._types import Note, SearchHit

if TYPE_CHECKING:
    from oxydra.memory._memory_retrieval import MemoryRetrieval

SEARCH_MAX_TOP_K = 20


def _dump(value: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def _require_text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ToolArgumentsError(f"`{name}` must be a non-empty string")
    return value


async def memory_search(
    retrieval: MemoryRetrieval,
    user_id: str,
    session_id: str | None,
    *,
    query: str,
    top_k: int = 5,
    include_conversation: bool = False,
    tags: list[str] | None = None,
) -> str:
    """Search the user's notes (and, optionally, the current conversation)."""
    _require_text(query, "query")
    if not isinstance(top_k, int) or not 1 <= top_k <= SEARCH_MAX_TOP_K:
        raise ToolArgumentsError(f"`top_k` must be an integer from 1 to {SEARCH_MAX_TOP_K}")
    sessions = [notes_session_id(user_id)]
    if include_conversation and session_id:
        sessions.append(session_id)
    hits = await retrieval.search(
        query, user_id=user_id, session_ids=sessions, tags=tags or (), top_k=top_k * 2
    )
    return _dump(_present(hits, top_k))


def _present(hits: list[SearchHit], top_k: int) -> list[dict[str, Any]]:
    seen: set[str] = set()
    results: list[dict[str, Any]] = []
    for hit in hits:
        if hit.note_id and hit.note_id in seen:
            continue
        if hit.note_id:
            seen.add(hit.note_id)
        meta = hit.metadata
        results.append({
            "note_id": hit.note_id or "",
            "text": hit.text,
            "score": round(hit.score, 4),
            "source": meta.get("source", "memory_save") if hit.note_id else "conversation",
            "tags": meta.get("tags", []),
            "created_at": meta.get("created_at", hit.created_at),
            "updated_at": meta.get("updated_at", hit.created_at),
        })  # fmt: skip
    return results[:top_k]


async def memory_save(
    retrieval: MemoryRetrieval,
    user_id: str,
    session_id: str | None,
    *,
    content: str,
    tags: list[str] | None = None,
) -> str:
    """Save a new note for the user."""
    note = await retrieval.store_note(user_id, _require_text(content, "content"), tags)
    return _dump({"note_id": note.note_id, "message": _saved(note, "saved")})


async def memory_update(
    retrieval: MemoryRetrieval,
    user_id: str,
    session_id: str | None,
    *,
    note_id: str,
    content: str,
    tags: list[str] | None = None,
) -> str:
    """Replace the content (and tags, when given) of one of the user's notes."""
    _require_text(note_id, "note_id")
    note = await retrieval.update_note(user_id, note_id, _require_text(content, "content"), tags)
    if note is None:
        raise ToolError(f"note `{note_id}` not found")
    return _dump({"note_id": note.note_id, "message": _saved(note, "updated")})


async def memory_delete(
    retrieval: MemoryRetrieval, user_id: str, session_id: str | None, *, note_id: str
) -> str:
    """Delete one of the user's notes."""
    _require_text(note_id, "note_id")
    if not await retrieval.delete_note(user_id, note_id):
        raise ToolError(f"note `{note_id}` not found")
    return _dump({"note_id": note_id, "deleted": True, "message": f"note {note_id} deleted"})


def _saved(note: Note, verb: str) -> str:
    tags = f" with tags {', '.join(note.tags)}" if note.tags else ""
    return f"note {note.note_id} {verb}{tags}"


_TAGS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS},
    "maxItems": MAX_TAGS,
    "description": "Short lowercase labels, e.g. ['preference', 'travel'].",
}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: what the model sees, and the function that runs it."""

    name: str
    description: str
    parameters: dict[str, Any]
    read_only: bool
    timeout_secs: float
    run: Callable[..., Awaitable[str]]
    target: str  # "retrieval" (MemoryRetrieval)

    @property
    def decl(self) -> FunctionDecl:
        """The declaration sent to the model."""
        return FunctionDecl(
            name=self.name, description=self.description, parameters=self.parameters
        )


MEMORY_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="memory_search",
        description=(
            "Search your long-term notes about this user (and optionally the current "
            "conversation). Returns a JSON list of matches with note_id, text, score, tags."
        ),
        parameters=_object(
            {
                "query": {"type": "string", "minLength": 1, "description": "What to look for."},
                "top_k": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": SEARCH_MAX_TOP_K,
                    "default": 5,
                    "description": "How many results.",
                },
                "include_conversation": {
                    "type": "boolean",
                    "default": False,
                    "description": "Also search earlier messages of this conversation.",
                },
                "tags": {**_TAGS_SCHEMA, "description": "Only notes carrying all these tags."},
            },
            ["query"],
        ),
        read_only=True,
        timeout_secs=15,
        run=memory_search,
        target="retrieval",
    ),
    ToolSpec(
        name="memory_save",
        description=(
            "Save a durable note about the user (a preference, fact or decision) so it can "
            "be found in later conversations. Returns the new note_id."
        ),
        parameters=_object(
            {"content": {"type": "string", "minLength": 1}, "tags": _TAGS_SCHEMA}, ["content"]
        ),
        read_only=False,
        timeout_secs=10,
        run=memory_save,
        target="retrieval",
    ),
    ToolSpec(
        name="memory_update",
        description="Replace the content of an existing note (tags kept unless given).",
        parameters=_object(
            {
                "note_id": {"type": "string", "minLength": 1},
                "content": {"type": "string", "minLength": 1},
                "tags": _TAGS_SCHEMA,
            },
            ["note_id", "content"],
        ),
        read_only=False,
        timeout_secs=10,
        run=memory_update,
        target="retrieval",
    ),
    ToolSpec(
        name="memory_delete",
        description="Delete a note that is wrong or no longer wanted.",
        parameters=_object({"note_id": {"type": "string", "minLength": 1}}, ["note_id"]),
        read_only=False,
        timeout_secs=10,
        run=memory_delete,
        target="retrieval",
    ),
)
