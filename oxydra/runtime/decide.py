"""The turn loop's decisions, as pure functions of state and the model's answer.

The async driver (`loop.py`) performs what these return; keeping them pure lets every
limit be table-tested without a provider, a clock or a tool.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import msgspec

from oxydra.core.messages import Response, ToolCall
from oxydra.runtime.ledger import Spend

EndReason = Literal[
    "completed",
    "max_turns",
    "max_tokens",
    "max_cost",
    "deadline",
    "repeated_tool_call",
    "tool_retries",
    "empty_reply",
    "cancelled",
    "provider_error",
    "context_too_small",
]

EMPTY_REPLY_FEEDBACK = "Your last reply was empty. Answer the user, or call a tool if you need one."


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-turn limits, from `[runtime]` (or a scheduler's or agent's own)."""

    max_turns: int = 100
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    max_repeated_tool_calls: int = 3
    max_tool_retries: int = 3


def tightened(
    limits: Limits, *, max_turns: int | None = None, max_cost_usd: float | None = None
) -> Limits:
    """`limits` narrowed by a request's own (a scheduled run's); a request never widens them."""
    turns = limits.max_turns if max_turns is None else min(limits.max_turns, max_turns)
    cost = limits.max_cost_usd
    if max_cost_usd is not None:
        cost = max_cost_usd if cost is None else min(cost, max_cost_usd)
    return msgspec.structs.replace(limits, max_turns=turns, max_cost_usd=cost)


class TurnState(msgspec.Struct, kw_only=True):
    """What the loop has done so far in this turn, and the limits this turn runs under."""

    limits: Limits = msgspec.field(default_factory=Limits)
    model_calls: int = 0
    spend: Spend = msgspec.field(default_factory=Spend)
    call_counts: Counter[str] = msgspec.field(default_factory=Counter)
    feedback_rounds: int = 0


class Finish(msgspec.Struct, frozen=True):
    """The model gave its final answer."""

    response: Response


class RunTools(msgspec.Struct, frozen=True):
    """Run these calls and call the model again."""

    calls: tuple[ToolCall, ...]


class Nudge(msgspec.Struct, frozen=True):
    """Tell the model what went wrong (as a user message) and call it again."""

    feedback: str


class Stop(msgspec.Struct, frozen=True):
    """End the turn early, with a reason the user sees."""

    reason: EndReason
    detail: str


Decision = Finish | RunTools | Nudge | Stop


def call_key(call: ToolCall) -> str:
    """Identity of a call for the loop breaker: name plus canonical arguments."""
    args = call.invalid_arguments if call.invalid_arguments is not None else call.arguments
    return call.name + ":" + msgspec.json.encode(args, order="sorted").decode()


def before_call(state: TurnState, limits: Limits) -> Stop | None:
    """Whether the loop may call the model again."""
    if state.model_calls >= limits.max_turns:
        return Stop("max_turns", f"the turn used all {limits.max_turns} model calls")
    return _spend_stop(state.spend, limits)


def after_response(state: TurnState, response: Response, limits: Limits) -> Decision:
    """What to do with the model's answer (its usage is already in `state.spend`)."""
    calls = response.tool_calls
    if not calls:
        if response.message.text.strip() or response.message.media:
            return Finish(response)
        if state.feedback_rounds >= limits.max_tool_retries:
            return Stop("empty_reply", "the model kept returning empty replies")
        return Nudge(EMPTY_REPLY_FEEDBACK)
    stop = _spend_stop(state.spend, limits)
    if stop is not None:
        return stop
    for call in calls:
        key = call_key(call)
        if state.call_counts[key] >= limits.max_repeated_tool_calls:
            return Stop(
                "repeated_tool_call",
                f"the model called {call.name} with the same arguments "
                f"{limits.max_repeated_tool_calls + 1} times",
            )
    return RunTools(calls)


def record_calls(state: TurnState, calls: tuple[ToolCall, ...]) -> None:
    """Count calls for the loop breaker once they run."""
    for call in calls:
        state.call_counts[call_key(call)] += 1


def after_tools(state: TurnState, all_failed_as_feedback: bool, limits: Limits) -> Stop | None:
    """Bound self-correction: consecutive rounds where every call was the model's mistake."""
    state.feedback_rounds = state.feedback_rounds + 1 if all_failed_as_feedback else 0
    if state.feedback_rounds > limits.max_tool_retries:
        return Stop(
            "tool_retries",
            f"the model's tool calls failed validation {state.feedback_rounds} rounds in a row",
        )
    return None


def _spend_stop(spend: Spend, limits: Limits) -> Stop | None:
    if limits.max_tokens is not None and spend.total_tokens > limits.max_tokens:
        return Stop(
            "max_tokens", f"the turn used {spend.total_tokens} tokens (limit {limits.max_tokens})"
        )
    if limits.max_cost_usd is not None and spend.cost_usd > limits.max_cost_usd:
        return Stop(
            "max_cost", f"the turn cost ${spend.cost_usd:.4f} (limit ${limits.max_cost_usd:.4f})"
        )
    return None
