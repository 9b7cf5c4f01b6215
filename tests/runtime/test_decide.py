"""The loop's decisions, table-tested without a provider, clock or tool."""

from __future__ import annotations

import msgspec
import pytest

from oxydra.core.messages import Message, Response, ToolCall, UsageUpdate
from oxydra.runtime.decide import (
    Finish,
    Limits,
    Nudge,
    RunTools,
    Stop,
    TurnState,
    after_response,
    after_tools,
    before_call,
    call_key,
    tightened,
)
from oxydra.runtime.ledger import CostLedger, Spend

CALL = ToolCall(id="1", name="file_read", arguments={"path": "/shared/a", "n": 1})


def answer(text: str = "", *calls: ToolCall) -> Response:
    return Response(message=Message(role="assistant", content=text or None, tool_calls=calls))


class TestAfterResponse:
    def test_text_without_calls_finishes(self) -> None:
        assert isinstance(after_response(TurnState(), answer("hi"), Limits()), Finish)

    def test_calls_are_run(self) -> None:
        decision = after_response(TurnState(), answer("", CALL), Limits())
        assert decision == RunTools((CALL,))

    def test_empty_reply_is_nudged_then_stopped(self) -> None:
        state = TurnState()
        assert isinstance(after_response(state, answer(), Limits(max_tool_retries=1)), Nudge)
        state.feedback_rounds = 1
        stop = after_response(state, answer("  "), Limits(max_tool_retries=1))
        assert isinstance(stop, Stop) and stop.reason == "empty_reply"

    @pytest.mark.parametrize("made", [0, 1, 2])
    def test_repeats_below_the_limit_run(self, made: int) -> None:
        state = TurnState()
        for _ in range(made):
            state.ran_tools((CALL,), all_feedback=False)
        assert isinstance(after_response(state, answer("", CALL), Limits()), RunTools)

    def test_the_same_call_past_the_limit_stops_the_turn(self) -> None:
        state = TurnState()
        for _ in range(3):
            state.ran_tools((CALL,), all_feedback=False)
        stop = after_response(state, answer("", CALL), Limits(max_repeated_tool_calls=3))
        assert isinstance(stop, Stop) and stop.reason == "repeated_tool_call"

    def test_argument_order_does_not_hide_a_repeat(self) -> None:
        swapped = ToolCall(id="2", name="file_read", arguments={"n": 1, "path": "/shared/a"})
        assert call_key(CALL) == call_key(swapped)

    def test_different_arguments_are_not_repeats(self) -> None:
        other = ToolCall(id="2", name="file_read", arguments={"path": "/shared/b", "n": 1})
        assert call_key(CALL) != call_key(other)

    @pytest.mark.parametrize(
        ("spend", "limits", "reason"),
        [
            (Spend(total_tokens=101), Limits(max_tokens=100), "max_tokens"),
            (Spend(total_tokens=100), Limits(max_tokens=100), "max_tokens"),
            (Spend(cost_usd=0.02), Limits(max_cost_usd=0.01), "max_cost"),
            (Spend(cost_usd=0.01), Limits(max_cost_usd=0.01), "max_cost"),
        ],
    )
    def test_budgets_stop_a_turn_that_wants_more_tools(
        self, spend: Spend, limits: Limits, reason: str
    ) -> None:
        stop = after_response(TurnState(spend=spend), answer("", CALL), limits)
        assert isinstance(stop, Stop) and stop.reason == reason

    def test_a_final_answer_is_delivered_even_past_the_budget(self) -> None:
        state = TurnState(spend=Spend(total_tokens=500))
        assert isinstance(after_response(state, answer("done"), Limits(max_tokens=100)), Finish)


class TestBeforeCall:
    def test_max_turns_counts_model_calls(self) -> None:
        assert before_call(TurnState(model_calls=1), Limits(max_turns=2)) is None
        stop = before_call(TurnState(model_calls=2), Limits(max_turns=2))
        assert stop is not None and stop.reason == "max_turns"


class TestSelfCorrection:
    def test_feedback_rounds_are_bounded_and_reset_by_success(self) -> None:
        state, limits = TurnState(), Limits(max_tool_retries=2)

        def round_(all_feedback: bool) -> Stop | None:
            state.ran_tools((CALL,), all_feedback)
            return after_tools(state, limits)

        assert round_(True) is None
        assert round_(False) is None and state.feedback_rounds == 0
        assert round_(True) is None
        assert round_(True) is None
        stop = round_(True)
        assert stop is not None and stop.reason == "tool_retries"

    def test_deciding_never_changes_the_state(self) -> None:
        state = TurnState(spend=Spend(total_tokens=5), feedback_rounds=1)
        before = msgspec.structs.asdict(state)
        after_response(state, answer("", CALL), Limits(max_tokens=100))
        after_response(state, answer(), Limits())
        before_call(state, Limits())
        after_tools(state, Limits())
        assert msgspec.structs.asdict(state) == before


class TestLedger:
    def test_turn_and_session_totals_add_up_with_prices(self) -> None:
        ledger = CostLedger(lambda u: (u.total_tokens or 0) * 1e-6)
        turn = TurnState()
        usage = UsageUpdate(prompt_tokens=10, completion_tokens=5, total_tokens=15)
        turn.charge(usage, ledger.charge("s", usage))
        turn.charge(None, ledger.charge("s", None))
        spend = turn.spend
        assert (spend.calls, spend.total_tokens, spend.unreported_calls) == (2, 15, 1)
        assert ledger.session("s").cost_usd == pytest.approx(15e-6) == spend.cost_usd
        assert ledger.session("other").calls == 0

    def test_unpriced_models_are_flagged(self) -> None:
        ledger, turn = CostLedger(), TurnState()
        usage = UsageUpdate(total_tokens=3)
        turn.charge(usage, ledger.charge("s", usage))
        assert not turn.spend.priced and turn.spend.cost_usd == 0


class TestRequestLimits:
    @pytest.mark.parametrize(
        ("base", "turns", "cost", "expected"),
        [
            (Limits(max_turns=100), None, None, Limits(max_turns=100)),
            (Limits(max_turns=100), 10, 0.5, Limits(max_turns=10, max_cost_usd=0.5)),
            (Limits(max_turns=5, max_cost_usd=0.1), 10, 0.5, Limits(max_turns=5, max_cost_usd=0.1)),
            (
                Limits(max_cost_usd=2.0, max_tokens=9),
                None,
                0.5,
                Limits(max_cost_usd=0.5, max_tokens=9),
            ),
        ],
    )
    def test_a_request_only_tightens_the_limits(
        self, base: Limits, turns: int | None, cost: float | None, expected: Limits
    ) -> None:
        assert tightened(base, max_turns=turns, max_cost_usd=cost) == expected
