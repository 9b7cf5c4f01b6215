"""The turn loop with a scripted provider: limits, self-correction, scheduling, cancel."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest

from oxydra.config.schema import RuntimeConfig, Summarization
from oxydra.core.errors import ProviderTransportError
from oxydra.core.messages import Message, ToolCall, UsageUpdate
from oxydra.core.stream import ConnectionLost, Text
from oxydra.providers import ReliableProvider
from oxydra.runtime.api import TurnRequest
from oxydra.runtime.conversation import repair
from oxydra.runtime.loop import AgentRuntime
from oxydra.runtime.registry_tools import RegistryExecutor
from oxydra.runtime.tokens import EstimateCounter
from oxydra.security import Workspace
from oxydra.testing.mock_provider import MockProvider, reply
from oxydra.tools import LocalFileBackend, ToolRegistry, tool
from tests.runtime.support import FunctionTools, Sink


def call(name: str, i: int = 0, **args: Any) -> ToolCall:
    return ToolCall(id=f"{name}-{i}", name=name, arguments=args)


async def _no_sleep(_delay: float) -> None:
    return None


def runtime(
    provider: MockProvider, tools: FunctionTools | None = None, **config: Any
) -> AgentRuntime:
    return AgentRuntime(
        provider=provider,
        tools=tools or FunctionTools(),
        config=RuntimeConfig(**config),
        provider_id="mock",
        model="m",
        system_prompt="You are a test.",
        counter=EstimateCounter(),
    )


def turn(prompt: str = "hi", session: str = "s1") -> TurnRequest:
    return TurnRequest(user_id="u", session_id=session, turn_id="t", prompt=prompt)


def assert_consistent(history: list[Message]) -> None:
    assert repair(list(history)) == list(history), "a tool call is left without a result"


async def echo(text: str = "") -> str:
    return f"echo:{text}"


class TestTurns:
    async def test_a_text_answer_completes_the_turn(self) -> None:
        provider = MockProvider([reply("Hello there")])
        rt, sink = runtime(provider), Sink()
        outcome = await rt.run_turn(turn(), sink)
        assert outcome.ok and outcome.response is not None
        assert sink.text() == "Hello there"
        assert sink.progress() == ["[1/100] Calling provider"]
        history = (await rt.conversation("s1", "u")).history
        assert [m.role for m in history] == ["user", "assistant"]
        assert provider.contexts[0].messages[0].role == "system"
        provider.assert_done()

    async def test_a_tool_round_trip_feeds_the_result_back(self) -> None:
        tools = FunctionTools()
        tools.add("echo", echo, required=["text"])
        provider = MockProvider([reply("", call("echo", text="x")), reply("done")])
        rt, sink = runtime(provider, tools), Sink()
        outcome = await rt.run_turn(turn(), sink)
        assert outcome.ok
        sent = provider.contexts[1].messages
        assert sent[-1].role == "tool" and sent[-1].content == "echo:x"
        assert "[1/100] Executing tools: echo" in sink.progress()
        assert tools.calls[0][2].session_id == "s1" and tools.calls[0][2].user_id == "u"

    async def test_memory_is_retrieved_once_per_turn_not_per_model_call(self) -> None:
        asked: list[str] = []

        async def retriever(user: str, session: str, query: str) -> Message:
            asked.append(query)
            return Message(role="system", content=f"remembered for {query}")

        tools = FunctionTools()
        tools.add("echo", echo, required=["text"])
        provider = MockProvider([reply("", call("echo", text="x")), reply("done"), reply("ok")])
        rt = runtime(provider, tools)
        rt.retriever = retriever
        assert (await rt.run_turn(turn("what did I say?"), Sink())).ok
        assert asked == ["what did I say?"]
        for context in provider.contexts:  # both calls of the turn carry the memory
            assert "remembered for what did I say?" in [m.text for m in context.messages]
        assert (await rt.run_turn(turn("next question"), Sink())).ok
        assert asked == ["what did I say?", "next question"]

    async def test_the_session_continues_on_the_next_turn(self) -> None:
        provider = MockProvider([reply("one"), reply("two")])
        rt = runtime(provider)
        await rt.run_turn(turn("first"), Sink())
        await rt.run_turn(turn("second"), Sink())
        texts = [m.text for m in provider.contexts[1].messages]
        assert texts == ["You are a test.", "first", "one", "second"]


class TestLimits:
    async def test_a_model_calling_tools_forever_is_stopped_by_max_turns(self) -> None:
        tools = FunctionTools()
        tools.add("echo", echo)
        provider = MockProvider([reply("", call("echo", i, text=str(i))) for i in range(4)])
        rt = runtime(provider, tools, max_turns=4)
        outcome = await rt.run_turn(turn(), Sink())
        assert outcome.reason == "max_turns"
        assert_consistent((await rt.conversation("s1", "u")).history)

    async def test_the_same_call_repeated_is_broken_off(self) -> None:
        tools = FunctionTools()
        tools.add("echo", echo)
        provider = MockProvider([reply("", call("echo", i, text="same")) for i in range(3)])
        rt = runtime(provider, tools, max_repeated_tool_calls=2)
        outcome = await rt.run_turn(turn(), Sink())
        assert outcome.reason == "repeated_tool_call" and len(tools.calls) == 2
        assert_consistent((await rt.conversation("s1", "u")).history)

    async def test_token_budget_stops_a_turn_that_wants_more(self) -> None:
        tools = FunctionTools()
        tools.add("echo", echo)
        big = UsageUpdate(prompt_tokens=900, completion_tokens=200, total_tokens=1100)
        provider = MockProvider([reply("", call("echo", text="a"), usage=big)])
        outcome = await runtime(provider, tools, max_tokens=1000).run_turn(turn(), Sink())
        assert outcome.reason == "max_tokens" and outcome.spend.total_tokens == 1100

    async def test_money_budget_uses_the_ledger_prices(self) -> None:
        tools = FunctionTools()
        tools.add("echo", echo)
        usage = UsageUpdate(prompt_tokens=1000, completion_tokens=1000, total_tokens=2000)
        provider = MockProvider([reply("", call("echo", text="a"), usage=usage)])
        rt = runtime(provider, tools, max_cost_usd=0.001)
        rt.ledger._price = lambda u: (u.total_tokens or 0) * 1e-6
        outcome = await rt.run_turn(turn(), Sink())
        assert outcome.reason == "max_cost"
        assert rt.ledger.session("s1").cost_usd == pytest.approx(0.002)

    async def test_the_whole_turn_deadline_is_enforced(self) -> None:
        tools = FunctionTools()

        async def slow() -> str:
            await asyncio.sleep(30)
            return "late"

        tools.add("slow", slow)
        provider = MockProvider([reply("", call("slow"))])
        rt = runtime(provider, tools, turn_deadline_secs=1, turn_timeout_secs=60)
        outcome = await rt.run_turn(turn(), Sink())
        assert outcome.reason == "deadline"
        assert_consistent((await rt.conversation("s1", "u")).history)


class TestRequestLimits:
    async def test_a_requests_own_max_turns_stops_the_turn_early(self) -> None:
        tools = FunctionTools()
        tools.add("echo", echo)
        provider = MockProvider([reply("", call("echo", i, text=str(i))) for i in range(3)])
        rt, sink = runtime(provider, tools, max_turns=100), Sink()
        request = msgspec.structs.replace(turn(), max_turns=2)
        outcome = await rt.run_turn(request, sink)
        assert outcome.reason == "max_turns" and len(provider.contexts) == 2
        assert sink.progress()[0] == "[1/2] Calling provider"
        assert_consistent((await rt.conversation("s1", "u")).history)

    async def test_a_requests_own_money_limit_applies_without_a_runtime_one(self) -> None:
        tools = FunctionTools()
        tools.add("echo", echo)
        usage = UsageUpdate(prompt_tokens=1000, completion_tokens=1000, total_tokens=2000)
        provider = MockProvider([reply("", call("echo", text="a"), usage=usage)])
        rt = runtime(provider, tools)
        rt.ledger._price = lambda u: (u.total_tokens or 0) * 1e-6
        request = msgspec.structs.replace(turn(), max_cost_usd=0.001)
        outcome = await rt.run_turn(request, Sink())
        assert outcome.reason == "max_cost"

    async def test_a_request_cannot_widen_the_runtime_limits(self) -> None:
        tools = FunctionTools()
        tools.add("echo", echo)
        provider = MockProvider([reply("", call("echo", i, text=str(i))) for i in range(3)])
        rt = runtime(provider, tools, max_turns=1)
        outcome = await rt.run_turn(msgspec.structs.replace(turn(), max_turns=50), Sink())
        assert outcome.reason == "max_turns" and len(provider.contexts) == 1


class TestSelfCorrection:
    async def test_invalid_json_arguments_are_fed_back_and_corrected(self) -> None:
        tools = FunctionTools()
        tools.add("echo", echo, required=["text"])
        broken = ToolCall(id="b", name="echo", invalid_arguments='{"text": "x"')
        provider = MockProvider([reply("", broken), reply("", call("echo", text="x")), reply("ok")])
        outcome = await runtime(provider, tools).run_turn(turn(), Sink())
        assert outcome.ok
        feedback = provider.contexts[1].messages[-1]
        assert feedback.role == "tool" and "not a JSON object" in feedback.text

    async def test_an_unknown_tool_is_fed_back(self) -> None:
        tools = FunctionTools()
        tools.add("echo", echo)
        provider = MockProvider([reply("", call("teleport")), reply("sorry")])
        outcome = await runtime(provider, tools).run_turn(turn(), Sink())
        assert outcome.ok and "unknown tool 'teleport'" in provider.contexts[1].messages[-1].text

    async def test_endless_mistakes_are_bounded(self) -> None:
        provider = MockProvider([reply("", call("nope", i)) for i in range(3)])
        outcome = await runtime(provider, max_tool_retries=2).run_turn(turn(), Sink())
        assert outcome.reason == "tool_retries"

    async def test_empty_replies_are_nudged_then_reported(self) -> None:
        provider = MockProvider([reply(""), reply(""), reply("")])
        outcome = await runtime(provider, max_tool_retries=2).run_turn(turn(), Sink())
        assert outcome.reason == "empty_reply"
        assert "empty" in provider.contexts[1].messages[-1].text


class TestScheduling:
    async def test_read_only_calls_run_together(self) -> None:
        started = {"a": asyncio.Event(), "b": asyncio.Event()}
        tools = FunctionTools()

        def waiter(me: str, other: str) -> Any:
            async def fn() -> str:
                started[me].set()
                try:
                    await asyncio.wait_for(started[other].wait(), 5)
                except TimeoutError:
                    return "alone"
                return "together"

            return fn

        tools.add("a", waiter("a", "b"))
        tools.add("b", waiter("b", "a"))
        provider = MockProvider([reply("", call("a"), call("b")), reply("ok")])
        await runtime(provider, tools).run_turn(turn(), Sink())
        results = [m.text for m in provider.contexts[1].messages if m.role == "tool"]
        assert results == ["together", "together"]

    async def test_side_effects_run_alone_in_order_and_results_keep_call_order(self) -> None:
        order: list[str] = []
        tools = FunctionTools()

        def recorder(name: str, delay: float) -> Any:
            async def fn() -> str:
                order.append(f"start {name}")
                await asyncio.sleep(delay)
                order.append(f"end {name}")
                return name

            return fn

        tools.add("r1", recorder("r1", 0.05))
        tools.add("w", recorder("w", 0), read_only=False)
        tools.add("r2", recorder("r2", 0))
        provider = MockProvider([reply("", call("r1"), call("w"), call("r2")), reply("ok")])
        await runtime(provider, tools).run_turn(turn(), Sink())
        assert (
            order.index("end r1")
            < order.index("start w")
            < order.index("end w")
            < order.index("start r2")
        )
        assert [m.text for m in provider.contexts[1].messages if m.role == "tool"] == [
            "r1",
            "w",
            "r2",
        ]

    async def test_a_tool_past_its_timeout_is_reported_to_the_model(self, tmp_path: Path) -> None:
        stopped = asyncio.Event()

        @tool(timeout=0.05)
        async def stuck() -> str:
            """Never finishes."""
            try:
                await asyncio.Event().wait()
            finally:
                stopped.set()
            return "never"

        registry = ToolRegistry()
        registry.register(stuck)
        for sub in ("shared", "tmp", "vault"):
            (tmp_path / sub).mkdir()
        backend = LocalFileBackend(Workspace.for_user(tmp_path))
        executor = RegistryExecutor(registry, lambda _user: backend)
        provider = MockProvider([reply("", call("stuck")), reply("ok")])
        rt = runtime(provider)
        rt.tools = executor
        assert (await rt.run_turn(turn(), Sink())).ok
        assert "did not finish within 0.05 seconds" in provider.contexts[1].messages[-1].text
        assert stopped.is_set()


class TestFailures:
    async def test_a_stream_slow_to_start_is_asked_again_by_the_route(self) -> None:
        from oxydra.providers import ReliableProvider

        async def no_sleep(_: float) -> None:
            return None

        class SlowFirst(MockProvider):
            async def stream(self, context: Any) -> Any:
                if not self.contexts:
                    self.contexts.append(context)
                    await asyncio.sleep(30)
                async for item in super().stream(context):
                    yield item

        slow = SlowFirst([reply("second try")])
        provider = ReliableProvider(slow, sleep=no_sleep, attempt_timeout=0.1)
        rt = runtime(provider, turn_timeout_secs=1)  # type: ignore[arg-type]
        outcome = await rt.run_turn(turn(), Sink())
        assert outcome.reason == "completed"
        assert outcome.response is not None and outcome.response.message.text == "second try"

    async def test_a_whole_answer_past_its_timeout_is_a_provider_failure_not_the_deadline(
        self,
    ) -> None:
        from oxydra.catalog import ProviderCaps
        from oxydra.providers import ReliableProvider

        async def no_sleep(_: float) -> None:
            return None

        class Stuck(MockProvider):
            async def complete(self, context: Any) -> Any:
                self.contexts.append(context)
                await asyncio.sleep(30)

        stuck = Stuck([], ProviderCaps(streaming=False, max_context_tokens=8000))
        provider = ReliableProvider(stuck, sleep=no_sleep, attempt_timeout=0.05)
        outcome = await runtime(provider, turn_timeout_secs=1).run_turn(turn(), Sink())  # type: ignore[arg-type]
        assert outcome.reason == "provider_error"
        assert "turn_timeout_secs" in outcome.detail
        assert len(stuck.contexts) == 3  # retried up to max_attempts

    async def test_cancel_stops_a_running_tool_promptly_and_keeps_history_valid(self) -> None:
        tools = FunctionTools()
        entered = asyncio.Event()

        async def forever() -> str:
            entered.set()
            await asyncio.sleep(60)
            return "never"

        tools.add("forever", forever)
        rt = runtime(MockProvider([reply("", call("forever"))]), tools)
        task = asyncio.create_task(rt.run_turn(turn(), Sink()))
        await asyncio.wait_for(entered.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)
        history = (await rt.conversation("s1", "u")).history
        assert_consistent(history)
        assert "cancelled" in history[-1].text

    async def test_cancel_mid_stream_stops_the_stream(self) -> None:
        items = [Text(text=str(i)) for i in range(1000)]
        rt = runtime(MockProvider([items], item_delay=0.01))
        sink = Sink()
        task = asyncio.create_task(rt.run_turn(turn(), sink))
        async with asyncio.timeout(20):
            while len(sink.items) < 5:
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)
        assert len(sink.items) < 100

    async def test_a_stream_lost_before_output_is_answered_whole_by_the_provider(self) -> None:
        provider = MockProvider([[ConnectionLost(message="reset")], reply("recovered")])
        reliable = ReliableProvider(provider, sleep=_no_sleep)
        outcome = await runtime(reliable).run_turn(turn(), Sink())  # type: ignore[arg-type]
        assert outcome.ok and outcome.response is not None
        assert outcome.response.message.text == "recovered"
        provider.assert_done()  # one stream and one whole answer: the loop never retries

    async def test_the_loop_itself_does_not_retry_a_lost_stream(self) -> None:
        provider = MockProvider([[ConnectionLost(message="reset")]])
        outcome = await runtime(provider).run_turn(turn(), Sink())
        assert outcome.reason == "provider_error" and "stream broke" in outcome.detail
        provider.assert_done()

    async def test_a_stream_dying_midway_ends_the_turn_and_the_next_turn_works(self) -> None:
        provider = MockProvider(
            [[Text(text="half"), ConnectionLost(message="reset")], reply("fine")]
        )
        rt = runtime(provider)
        outcome = await rt.run_turn(turn("q1"), Sink())
        assert outcome.reason == "provider_error" and "stream broke" in outcome.detail
        assert (await rt.run_turn(turn("q2"), Sink())).ok

    async def test_a_provider_error_is_a_clear_outcome(self) -> None:
        provider = MockProvider([ProviderTransportError("connection refused", provider="mock")])
        outcome = await runtime(provider).run_turn(turn(), Sink())
        assert outcome.reason == "provider_error" and "connection refused" in outcome.detail


class TestContextWindow:
    def small(self, steps: list[Any]) -> MockProvider:
        from oxydra.catalog import ProviderCaps

        return MockProvider(steps, ProviderCaps(max_context_tokens=8000, max_output_tokens=200))

    async def test_long_history_is_summarised_by_the_model_and_kept_in_full(self) -> None:
        answers = [reply("answer " + "z" * 3000) for _ in range(4)]
        provider = self.small([*answers, reply("SUMMARY: user asked four things"), reply("fine")])
        rt = runtime(provider, summarization=Summarization(min_turns=4, target_ratio=0.3))
        for i in range(4):
            assert (await rt.run_turn(turn(f"question {i} " + "q" * 3000), Sink())).ok
        sink = Sink()
        assert (await rt.run_turn(turn("last"), sink)).ok
        assert "[1/100] Summarising older history" in sink.progress()
        conversation = await rt.conversation("s1", "u")
        assert conversation.summary is not None and "SUMMARY" in conversation.summary.text
        assert len(conversation.history) == 10, "summarised messages stay in the history"
        sent = provider.contexts[-1].messages
        assert any("SUMMARY" in m.text for m in sent if m.role == "system")
        assert len(sent) < 12
        assert_consistent(list(sent[1:]))

    async def test_a_failed_summary_call_falls_back_to_an_extractive_one(self) -> None:
        answers = [reply("answer " + "z" * 3000) for _ in range(4)]
        failure = ProviderTransportError("down", provider="mock")
        provider = self.small([*answers, failure, reply("fine")])
        rt = runtime(provider, summarization=Summarization(min_turns=4, target_ratio=0.3))
        for i in range(4):
            await rt.run_turn(turn(f"question {i} " + "q" * 3000), Sink())
        assert (await rt.run_turn(turn("last"), Sink())).ok
        summary = (await rt.conversation("s1", "u")).summary
        assert summary is not None and "question 0" in summary.text

    async def test_a_message_too_big_for_the_window_is_a_clear_stop(self) -> None:
        provider = self.small([])
        outcome = await runtime(provider).run_turn(turn("x" * 80_000), Sink())
        assert outcome.reason == "context_too_small" and "context window" in outcome.detail
