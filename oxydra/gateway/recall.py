"""`session_search`: the person's older sessions, searched and quoted with where and when.

Recall reads what the store already indexed from every conversation (hybrid retrieval:
vectors and full text over the stored messages), so it costs no model call. Rules:
1. Only the calling person's sessions (the user comes from the call's context, never from
   the model), never the current one (its messages are already in the context), never
   the notes (that is `memory_search`), archived ones included (archive only hides).
2. Each excerpt names its session (id and name) and the date it was said, so the answer
   can cite it and the person can open it read-only (`/export <id>`).
3. Excerpts are the stored text, cut to a bound; what they carry keeps its label (a
   quoted web page stays untrusted: `Memory.search` notes what was read).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from oxydra.core.tiers import SafetyTier
from oxydra.gateway._store import SessionRecords
from oxydra.memory import Memory, notes_session_id
from oxydra.tools import FunctionTool, ToolExecutionContext, tool

MAX_EXCERPT_CHARS = 1500
Query = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
TopK = Annotated[int, msgspec.Meta(ge=1, le=10)]


class Excerpt(msgspec.Struct, kw_only=True):
    """One passage of an older session."""

    session_id: str
    session_name: str | None
    said_at: str
    text: str
    score: float


def session_search_tool(memory: Memory, store: SessionRecords) -> FunctionTool:
    """The `session_search` tool over the person's stored conversations."""

    @tool(name="session_search", timeout=20, safety_tier=SafetyTier.READ_ONLY)
    async def session_search(
        ctx: ToolExecutionContext, query: Query, top_k: TopK = 5
    ) -> list[Excerpt]:
        """Search the user's older conversations (other sessions) and quote what was said.

        Args:
            query: What to look for.
            top_k: How many passages.
        """
        return await search_sessions(memory, store, ctx.user_id, ctx.session_id, query, top_k)

    return session_search


async def search_sessions(
    memory: Memory,
    store: SessionRecords,
    user_id: str,
    current: str,
    query: str,
    top_k: int = 5,
) -> list[Excerpt]:
    """The best passages of the person's other sessions (rules 1-3)."""
    hits = await memory.search(query, user_id=user_id, top_k=top_k * 4, mode="hybrid")
    skip = {current, notes_session_id(user_id)}
    names: dict[str, str | None] = {}
    found: list[Excerpt] = []
    for hit in hits:
        if hit.session_id in skip or hit.session_id.startswith(f"subagent:{current}:"):
            continue
        if hit.session_id not in names:
            record = await store.get(hit.session_id)
            if record is not None and record.user_id != user_id:
                skip.add(hit.session_id)
                continue
            names[hit.session_id] = record.display_name if record is not None else None
        found.append(
            Excerpt(
                session_id=hit.session_id,
                session_name=names[hit.session_id],
                said_at=hit.created_at,
                text=hit.text[:MAX_EXCERPT_CHARS],
                score=round(hit.score, 4),
            )
        )
        if len(found) == top_k:
            break
    return found
