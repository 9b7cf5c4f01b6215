"""A session's conversation as the runtime holds it, and its repair rules.

History holds user, assistant and tool messages (the system prompt is added at call time,
so a changed prompt applies to old sessions too). Invariant kept by every path, cancel and
crash included: each assistant tool call is followed by exactly one result. `repair` restores
it for a history loaded from a store that a crash interrupted mid-turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from oxydra.core.messages import Message, ToolCall
from oxydra.core.provenance import Label


class ConversationStore(Protocol):
    """Durable history of sessions (the memory layer implements it)."""

    async def load(self, session_id: str, user_id: str) -> tuple[list[Message], Summary | None]:
        """The stored history of a session (oldest first) and its rolling summary."""
        ...

    async def append(self, session_id: str, user_id: str, messages: Sequence[Message]) -> None:
        """Store messages at the end of the history, durably."""
        ...

    async def save_summary(self, session_id: str, summary: Summary) -> None:
        """Store the rolling summary (the messages it covers stay stored)."""
        ...


@dataclass(frozen=True)
class Summary:
    """A rolling summary of the first `covered` history messages.

    `label` is the union of the labels of what it summarises: a summary of untrusted
    content stays untrusted.
    """

    text: str
    covered: int
    epoch: int = 0
    label: Label | None = None


@dataclass
class Conversation:
    """One session's history in memory."""

    session_id: str
    user_id: str
    history: list[Message] = field(default_factory=list)
    summary: Summary | None = None
    stored: int = 0
    system_prompt: str | None = None
    writing: asyncio.Future[None] | None = None
    """The store write in flight (`AgentRuntime._persist_soon`), if any."""
    _called: dict[str, int] = field(default_factory=dict, repr=False)
    """Per tool name: how much of the history `called` has looked at (-1: found)."""

    def unstored(self) -> list[Message]:
        """Messages not yet handed to the store."""
        return self.history[self.stored :]

    def called(self, tool: str) -> bool:
        """Whether the session has called `tool`; each message is looked at once, as the
        history only grows (asked before every model call)."""
        seen = self._called.get(tool, 0)
        if seen < 0:
            return True
        for index in range(seen, len(self.history)):
            message = self.history[index]
            if message.role == "assistant" and any(c.name == tool for c in message.tool_calls):
                self._called[tool] = -1
                return True
        self._called[tool] = len(self.history)
        return False

    def live_history(self) -> list[Message]:
        """History not covered by the summary."""
        start = self.summary.covered if self.summary else 0
        return self.history[start:]


def dangling_calls(history: Sequence[Message]) -> list[ToolCall]:
    """Tool calls of the last assistant message that have no result yet."""
    for index in range(len(history) - 1, -1, -1):
        message = history[index]
        if message.role == "assistant" and message.tool_calls:
            answered = {m.tool_call_id for m in history[index + 1 :] if m.role == "tool"}
            return [c for c in message.tool_calls if c.id not in answered]
        if message.role == "user":
            return []
    return []


def closing_results(calls: Sequence[ToolCall], reason: str) -> list[Message]:
    """Tool results for calls that will never run, saying why."""
    return [
        Message(role="tool", tool_call_id=c.id, name=c.name, content=f"Not executed: {reason}.")
        for c in calls
    ]


def interrupted_results(calls: Sequence[ToolCall], started_at: str | None) -> list[Message]:
    """Results for calls whose outcome was lost in a crash: what is known, nothing more.

    A call whose start was recorded may have run, in full or in part (its process was
    killed with the agent, but a file it wrote stays written); one without a recorded start
    comes from a history written before starts were recorded, and may have run as well.
    """
    if started_at:
        text = (
            f"Interrupted: the agent stopped while this call was running (started at "
            f"{started_at}); it may have run, fully or in part, and its result was lost. "
            "Check its effects before repeating it."
        )
    else:
        text = (
            "Interrupted: the agent stopped before this call's result was stored; it may "
            "have run. Check its effects before repeating it."
        )
    return [Message(role="tool", tool_call_id=c.id, name=c.name, content=text) for c in calls]


def repair(history: list[Message]) -> list[Message]:
    """Close every call left without a result (after a crash) so providers accept the history."""
    repaired: list[Message] = []
    pending: list[ToolCall] = []
    started: str | None = None
    for message in history:
        if message.role == "tool":
            pending = [c for c in pending if c.id != message.tool_call_id]
            repaired.append(message)
            continue
        if pending:
            repaired += interrupted_results(pending, started)
            pending = []
        repaired.append(message)
        if message.role == "assistant":
            pending, started = list(message.tool_calls), message.tools_started_at
    if pending:
        repaired += interrupted_results(pending, started)
    return repaired
