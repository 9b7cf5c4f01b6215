"""A strict scripted provider for deterministic runtime tests.

Each call consumes the next step: a `Response` (streamed as the items it stands for), a list
of stream items (sent as they are, e.g. ending in `ConnectionLost`), or an exception to
raise. A call with no step left fails the test, and `assert_done` fails on unused steps, so
a test states exactly the exchanges it expects. Every `Context` sent is recorded. Like a real
API, a scripted answer never reports more completion tokens than the context's
`max_output_tokens` allowed. `hold_next()` keeps the next streamed answer open (after its
first item, or `after` items) until the test lets it go, so "while a turn runs" needs no
timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

import msgspec

from oxydra.catalog import ProviderCaps
from oxydra.core.messages import Context, Message, Response, ToolCall, UsageUpdate
from oxydra.core.stream import StreamItem
from oxydra.wire.assemble import ResponseAssembler, response_items

Step = Response | list[StreamItem] | BaseException


def reply(text: str = "", *calls: ToolCall, usage: UsageUpdate | None = None) -> Response:
    """A scripted answer: text and/or tool calls."""
    return Response(
        message=Message(role="assistant", content=text or None, tool_calls=calls),
        finish_reason="tool_calls" if calls else "stop",
        usage=usage,
    )


class MockProvider:
    """Plays a script of steps; see the module docstring."""

    def __init__(
        self, steps: Sequence[Step], caps: ProviderCaps | None = None, *, item_delay: float = 0.0
    ) -> None:
        self.steps = list(steps)
        self.caps = caps or ProviderCaps(max_context_tokens=128_000, max_output_tokens=4096)
        self.contexts: list[Context] = []
        self.item_delay = item_delay
        self._holds: list[tuple[int, asyncio.Event]] = []

    def hold_next(self, after: int = 1) -> asyncio.Event:
        """Hold the next streamed answer after `after` items until the event is set."""
        event = asyncio.Event()
        self._holds.append((after, event))
        return event

    def capabilities(self) -> ProviderCaps:
        """The scripted capabilities."""
        return self.caps

    def catalog_provider_id(self) -> str:
        """A namespace of its own."""
        return "mock"

    def _next(self, context: Context) -> Step:
        self.contexts.append(context)
        if not self.steps:
            raise AssertionError(f"unexpected provider call #{len(self.contexts)}")
        step = self.steps.pop(0)
        if isinstance(step, Response) and step.usage is not None:
            step = msgspec.structs.replace(step, usage=_capped(step.usage, context))
        return step

    async def complete(self, context: Context) -> Response:
        """The next step as a whole answer."""
        step = self._next(context)
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, Response):
            return step
        assembler = ResponseAssembler()
        for item in step:
            assembler.feed(item)
        return assembler.response()

    async def stream(self, context: Context) -> AsyncGenerator[StreamItem, None]:
        """The next step as stream items."""
        step = self._next(context)
        if isinstance(step, BaseException):
            raise step
        items = response_items(step) if isinstance(step, Response) else step
        after, hold = self._holds.pop(0) if self._holds else (0, None)
        for n, item in enumerate(items, 1):
            if self.item_delay:
                await asyncio.sleep(self.item_delay)
            yield item
            if n == after and hold is not None:
                await hold.wait()

    def assert_done(self) -> None:
        """Fail if scripted steps were never used."""
        assert not self.steps, f"{len(self.steps)} scripted provider step(s) never used"


def _capped(usage: UsageUpdate, context: Context) -> UsageUpdate:
    limit, made = context.max_output_tokens, usage.completion_tokens
    if limit is None or made is None or made <= limit:
        return usage
    total = None if usage.total_tokens is None else usage.total_tokens - (made - limit)
    return msgspec.structs.replace(usage, completion_tokens=limit, total_tokens=total)
