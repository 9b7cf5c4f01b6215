"""Scratchpad: a short per-session list of working notes the model keeps for itself.

Behind `ScratchpadStore` so the memory layer can back it with SQLite later; the
in-memory store here is keyed by session id and forgets on restart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Protocol

import msgspec

from oxydra.core.tiers import SafetyTier
from oxydra.tools._context import ToolExecutionContext
from oxydra.tools._decorator import FunctionTool, tool

Item = Annotated[str, msgspec.Meta(min_length=1, max_length=240)]
Items = Annotated[list[Item], msgspec.Meta(min_length=1, max_length=32)]


class Scratchpad(msgspec.Struct, frozen=True, kw_only=True):
    """The notes of one session and when they last changed (ISO 8601, UTC)."""

    items: tuple[str, ...]
    updated_at: str


class ScratchpadStore(Protocol):
    """Where scratchpads live."""

    async def read(self, session_id: str) -> Scratchpad | None:
        """The session's scratchpad, if it has one."""
        ...

    async def write(self, session_id: str, items: Sequence[str]) -> Scratchpad:
        """Replace the session's items."""
        ...

    async def clear(self, session_id: str) -> bool:
        """Remove the scratchpad; False when there was none."""
        ...


class InMemoryScratchpad:
    """A `ScratchpadStore` in a dict; `clock` returns the current UTC time."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._pads: dict[str, Scratchpad] = {}
        self._clock = clock or (lambda: datetime.now(UTC))

    async def read(self, session_id: str) -> Scratchpad | None:
        """See `ScratchpadStore.read`."""
        return self._pads.get(session_id)

    async def write(self, session_id: str, items: Sequence[str]) -> Scratchpad:
        """See `ScratchpadStore.write`."""
        pad = Scratchpad(items=tuple(items), updated_at=self._clock().isoformat())
        self._pads[session_id] = pad
        return pad

    async def clear(self, session_id: str) -> bool:
        """See `ScratchpadStore.clear`."""
        return self._pads.pop(session_id, None) is not None


class ScratchpadView(msgspec.Struct, kw_only=True):
    """`scratchpad_read` output."""

    session_id: str
    items: list[str]
    updated_at: str | None
    item_count: int


class ScratchpadWritten(msgspec.Struct, kw_only=True):
    """`scratchpad_write` output."""

    session_id: str
    item_count: int
    updated_at: str
    message: str


class ScratchpadCleared(msgspec.Struct, kw_only=True):
    """`scratchpad_clear` output."""

    cleared: bool
    message: str


def scratchpad_tools(store: ScratchpadStore) -> tuple[FunctionTool, ...]:
    """`scratchpad_read`, `scratchpad_write` and `scratchpad_clear` over `store`."""

    @tool(name="scratchpad_read", timeout=10, safety_tier=SafetyTier.READ_ONLY)
    async def scratchpad_read(ctx: ToolExecutionContext) -> ScratchpadView:
        """Read this session's scratchpad of working notes."""
        pad = await store.read(ctx.session_id)
        items = list(pad.items) if pad else []
        updated = pad.updated_at if pad else None
        return ScratchpadView(
            session_id=ctx.session_id, items=items, updated_at=updated, item_count=len(items)
        )

    @tool(name="scratchpad_write", timeout=10, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def scratchpad_write(ctx: ToolExecutionContext, items: Items) -> ScratchpadWritten:
        """Replace the scratchpad with a new list of short notes.

        Args:
            items: 1-32 notes of at most 240 characters each.
        """
        pad = await store.write(ctx.session_id, items)
        return ScratchpadWritten(
            session_id=ctx.session_id,
            item_count=len(pad.items),
            updated_at=pad.updated_at,
            message="scratchpad updated",
        )

    @tool(name="scratchpad_clear", timeout=10, safety_tier=SafetyTier.SIDE_EFFECTING)
    async def scratchpad_clear(ctx: ToolExecutionContext) -> ScratchpadCleared:
        """Delete the scratchpad."""
        cleared = await store.clear(ctx.session_id)
        message = "scratchpad cleared" if cleared else "scratchpad was already empty"
        return ScratchpadCleared(cleared=cleared, message=message)

    return scratchpad_read, scratchpad_write, scratchpad_clear
