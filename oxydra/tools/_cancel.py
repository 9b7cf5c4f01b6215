"""A cancellation token passed down a turn: tools and sessions wait on it or poll it.

asyncio task cancellation stops the awaiting coroutine; a token says *why* and reaches code
that is not the awaited task (a subprocess reader, a nested agent, a thread polling it).
Children are cancelled with their parent, never the other way round.
"""

from __future__ import annotations

import asyncio

from oxydra.core.errors import AgentError


class CancellationToken:
    """A one-way switch from "running" to "cancelled", with an optional reason.

    Args:
        parent: a token whose cancellation also cancels this one.
    """

    def __init__(self, parent: CancellationToken | None = None) -> None:
        self._event = asyncio.Event()
        self._children: list[CancellationToken] = []
        self.reason: str | None = None
        if parent is not None:
            parent._children.append(self)
            if parent.cancelled:
                self.cancel(parent.reason or "cancelled")

    @property
    def cancelled(self) -> bool:
        """Whether `cancel` was called on this token or an ancestor."""
        return self._event.is_set()

    def cancel(self, reason: str = "cancelled") -> None:
        """Cancel this token and every child; the first reason sticks."""
        if self._event.is_set():
            return
        self.reason = reason
        self._event.set()
        for child in self._children:
            child.cancel(reason)

    def child(self) -> CancellationToken:
        """A token cancelled together with this one (for a sub-task or a delegated agent)."""
        return CancellationToken(self)

    async def wait(self) -> str:
        """Wait until cancelled; returns the reason."""
        await self._event.wait()
        return self.reason or "cancelled"

    def raise_if_cancelled(self) -> None:
        """Raise AgentError naming the reason when cancelled."""
        if self.cancelled:
            raise AgentError(f"cancelled: {self.reason}")
