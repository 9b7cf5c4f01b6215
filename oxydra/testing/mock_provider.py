"""A strict scripted provider for deterministic runtime tests.

Each call consumes the next step: a `Response` (streamed as the items it stands for), a list
of stream items (sent as they are, e.g. ending in `ConnectionLost`), or an exception to
raise. A call with no step left fails the test, and `assert_done` fails on unused steps, so
a test states exactly the exchanges it expects. Every `Context` sent is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

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
        return self.steps.pop(0)

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

    async def stream(self, context: Context) -> AsyncIterator[StreamItem]:
        """The next step as stream items."""
        step = self._next(context)
        if isinstance(step, BaseException):
            raise step
        items = response_items(step) if isinstance(step, Response) else step
        for item in items:
            if self.item_delay:
                await asyncio.sleep(self.item_delay)
            yield item

    def assert_done(self) -> None:
        """Fail if scripted steps were never used."""
        assert not self.steps, f"{len(self.steps)} scripted provider step(s) never used"
