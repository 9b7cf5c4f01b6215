"""The runtime against the loopback fake LLM, in each of the four wire formats."""

from __future__ import annotations

import pytest

from oxydra.config.schema import ProviderEntry, RuntimeConfig
from oxydra.providers import build_reliable_provider
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.loop import AgentRuntime
from oxydra.testing.fake_llm import Call, FakeLLM, Reply
from tests.providers.conftest import FORMATS, MODELS, config_for
from tests.runtime.support import FunctionTools, Sink


async def weather(city: str) -> str:
    return f"sunny in {city}"


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_streamed_tool_round_trip_in_every_format(fmt: str, catalog: object) -> None:
    script = [
        Reply(
            text="Let me check. ",
            tool_calls=[Call(name="get_weather", arguments={"city": "Oslo"})],
            args_chunk=3,
        ),
        Reply(text="It is sunny in Oslo.", chunk=2),
    ]
    async with FakeLLM(script) as llm:
        entry = ProviderEntry(provider_type=fmt, base_url=llm.base_url, api_key="test-key")  # type: ignore[arg-type]
        config = config_for({"fake": entry})
        provider = build_reliable_provider(config, {}, catalog)  # type: ignore[arg-type]
        tools = FunctionTools()
        tools.add("get_weather", weather, required=["city"])
        rt = AgentRuntime(
            provider=provider,
            tools=tools,
            config=RuntimeConfig(),
            provider_id="fake",
            model=MODELS[fmt],
            system_prompt="Be brief.",
        )
        sink = Sink()
        outcome = await rt.run_turn(
            TurnRequest(user_id="u", session_id="s", turn_id="t", prompt="Weather in Oslo?"), sink
        )
        await provider.aclose()
        llm.assert_done()
    assert outcome.ok, outcome.detail
    assert sink.text() == "Let me check. It is sunny in Oslo."
    assert tools.calls[0][1] == {"city": "Oslo"}
    assert outcome.spend.calls == 2 and outcome.spend.total_tokens > 0
    second = llm.requests[1].json()
    assert "sunny in Oslo" in str(second)
