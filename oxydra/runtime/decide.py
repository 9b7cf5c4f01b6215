"""The turn loop's decisions, as pure functions of state and the model's answer.

The async driver (`loop.py`) performs what these return; keeping them pure lets every
limit be table-tested without a provider, a clock or a tool. Every change of a turn's state
(calls made, money and tokens spent, tool calls counted, feedback rounds, the retrieved
memory) is a method of `TurnState`, so the functions here only read it.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import msgspec

from oxydra.core.messages import Message, Response, ToolCall, UsageUpdate
from oxydra.core.spend import Spend

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
    limits: Limits,
    *,
    max_turns: int | None = None,
    max_cost_usd: float | None = None,
    max_tokens: int | None = None,
) -> Limits:
    """`limits` narrowed by a request's own (a scheduled run's, a sub-agent's share of its
    parent's budget); a request never widens them."""
    return msgspec.structs.replace(
        limits,
        max_turns=limits.max_turns if max_turns is None else min(limits.max_turns, max_turns),
        max_cost_usd=_least(limits.max_cost_usd, max_cost_usd),
        max_tokens=_least(limits.max_tokens, max_tokens),
    )


def _least(a: float | None, b: float | None) -> float | None:
    present = [x for x in (a, b) if x is not None]
    return min(present) if present else None


class TurnState(msgspec.Struct, kw_only=True):
    """What the loop has done so far in this turn, and the limits this turn runs under.

    The driver changes it only through its methods.
    """

    limits: Limits = msgspec.field(default_factory=Limits)
    model_calls: int = 0
    spend: Spend = msgspec.field(default_factory=Spend)
    call_counts: Counter[str] = msgspec.field(default_factory=Counter)
    feedback_rounds: int = 0
    retrieved: tuple[Message, ...] | None = None

    def calling(self) -> None:
        """A model call of the loop starts (it counts toward `max_turns`)."""
        self.model_calls += 1

    def charge(self, usage: UsageUpdate | None, cost: float | None) -> None:
        """One provider call's usage (any call the turn caused: answer or summary)."""
        self.spend.add(usage, cost)

    def absorb(self, spend: Spend) -> None:
        """A nested agent's whole spend, already priced by its own ledger."""
        self.spend.absorb(spend)

    def remaining_tokens(self) -> int | None:
        """Tokens this turn may still use (None: no token limit)."""
        if self.limits.max_tokens is None:
            return None
        return max(self.limits.max_tokens - self.spend.total_tokens, 0)

    def remaining_cost_usd(self) -> float | None:
        """Money this turn may still spend (None: no money limit)."""
        if self.limits.max_cost_usd is None:
            return None
        return max(self.limits.max_cost_usd - self.spend.cost_usd, 0.0)

    def nudged(self) -> None:
        """The model was told its reply was empty."""
        self.feedback_rounds += 1

    def ran_tools(self, calls: tuple[ToolCall, ...], all_feedback: bool) -> None:
        """Calls ran: count them for the loop breaker, and count a round where every call was
        the model's own mistake (any success resets the count)."""
        for call in calls:
            self.call_counts[call_key(call)] += 1
        self.feedback_rounds = self.feedback_rounds + 1 if all_feedback else 0

    def remember_retrieval(self, found: tuple[Message, ...]) -> None:
        """Retrieved memory for this turn's question (retrieval runs once per turn)."""
        self.retrieved = found


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


def after_tools(state: TurnState, limits: Limits) -> Stop | None:
    """Bound self-correction: consecutive rounds where every call was the model's mistake
    (`TurnState.ran_tools` counted the round)."""
    if state.feedback_rounds > limits.max_tool_retries:
        return Stop(
            "tool_retries",
            f"the model's tool calls failed validation {state.feedback_rounds} rounds in a row",
        )
    return None


def _spend_stop(spend: Spend, limits: Limits) -> Stop | None:
    """Spent budgets: at the limit nothing is left for another call."""
    if limits.max_tokens is not None and spend.total_tokens >= limits.max_tokens:
        return Stop(
            "max_tokens", f"the turn used {spend.total_tokens} tokens (limit {limits.max_tokens})"
        )
    if limits.max_cost_usd is not None and spend.cost_usd >= limits.max_cost_usd:
        return Stop(
            "max_cost", f"the turn cost ${spend.cost_usd:.4f} (limit ${limits.max_cost_usd:.4f})"
        )
    return None
