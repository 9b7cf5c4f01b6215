"""What a tool call knows about its caller: passed per call, never stored on a tool.

A registry and its tools are shared by every session of a user; anything that differs
between calls (session, workspace view, approval, the calling turn's budget) travels in
`ToolExecutionContext`, so two concurrent calls can never see each other's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from oxydra.core.provenance import Label
from oxydra.core.spend import Spend
from oxydra.core.stream import MediaOut
from oxydra.core.tiers import SafetyTier
from oxydra.tools._backend import FileBackend


class ApprovalRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A question to the human: may this call run?

    `taint_sources` lists the untrusted sources in the model's context when the question
    comes from taint policy, and `reason` says why it is asked.
    """

    tool: str
    safety_tier: SafetyTier
    arguments: dict[str, Any]
    user_id: str
    session_id: str
    call_id: str | None = None
    reason: str = ""
    taint_sources: tuple[str, ...] = ()


class ApprovalHook(Protocol):
    """Asks a human (gateway or TUI) and returns their answer; True means run it."""

    async def __call__(self, request: ApprovalRequest, /) -> bool:
        """Answer one approval request."""
        ...


class MediaSender(Protocol):
    """Delivers a file to the person the turn talks to; their channel shows it."""

    async def __call__(self, media: MediaOut, /) -> None:
        """Send one file."""
        ...


class TurnBudget(Protocol):
    """The calling turn's budget, for a tool that calls models itself (delegation): it may
    use what is left, and hands back what it spent so the turn's caps hold."""

    def remaining_tokens(self) -> int | None:
        """Tokens the turn may still use (None: no limit)."""
        ...

    def remaining_cost_usd(self) -> float | None:
        """Money the turn may still spend (None: no limit)."""
        ...

    def absorb(self, spend: Spend) -> None:
        """Charge what the tool's own model calls cost to the turn."""
        ...


@dataclass(frozen=True, kw_only=True)
class ToolExecutionContext:
    """Per-call facts a tool may use.

    Attributes:
        user_id: whose workspace and data this call touches.
        session_id: the conversation (scratchpad and approvals are keyed on it).
        workspace: the file seam; in process it is the jail, later a sandboxed guest.
        channel: where the turn came from (`tui`, `telegram`, `scheduler`...).
        approval: the human-in-the-loop hook, when a channel wired one.
        provider, model: the caller's model (a tool may adapt its output to it).
        call_id: the model's id for this call.
        budget: the calling turn's budget, when a turn runs the call.
        taint: the label of the model's context in the step that made the call (None:
            trusted); taint policy gates and labels the call by it.
        allowed_tools: the tools the person behind the turn may use (None: every tool);
            the registry runs no other, and the runtime offers no other.
        deliver, media_types: how `send_media` reaches the person, and the kinds of file
            their channel shows (none: the terminal, a scheduled run).
    """

    user_id: str
    session_id: str
    workspace: FileBackend
    channel: str = "tui"
    approval: ApprovalHook | None = None
    provider: str | None = None
    model: str | None = None
    call_id: str | None = None
    budget: TurnBudget | None = None
    taint: Label | None = None
    allowed_tools: frozenset[str] | None = None
    deliver: MediaSender | None = None
    media_types: frozenset[str] = frozenset()
