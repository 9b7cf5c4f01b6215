"""Running a model's tool calls: read-only ones together, the rest one at a time, in order.

Rules:
1. Contiguous read-only calls form a batch that runs concurrently (`asyncio.gather`).
2. A side-effecting or privileged call (or an unknown one) first flushes the pending batch,
   then runs alone.
3. Results go back in the order the model asked, whatever order they finished in.
4. Each call runs with the turn's one `ToolExecutionContext` (its id filled in per call);
   its time limit and approval are the registry's policy, enforced there and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from oxydra.core.messages import FunctionDecl, Message, TextPart, ToolCall
from oxydra.tools import FileBackend, ToolExecutionContext, ToolResult


class ToolExecutor(Protocol):
    """The tool registry as the runtime sees it."""

    def schemas(self) -> list[FunctionDecl]:
        """The tools offered to the model this turn."""
        ...

    def is_read_only(self, name: str) -> bool:
        """Whether a tool may run concurrently with other read-only tools."""
        ...

    def workspace_for(self, user_id: str) -> FileBackend:
        """The file backend a user's calls work in."""
        ...

    def prepare(self, name: str) -> None:
        """The model started calling `name`: warm what the call will need."""
        ...

    async def execute(self, call: ToolCall, ctx: ToolExecutionContext) -> ToolResult:
        """Run one call through the registry's policy; failures come back as results."""
        ...


async def run_calls(
    calls: Sequence[ToolCall], executor: ToolExecutor, ctx: ToolExecutionContext
) -> list[tuple[ToolCall, ToolResult]]:
    """Run calls by the scheduling rules; results in call order."""
    results: list[tuple[ToolCall, ToolResult]] = []
    batch: list[ToolCall] = []

    async def one(call: ToolCall) -> ToolResult:
        return await executor.execute(call, ctx)

    async def flush() -> None:
        if len(batch) == 1:  # the usual step: one call, no task to gather it in
            outcomes = [await one(batch[0])]
        else:
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


def result_messages(results: Sequence[tuple[ToolCall, ToolResult]]) -> list[Message]:
    """Tool results as history messages."""
    return [
        Message(
            role="tool",
            tool_call_id=c.id,
            name=c.name,
            content=(TextPart(text=o.text), *o.media) if o.media else o.text,
            label=o.label,
        )
        for c, o in results
    ]


async def with_heartbeat(
    work: Awaitable[list[tuple[ToolCall, ToolResult]]],
    beat: Callable[[int], Awaitable[None]],
    every_secs: float = 5.0,
) -> list[tuple[ToolCall, ToolResult]]:
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
