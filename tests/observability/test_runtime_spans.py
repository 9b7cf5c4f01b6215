"""The runtime's own spans: memory retrieval, summarisation, retries and fallbacks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oxydra.catalog import ProviderCaps
from oxydra.config.schema import (
    ObservabilityConfig,
    ReliabilityConfig,
    RuntimeConfig,
    Summarization,
)
from oxydra.core.errors import AuthenticationError, ProviderTransportError
from oxydra.core.log import set_span_hook
from oxydra.core.messages import Message
from oxydra.observability import Observability, SpanRecord, start_observability
from oxydra.observability._store import db_path, load_trace, open_db
from oxydra.providers.reliable import ReliableProvider, Route
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.loop import AgentRuntime
from oxydra.runtime.tokens import EstimateCounter
from oxydra.testing.mock_provider import MockProvider, reply
from tests.runtime.support import FunctionTools, Sink


@pytest.fixture
def obs(tmp_path: Path) -> Iterator[Observability]:
    observability = start_observability(ObservabilityConfig(), workspace=tmp_path, environ={})
    yield observability
    set_span_hook(None)
    observability.store.close()  # type: ignore[union-attr]


def trace(obs: Observability, turn_id: str) -> dict[str, SpanRecord]:
    obs.flush()
    db = open_db(db_path(obs.store.path.parents[1]), readonly=True)  # type: ignore[union-attr]
    spans = load_trace(db, turn_id) or []
    return {s.name: s for s in spans}


def make(provider: object, **kwargs: object) -> AgentRuntime:
    return AgentRuntime(
        provider=provider,
        tools=FunctionTools(),
        config=RuntimeConfig(**kwargs),  # type: ignore[arg-type]
        provider_id="mock",
        model="m",
        system_prompt="You are a test.",
        counter=EstimateCounter(),
    )


def turn(turn_id: str, prompt: str = "hi") -> TurnRequest:
    return TurnRequest(user_id="u", session_id="s1", turn_id=turn_id, prompt=prompt)


async def test_memory_retrieval_is_a_span_of_the_turn(obs: Observability) -> None:
    async def retrieve(user: str, session: str, query: str) -> Message | None:
        return Message(role="system", content=f"remembered for {query}")

    rt = AgentRuntime(
        provider=MockProvider([reply("ok")]),
        tools=FunctionTools(),
        config=RuntimeConfig(),
        provider_id="mock",
        model="m",
        system_prompt="s",
        counter=EstimateCounter(),
        retriever=retrieve,
    )
    assert (await rt.run_turn(turn("t1"), Sink())).ok
    spans = trace(obs, "t1")
    memory = spans["search_memory memory"]
    assert memory.parent_id == spans["invoke_agent default"].span_id
    assert memory.attrs["gen_ai.operation.name"] == "search_memory"
    assert memory.attrs["oxydra.found"] is True


async def test_summarisation_is_a_span_with_its_model(obs: Observability) -> None:
    answers = [reply("answer " + "z" * 3000) for _ in range(4)]
    small = ProviderCaps(max_context_tokens=8000, max_output_tokens=200)
    provider = MockProvider([*answers, reply("SUMMARY"), reply("fine")], small)
    rt = make(provider, summarization=Summarization(min_turns=4, target_ratio=0.3))
    for i in range(4):
        assert (await rt.run_turn(turn(f"t{i}", f"question {i} " + "q" * 3000), Sink())).ok
    assert (await rt.run_turn(turn("last", "last"), Sink())).ok
    summary = trace(obs, "last")["oxydra.summarise m"]
    assert summary.attrs["oxydra.by_model"] is True and summary.attrs["oxydra.messages"] > 0


async def test_retries_and_a_fallback_are_events_and_the_answering_model_is_named(
    obs: Observability,
) -> None:
    async def no_wait(_delay: float) -> None:
        return None

    primary = MockProvider(
        [
            ProviderTransportError("reset", provider="mock"),
            AuthenticationError("bad key", status=401, provider="mock"),
        ]
    )
    backup = MockProvider([reply("from the backup")])
    reliable = ReliableProvider(
        primary,
        ReliabilityConfig(max_attempts=3),
        fallbacks=[Route(backup, name="backup", model="m2")],
        sleep=no_wait,
    )
    rt = make(reliable)
    assert (await rt.run_turn(turn("t1"), Sink())).ok
    chat = trace(obs, "t1")["chat m"]
    assert [e.name for e in chat.events] == ["retry", "fallback"]
    assert chat.events[1].attrs["model"] == "m2"
    assert chat.attrs["gen_ai.request.model"] == "m"
    assert chat.attrs["gen_ai.response.model"] == "m2"
