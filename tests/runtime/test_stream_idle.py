"""A stream that stops sending is cut off after `timeout_secs`; a slow sink is not.

The idle clock runs only while the runtime waits for the provider's next item: time spent
delivering an item (a slow client, a channel's edit) is the runtime's, not the provider's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from oxydra.catalog import ProviderCaps
from oxydra.core.errors import ProviderTimeoutError
from oxydra.core.messages import Context, Message
from oxydra.core.stream import FinishReason, StreamItem, Text
from oxydra.runtime.calls import TurnCalls
from oxydra.runtime.decide import Limits, TurnState
from oxydra.runtime.ledger import CostLedger

GAP = 0.3


class Scripted:
    """A provider streaming `items`; `None` in the script stalls until cancelled."""

    def __init__(self, items: list[StreamItem | None]) -> None:
        self.items = items
        self.closed = False

    def capabilities(self) -> ProviderCaps:
        return ProviderCaps(max_context_tokens=8000, max_output_tokens=100)

    def catalog_provider_id(self) -> str:
        return "mock"

    async def complete(self, context: Context) -> object:
        raise AssertionError("not used")

    async def stream(self, context: Context) -> AsyncGenerator[StreamItem, None]:
        try:
            for item in self.items:
                if item is None:
                    await asyncio.Event().wait()
                else:
                    yield item
        finally:
            self.closed = True


def calls(provider: Scripted) -> TurnCalls:
    return TurnCalls(provider, CostLedger(lambda _u: 0.0), TurnState(limits=Limits()), "s", GAP)  # type: ignore[arg-type]


CONTEXT = Context(
    provider="p",  # type: ignore[arg-type]
    model="m",  # type: ignore[arg-type]
    messages=(Message(role="user", content="hi"),),
)


async def test_a_stream_that_goes_quiet_mid_answer_times_out_and_is_closed() -> None:
    provider = Scripted([Text(text="half"), None])
    got: list[StreamItem] = []

    async def sink(item: object) -> None:
        got.append(item)  # type: ignore[arg-type]

    with pytest.raises(ProviderTimeoutError, match=f"no data from the provider for {GAP}s"):
        await asyncio.wait_for(calls(provider).stream(CONTEXT, 10, sink, lambda _n: None), 30)
    assert got == [Text(text="half")]
    assert provider.closed


async def test_a_slow_sink_does_not_count_as_a_quiet_provider() -> None:
    items: list[StreamItem | None] = [Text(text=t) for t in ("a", "b", "c")]
    provider = Scripted([*items, FinishReason(reason="stop")])

    async def sink(_item: object) -> None:
        await asyncio.sleep(GAP * 1.5)

    response = await calls(provider).stream(CONTEXT, 10, sink, lambda _n: None)
    assert response.message.text == "abc"


async def test_a_steady_stream_longer_than_the_gap_is_not_cut() -> None:
    class Trickle(Scripted):
        async def stream(self, context: Context) -> AsyncGenerator[StreamItem, None]:
            for text in "abcdefgh":
                await asyncio.sleep(GAP / 3)
                yield Text(text=text)
            yield FinishReason(reason="stop")

    async def sink(_item: object) -> None:
        return None

    response = await calls(Trickle([])).stream(CONTEXT, 10, sink, lambda _n: None)
    assert response.message.text == "abcdefgh"
