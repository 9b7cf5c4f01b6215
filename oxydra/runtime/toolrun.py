"""Running a model's tool calls: read-only ones together, the rest one at a time, in order.

Rules:
1. Contiguous read-only calls form a batch that runs concurrently (`asyncio.gather`).
2. A side-effecting or privileged call (or an unknown one) first flushes the pending batch,
   then runs alone.
3. Results go back in the order the model asked, whatever order they finished in.
4. Each call is bounded by `turn_timeout_secs`, or by the tool's own longer limit (a
   delegation, a long shell command); a timeout is a result the model reads, not a failure
   of the turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

from oxydra.core.messages import FunctionDecl, Message, ToolCall
from oxydra.core.provenance import Label
from oxydra.runtime.api import Approver


class ToolScope(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: passed with every call, never stored on shared objects.

    `taint` is the label of the model's context in the step that made the calls.
    """

    user_id: str
    session_id: str
    channel: str = "tui"
    provider: str = ""
    model: str = ""
    taint: Label | None = None


class ToolOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A call's result text; `feedback` marks the model's own mistake (bad args, no such tool).

    `label` is the result's provenance (None: trusted).
    """

    text: str
    ok: bool = True
    feedback: bool = False
    label: Label | None = None


class ToolExecutor(Protocol):
    """The tool registry as the runtime sees it."""

    def schemas(self) -> list[FunctionDecl]:
        """The tools offered to the model this turn."""
        ...

    def is_read_only(self, name: str) -> bool:
        """Whether a tool may run concurrently with other read-only tools."""
        ...

    async def execute(
        self, call: ToolCall, scope: ToolScope, approver: Approver | None
    ) -> ToolOutcome:
        """Run one call through the registry's policy."""
        ...


async def run_calls(
    calls: Sequence[ToolCall],
    executor: ToolExecutor,
    scope: ToolScope,
    approver: Approver | None,
    timeout_secs: float,
) -> list[tuple[ToolCall, ToolOutcome]]:
    """Run calls by the scheduling rules; results in call order."""
    results: list[tuple[ToolCall, ToolOutcome]] = []
    batch: list[ToolCall] = []

    async def one(call: ToolCall) -> ToolOutcome:
        own = getattr(executor, "timeout_for", None)
        limit = max(timeout_secs, (own(call.name) if own else None) or 0)
        try:
            async with asyncio.timeout(limit):
                return await executor.execute(call, scope, approver)
        except TimeoutError:
            return ToolOutcome(text=f"Tool {call.name} timed out after {limit:g}s", ok=False)

    async def flush() -> None:
        outcomes = await asyncio.gather(*(one(c) for c in batch))
        results.extend(zip(batch, outcomes, strict=True))
        batch.clear()

    for call in calls:
        if executor.is_read_only(call.name):
            batch.append(call)
            continue
        await flush()
        results.append((call, await one(call)))
    await flush()
    return results


def result_messages(results: Sequence[tuple[ToolCall, ToolOutcome]]) -> list[Message]:
    """Tool results as history messages."""
    return [
        Message(role="tool", tool_call_id=c.id, name=c.name, content=o.text, label=o.label)
        for c, o in results
    ]


async def with_heartbeat(
    work: Awaitable[list[tuple[ToolCall, ToolOutcome]]],
    beat: Callable[[int], Awaitable[None]],
    every_secs: float = 5.0,
) -> list[tuple[ToolCall, ToolOutcome]]:
    """Await `work`, calling `beat(elapsed_secs)` every `every_secs` while it runs."""
    task = asyncio.ensure_future(work)
    elapsed = 0.0
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every_secs)
            if done:
                return task.result()
            elapsed += every_secs
            await beat(int(elapsed))
    finally:
        if not task.done():
            task.cancel()
