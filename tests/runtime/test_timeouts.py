"""A rate limit whose Retry-After outlasts the turn's patience is reported as what it is."""

from __future__ import annotations

from oxydra.config.schema import RuntimeConfig
from oxydra.core.errors import RateLimitError
from oxydra.providers.reliable import ReliableProvider
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.loop import AgentRuntime
from oxydra.runtime.tokens import EstimateCounter
from oxydra.testing.mock_provider import MockProvider, reply
from tests.runtime.support import FunctionTools, Sink


async def test_a_429_asking_longer_than_turn_timeout_is_reported_as_a_rate_limit() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    limited = RateLimitError("slow down", status=429, provider="mock", retry_after=30)
    provider = ReliableProvider(
        MockProvider([limited, reply("never")]), sleep=sleep, attempt_timeout=5
    )
    rt = AgentRuntime(
        provider=provider,
        tools=FunctionTools(),
        config=RuntimeConfig(turn_timeout_secs=5),
        provider_id="mock",
        model="m",
        system_prompt="test",
        counter=EstimateCounter(),
    )
    outcome = await rt.run_turn(
        TurnRequest(user_id="u", session_id="s", turn_id="t", prompt="hi"), Sink()
    )
    assert outcome.reason == "provider_error"
    assert "HTTP 429" in outcome.detail and "rate limited" in outcome.detail
    assert "retry after 30s" in outcome.detail and "turn_timeout_secs (5s)" in outcome.detail
    assert "no data from the provider" not in outcome.detail
    assert slept == [], "no pointless wait of 30 s"
