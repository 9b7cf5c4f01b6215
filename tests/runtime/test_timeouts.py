"""A turn that times out says why: silence, or a rate limit whose wait outlasts the timeout."""

from __future__ import annotations

from oxydra.config.schema import RuntimeConfig
from oxydra.core.errors import RateLimitError
from oxydra.providers.reliable import ReliableProvider
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.loop import AgentRuntime
from oxydra.runtime.tokens import EstimateCounter
from oxydra.testing.mock_provider import MockProvider, reply
from tests.runtime.support import FunctionTools, Sink


def _runtime(provider: object) -> AgentRuntime:
    return AgentRuntime(
        provider=provider,
        tools=FunctionTools(),
        config=RuntimeConfig(turn_timeout_secs=1),
        provider_id="mock",
        model="m",
        system_prompt="test",
        counter=EstimateCounter(),
    )


async def test_a_429_asking_longer_than_the_turn_timeout_is_reported_as_a_rate_limit() -> None:
    limited = RateLimitError("slow down", status=429, provider="mock", retry_after=30)
    provider = ReliableProvider(MockProvider([limited, reply("never")]))
    outcome = await _runtime(provider).run_turn(
        TurnRequest(user_id="u", session_id="s", turn_id="t", prompt="hi"), Sink()
    )
    assert outcome.reason == "provider_error"
    assert "rate limited" in outcome.detail and "retry after 30s" in outcome.detail
    assert "turn_timeout_secs (1s)" in outcome.detail
    assert "no data from the provider" not in outcome.detail
