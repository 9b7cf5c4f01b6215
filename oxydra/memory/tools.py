"""The memory tools the model calls: `memory_search`, `memory_save`, `memory_update`,
`memory_delete`, declared with `@tool` like every other tool.

`memory_tools(memory)` binds them to one store. The user and session come from the
per-call `ToolExecutionContext`, never from the model, so a model can only reach the calling
user's notes. Arguments are validated from the signatures (bounds included); an unknown or
foreign note is a `ToolError`. Outputs keep upstream's field names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from oxydra.core.errors import ToolArgumentsError, ToolError
from oxydra.core.tiers import SafetyTier
from oxydra.memory._events import notes_session_id
from oxydra.memory._text import MAX_TAG_CHARS, MAX_TAGS
from oxydra.memory._types import Note, SearchHit
from oxydra.tools import FunctionTool, ToolExecutionContext, tool

if TYPE_CHECKING:
    from oxydra.memory._memory import Memory

SEARCH_MAX_TOP_K = 20

Text = Annotated[str, msgspec.Meta(min_length=1)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TAG_CHARS)]
Tags = Annotated[
    list[Tag],
    msgspec.Meta(max_length=MAX_TAGS, description="Short lowercase labels, e.g. ['travel']."),
]
TopK = Annotated[int, msgspec.Meta(ge=1, le=SEARCH_MAX_TOP_K)]


class Found(msgspec.Struct, kw_only=True):
    """One `memory_search` result (`note_id` empty for a conversation message)."""

    note_id: str
    text: str
    score: float
    source: str
    tags: list[str]
    created_at: str
    updated_at: str


class Saved(msgspec.Struct, kw_only=True):
    """`memory_save` / `memory_update` output."""

    note_id: str
    message: str


class Deleted(msgspec.Struct, kw_only=True):
    """`memory_delete` output."""

    note_id: str
    deleted: bool
    message: str


def memory_tools(retrieval: Memory) -> tuple[FunctionTool, ...]:
    """The four `memory_*` tools over the store."""

    @tool(name="memory_search", timeout=15, safety_tier=SafetyTier.READ_ONLY)
    async def memory_search(
        ctx: ToolExecutionContext,
        query: Text,
        top_k: TopK = 5,
        include_conversation: bool = False,
        tags: Tags | None = None,
    ) -> list[Found]:
        """Search your long-term notes about this user (and optionally this conversation).

        Args:
            query: What to look for.
            top_k: How many results.
            include_conversation: Also search earlier messages of this conversation.
            tags: Only notes carrying all these tags.
        """
        sessions = [notes_session_id(ctx.user_id)]
        if include_conversation and ctx.session_id:
            sessions.append(ctx.session_id)
        hits = await retrieval.search(
            _required(query, "query"),
            user_id=ctx.user_id,
            session_ids=sessions,
            tags=tags or (),
            top_k=top_k * 2,
        )
        return _present(hits, top_k)

    @tool(name="memory_save", timeout=10, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def memory_save(
        ctx: ToolExecutionContext, content: Text, tags: Tags | None = None
    ) -> Saved:
        """Save a durable note about the user (a preference, fact or decision) for later
        conversations; returns the new note_id.

        Args:
            content: The note.
            tags: Labels to find it by.
        """
        note = await retrieval.store_note(ctx.user_id, _required(content, "content"), tags)
        return Saved(note_id=note.note_id, message=_saved(note, "saved"))

    @tool(name="memory_update", timeout=10, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def memory_update(
        ctx: ToolExecutionContext, note_id: Text, content: Text, tags: Tags | None = None
    ) -> Saved:
        """Replace the content of an existing note (tags kept unless given).

        Args:
            note_id: The note to change.
            content: Its new text.
            tags: New labels (omit to keep the old ones).
        """
        note = await retrieval.update_note(
            ctx.user_id, _required(note_id, "note_id"), _required(content, "content"), tags
        )
        if note is None:
            raise ToolError(f"note `{note_id}` not found")
        return Saved(note_id=note.note_id, message=_saved(note, "updated"))

    @tool(name="memory_delete", timeout=10, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def memory_delete(ctx: ToolExecutionContext, note_id: Text) -> Deleted:
        """Delete a note that is wrong or no longer wanted.

        Args:
            note_id: The note to delete.
        """
        if not await retrieval.delete_note(ctx.user_id, _required(note_id, "note_id")):
            raise ToolError(f"note `{note_id}` not found")
        return Deleted(note_id=note_id, deleted=True, message=f"note {note_id} deleted")

    return memory_search, memory_save, memory_update, memory_delete


def _required(value: str, name: str) -> str:
    if not value.strip():
        raise ToolArgumentsError(f"`{name}` must not be blank")
    return value


def _present(hits: list[SearchHit], top_k: int) -> list[Found]:
    """One result per note (a long note is several chunks), best first."""
    seen: set[str] = set()
    results: list[Found] = []
    for hit in hits:
        if hit.note_id and hit.note_id in seen:
            continue
        if hit.note_id:
            seen.add(hit.note_id)
        meta: dict[str, Any] = hit.metadata
        results.append(
            Found(
                note_id=hit.note_id or "",
                text=hit.text,
                score=round(hit.score, 4),
                source=meta.get("source", "memory_save") if hit.note_id else "conversation",
                tags=list(meta.get("tags", [])),
                created_at=meta.get("created_at", hit.created_at),
                updated_at=meta.get("updated_at", hit.created_at),
            )
        )
    return results[:top_k]


def _saved(note: Note, verb: str) -> str:
    tags = f" with tags {', '.join(note.tags)}" if note.tags else ""
    return f"note {note.note_id} {verb}{tags}"
