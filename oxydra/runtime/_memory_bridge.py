"""The memory store behind the runtime's and gateway's seams.

Adapters only: the conversation store (events + rolling summary), the scratchpad store and
retrieval injection.
"""

from __future__ import annotations

from collections.abc import Sequence

from oxydra.core.messages import Message
from oxydra.core.provenance import merge
from oxydra.memory import Memory, notes_session_id
from oxydra.runtime.conversation import Summary
from oxydra.runtime.loop import Retriever
from oxydra.tools import Scratchpad

SNIPPET_CHARS = 240


class MemoryConversations:
    """`ConversationStore` over `Memory`: events are the history, summaries keep ranges.

    `index` decides whether stored messages are also chunked and embedded for retrieval
    (on when `[memory] enabled`).
    """

    def __init__(self, memory: Memory, *, index: bool) -> None:
        self.memory = memory
        self.index = index

    async def load(self, session_id: str, user_id: str) -> tuple[list[Message], Summary | None]:
        """The stored history and summary, creating the session on first use."""
        restored = await self.memory.restore_session(session_id)
        if restored is None:
            await self.memory.create_session(session_id, user_id=user_id)
            return [], None
        if restored.session.user_id not in (None, user_id):
            from oxydra.core.errors import MemoryStoreError

            raise MemoryStoreError(f"session {session_id} belongs to another user")
        events = list(restored.events)
        summary = None
        if restored.summary is not None:
            covered = sum(1 for e in events if e.sequence <= restored.summary.upper_sequence)
            summary = Summary(
                text=restored.summary.summary,
                covered=covered,
                epoch=restored.summary.epoch,
                label=restored.summary.label,
            )
        return [e.message for e in events], summary

    async def append(self, session_id: str, user_id: str, messages: Sequence[Message]) -> None:
        """Store messages durably (one transaction)."""
        await self.memory.append_events(session_id, messages, index=self.index)

    async def save_summary(self, session_id: str, summary: Summary) -> None:
        """Store the summary with the range of events it covers."""
        events = await self.memory.recall(session_id)
        if not events or summary.covered <= 0:
            return
        upper = events[min(summary.covered, len(events)) - 1].sequence
        await self.memory.save_summary(
            session_id,
            expected_epoch=summary.epoch - 1,
            summary=summary.text,
            upper_sequence=upper,
            lower_sequence=events[0].sequence,
            label=summary.label,
        )


class MemoryScratchpad:
    """`ScratchpadStore` persisted in the session state."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    async def read(self, session_id: str) -> Scratchpad | None:
        """The session's scratchpad, if it has items."""
        state = await self.memory.read_scratchpad(session_id)
        if not state.items:
            return None
        return Scratchpad(items=tuple(state.items), updated_at=state.updated_at or "")

    async def write(self, session_id: str, items: Sequence[str]) -> Scratchpad:
        """Replace the items."""
        written = await self.memory.write_scratchpad(session_id, items)
        return Scratchpad(items=tuple(items), updated_at=getattr(written, "updated_at", "") or "")

    async def clear(self, session_id: str) -> bool:
        """Empty the scratchpad."""
        return await self.memory.clear_scratchpad(session_id)


def retriever_for(retrieval: Memory, top_k: int) -> Retriever:
    """Retrieved memory for the latest question: the user's notes and this conversation."""

    async def retrieve(user_id: str, session_id: str, query: str) -> Message | None:
        hits = await retrieval.search(
            query, user_id=user_id, session_ids=[notes_session_id(user_id), session_id], top_k=top_k
        )
        if not hits:
            return None
        lines = [f"- [{h.score:.3f}] {' '.join(h.text.split())[:SNIPPET_CHARS]}" for h in hits]
        # Labelled snippets taint the step; the runtime never sends them as a system message.
        return Message(
            role="system",
            content="Retrieved memory snippets:\n" + "\n".join(lines),
            label=merge(*(h.label for h in hits)),
        )

    return retrieve
