"""Token counting never stalls other sessions, and hopeless input is refused by its size."""

from __future__ import annotations

import asyncio
import threading

import pytest

from oxydra.catalog import ProviderCaps
from oxydra.config.schema import RuntimeConfig
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.budget import MAX_TOKEN_BYTES
from oxydra.runtime.loop import AgentRuntime
from oxydra.runtime.tokens import load_counter
from oxydra.testing.mock_provider import MockProvider, reply
from tests.runtime.support import FunctionTools, Sink


class GatedCounter:
    """Counts like the estimate, but the first big count waits until the test opens the gate.

    Were counting done on the event loop, the canary below could never run while it waits:
    the test would then fail on the gate's timeout, not on a timing.
    """

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.waited_out = False
        self.calls = 0

    def count(self, text: str) -> int:
        self.calls += 1
        if len(text) > 10_000 and not self.gate.is_set():
            self.waited_out = not self.gate.wait(60)
        return (len(text.encode()) + 3) // 4


def _runtime(provider: MockProvider, counter: object) -> AgentRuntime:
    return AgentRuntime(
        provider=provider,
        tools=FunctionTools(),
        config=RuntimeConfig(),
        provider_id="mock",
        model="m",
        system_prompt="test",
        counter=counter,  # type: ignore[arg-type]
    )


def _turn(session: str, prompt: str) -> TurnRequest:
    return TurnRequest(user_id="u", session_id=session, turn_id=session, prompt=prompt)


async def test_a_canary_session_finishes_while_a_huge_prompt_is_being_counted() -> None:
    counter = GatedCounter()
    caps = ProviderCaps(max_context_tokens=200_000, max_output_tokens=1_000)
    rt = _runtime(MockProvider([reply("canary ok"), reply("big ok")], caps), counter)
    big = asyncio.create_task(rt.run_turn(_turn("big", "word " * 200_000), Sink()))
    async with asyncio.timeout(30):  # a bound on a hang, not a timing
        while counter.calls == 0:  # the big turn is counting (in a thread, we hope)
            await asyncio.sleep(0.01)
    canary = await asyncio.wait_for(rt.run_turn(_turn("canary", "ping"), Sink()), 30)
    assert canary.ok and canary.response is not None
    assert not big.done(), "the canary finished while the big prompt was still being counted"
    counter.gate.set()
    outcome = await big
    assert not counter.waited_out
    assert outcome.ok or outcome.reason == "context_too_small"


class Forbidden:
    def count(self, text: str) -> int:
        raise AssertionError("a hopeless prompt must be refused before counting")


async def test_a_prompt_too_big_by_its_bytes_is_refused_without_counting_or_storing() -> None:
    caps = ProviderCaps(max_context_tokens=8_000, max_output_tokens=200)
    rt = _runtime(MockProvider([reply("still fine")], caps), Forbidden())
    outcome = await rt.run_turn(_turn("s", "x" * (8_000 * MAX_TOKEN_BYTES + 1)), Sink())
    assert outcome.reason == "context_too_small"
    assert "bytes" in outcome.detail and "8,000 tokens" in outcome.detail
    conversation = await rt.conversation("s", "u")
    assert conversation.history == [], "the refused prompt never entered the history"


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_no_token_is_longer_than_max_token_bytes(encoding: str) -> None:
    counter = load_counter(encoding)
    ranks = getattr(getattr(counter, "_encoding", None), "_mergeable_ranks", None)
    if ranks is None:
        pytest.skip("the tokenizers extra is not installed")
    assert max(len(token) for token in ranks) <= MAX_TOKEN_BYTES
