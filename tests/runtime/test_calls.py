"""Budgets that add up: every call a turn causes is charged to it, and its caps hold.

A parent turn with a money cap runs a rolling summary, delegates to a child agent that
spends most of what is left, and answers; the turn's spend is the sum of all of it, and
never passes the cap.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oxydra.catalog import ProviderCaps
from oxydra.config.schema import AgentDefinition, RuntimeConfig, Summarization
from oxydra.core.messages import Context, Message, ToolCall, UsageUpdate
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.calls import MIN_OUTPUT_TOKENS, TurnCalls
from oxydra.runtime.decide import Limits, Stop, TurnState
from oxydra.runtime.delegation import delegate_tool
from oxydra.runtime.ledger import CostLedger
from oxydra.runtime.loop import AgentRuntime
from oxydra.runtime.registry_tools import RegistryExecutor
from oxydra.runtime.tokens import EstimateCounter
from oxydra.security import Workspace
from oxydra.testing.mock_provider import MockProvider, reply
from oxydra.tools import LocalFileBackend, ToolRegistry
from tests.runtime.support import Sink

PROMPT_PRICE, COMPLETION_PRICE = 10e-6, 20e-6  # USD per token: $10 and $20 per million


def price(usage: UsageUpdate) -> float:
    return (usage.prompt_tokens or 0) * PROMPT_PRICE + (usage.completion_tokens or 0) * (
        COMPLETION_PRICE
    )


def used(prompt: int, completion: int) -> UsageUpdate:
    return UsageUpdate(prompt_tokens=prompt, completion_tokens=completion)


def cost(prompt: int, completion: int) -> float:
    return price(used(prompt, completion))


# The parent's window is small, so a long session is summarised; the child may write a lot.
PARENT_CAPS = ProviderCaps(max_context_tokens=8000, max_output_tokens=200)
CHILD_CAPS = ProviderCaps(max_context_tokens=128_000, max_output_tokens=100_000)


class Family:
    """A parent runtime whose one tool delegates to a child runtime on its own provider."""

    def __init__(self, tmp_path: Path, parent_steps: list, child_steps: list) -> None:
        for sub in ("shared", "tmp", "vault"):
            (tmp_path / sub).mkdir(exist_ok=True)
        backend = LocalFileBackend(Workspace.for_user(tmp_path))
        self.parent_provider = MockProvider(parent_steps, PARENT_CAPS)
        self.child_provider = MockProvider(child_steps, CHILD_CAPS)
        self.ledger = CostLedger(price)
        registry = ToolRegistry()
        agents = {"helper": AgentDefinition(system_prompt="You help.")}
        registry.register(delegate_tool(agents, self._child, lambda: frozenset()))
        config = RuntimeConfig(summarization=Summarization(min_turns=4, target_ratio=0.3))
        self.runtime = AgentRuntime(
            provider=self.parent_provider,
            tools=RegistryExecutor(registry, lambda _user: backend),
            config=config,
            provider_id="mock",
            model="m",
            system_prompt="You are the parent.",
            ledger=self.ledger,
            counter=EstimateCounter(),
        )
        self.child_ledger = CostLedger(price)

    def _child(
        self, _name: str, _agent: AgentDefinition, prompt: str, _scope: frozenset[str]
    ) -> AgentRuntime:
        return AgentRuntime(
            provider=self.child_provider,
            tools=RegistryExecutor(ToolRegistry(), lambda _user: None),  # type: ignore[arg-type,return-value]
            config=RuntimeConfig(),
            provider_id="mock",
            model="child",
            system_prompt=prompt,
            ledger=self.child_ledger,
            counter=EstimateCounter(),
        )


def turn(prompt: str, **limits: object) -> TurnRequest:
    return TurnRequest(user_id="u", session_id="s1", turn_id="t", prompt=prompt, **limits)  # type: ignore[arg-type]


DELEGATE = ToolCall(
    id="d1", name="delegate_to_agent", arguments={"agent_name": "helper", "goal": "g"}
)


class TestTheCapHolds:
    async def test_summary_and_child_are_charged_and_the_cap_holds_to_the_cent(
        self, tmp_path: Path
    ) -> None:
        history = [reply("answer " + "z" * 3000) for _ in range(4)]
        parent = [
            *history,
            reply("SUMMARY of the early turns", usage=used(3000, 150)),
            reply("", DELEGATE, usage=used(1500, 40)),
            # no third call: the child leaves too little for one
        ]
        child = [reply("child report", usage=used(5, 100_000))]  # $2 if nothing capped it
        family = Family(tmp_path, parent, child)
        rt = family.runtime
        for i in range(4):  # earlier turns: history long enough to be summarised
            assert (await rt.run_turn(turn(f"question {i} " + "q" * 3000), Sink())).ok
        before = family.ledger.session("s1").cost_usd
        sink = Sink()
        outcome = await rt.run_turn(turn("last", max_cost_usd=0.20), sink)

        assert "Summarising older history" in "".join(sink.progress()), outcome
        family.parent_provider.assert_done()
        family.child_provider.assert_done()
        summary_ctx, first_ctx = family.parent_provider.contexts[-2:]
        (child_ctx,) = family.child_provider.contexts
        charged = [
            (summary_ctx, 3000, 150),
            (first_ctx, 1500, 40),
            (child_ctx, 5, 100_000),
        ]
        # Each call's output was capped to what the money left could buy ...
        expected = 0.0
        for ctx, prompt, completion in charged:
            assert ctx.max_output_tokens is not None
            expected += cost(prompt, min(completion, ctx.max_output_tokens))
        # ... so the turn's spend is the sum of all four calls, summary and child included,
        # and it holds the cap to the cent.
        spend = outcome.spend
        assert spend.calls == 3 and spend.cost_usd == pytest.approx(expected)
        assert spend.cost_usd <= 0.20 and round(spend.cost_usd, 2) == 0.20
        assert family.ledger.session("s1").cost_usd - before == pytest.approx(expected)
        child_cost = cost(5, child_ctx.max_output_tokens)
        assert child_cost > spend.cost_usd / 2, "the child spent most of the turn's money"
        assert outcome.reason == "max_cost"

    async def test_a_child_gets_only_what_the_parent_has_left(self, tmp_path: Path) -> None:
        parent = [reply("", DELEGATE, usage=used(100, 100)), reply("done", usage=used(10, 10))]
        child = [reply("report", usage=used(5, 100))]
        family = Family(tmp_path, parent, child)
        outcome = await family.runtime.run_turn(turn("go", max_cost_usd=0.05), Sink())
        (child_ctx,) = family.child_provider.contexts
        left = 0.05 - cost(100, 100)
        assert child_ctx.max_output_tokens is not None
        assert child_ctx.max_output_tokens * COMPLETION_PRICE <= left
        assert outcome.spend.cost_usd == pytest.approx(cost(100, 100) + cost(5, 100) + cost(10, 10))
        assert outcome.ok

    async def test_a_child_that_spends_everything_stops_the_parent(self, tmp_path: Path) -> None:
        parent = [reply("", DELEGATE, usage=used(100, 50))]  # no second parent call is made
        child = [reply("report", usage=used(5, 100_000))]
        family = Family(tmp_path, parent, child)
        outcome = await family.runtime.run_turn(turn("go", max_cost_usd=0.05), Sink())
        assert outcome.reason == "max_cost"
        assert round(outcome.spend.cost_usd, 2) <= 0.05
        family.parent_provider.assert_done()


class TestAdmission:
    def calls(self, limits: Limits, spent: float = 0.0, tokens: int = 0) -> TurnCalls:
        state = TurnState(limits=limits)
        state.charge(UsageUpdate(prompt_tokens=tokens, completion_tokens=0), spent)
        return TurnCalls(MockProvider([]), CostLedger(price), state, "s", 10.0)

    def context(self, max_output: int | None = 1000) -> Context:
        return Context(
            provider="p",  # type: ignore[arg-type]
            model="m",  # type: ignore[arg-type]
            messages=(Message(role="user", content="hi"),),
            max_output_tokens=max_output,
        )

    def test_without_limits_the_context_is_untouched(self) -> None:
        ctx = self.context()
        assert self.calls(Limits()).admit(ctx, 10) is ctx

    def test_output_is_capped_by_the_money_left_after_the_prompt(self) -> None:
        admitted = self.calls(Limits(max_cost_usd=0.05), spent=0.03).admit(self.context(), 100)
        assert not isinstance(admitted, Stop)
        # $0.02 left, $0.001 for 100 prompt tokens, $0.019 buys 950 completion tokens
        assert admitted.max_output_tokens == 950

    def test_output_is_capped_by_the_tokens_left(self) -> None:
        admitted = self.calls(Limits(max_tokens=500), tokens=300).admit(self.context(), 100)
        assert not isinstance(admitted, Stop) and admitted.max_output_tokens == 100

    def test_a_call_that_could_say_almost_nothing_does_not_start(self) -> None:
        calls = self.calls(Limits(max_tokens=500), tokens=400)
        stop = calls.admit(self.context(), 100 - MIN_OUTPUT_TOKENS + 1)
        assert isinstance(stop, Stop) and stop.reason == "max_tokens"
