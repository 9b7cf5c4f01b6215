"""Context window: what of the history fits in one provider call.

Theory of operation:
1. The budget is the model's context limit (from the catalog, else the configured fallback)
   minus a safety buffer and the reserved output; fixed parts are charged first: system
   prompt, tool schemas, the rolling summary and retrieved memory.
2. History is cut into units that must travel together: an assistant message with tool calls
   and the tool results that answer it are one unit, so a call is never sent without its
   result or a result without its call.
3. Units are taken newest first while they fit; the first unit that does not fit ends the
   fill, so what is sent is always a contiguous recent stretch.
4. The newest unit (holding the user's latest message) must fit, else the turn cannot run.
5. Counting is the costly part (seconds for megabytes), so it runs off the event loop, and
   input whose bytes alone prove it cannot fit is refused before any counting: no token of
   the shipped encodings is longer than `MAX_TOKEN_BYTES` bytes, so `bytes / MAX_TOKEN_BYTES`
   is a lower bound of the tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from oxydra.core.errors import AgentError
from oxydra.core.messages import FunctionDecl, Message
from oxydra.runtime.tokens import TokenCounter, message_tokens, tools_tokens

MAX_TOKEN_BYTES = 128
"""The longest token of cl100k_base and o200k_base, in bytes (checked in tests)."""


class ContextTooSmallError(AgentError):
    """The newest message alone does not fit the model's context window."""


def refuse_by_bytes(size: int, room: int, max_context_tokens: int, what: str) -> None:
    """Refuse `size` bytes that cannot fit `room` tokens whatever they say, without counting.

    Raises:
        ContextTooSmallError: at least `size / MAX_TOKEN_BYTES` tokens exceed `room`.
    """
    if size > max(room, 0) * MAX_TOKEN_BYTES:
        raise ContextTooSmallError(
            f"{what} is {size:,} bytes: at least {size // MAX_TOKEN_BYTES:,} tokens, more than "
            f"the {max(room, 0):,} tokens left in the model's context window "
            f"({max_context_tokens:,} tokens)",
            hint="shorten the message or choose a model with a larger context window",
        )


class WindowPlan(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of budgeting one call."""

    messages: tuple[Message, ...]
    dropped: int
    history_tokens: int
    fixed_tokens: int
    budget_tokens: int

    @property
    def fill_ratio(self) -> float:
        """How full the window is (history + fixed parts over the budget)."""
        return (self.history_tokens + self.fixed_tokens) / max(1, self.budget_tokens)


def history_units(history: Sequence[Message]) -> list[list[Message]]:
    """Group history so each tool-call message travels with its results."""
    units: list[list[Message]] = []
    pending: set[str] = set()
    for message in history:
        if message.role == "tool" and units and pending and message.tool_call_id in pending:
            units[-1].append(message)
            pending.discard(message.tool_call_id or "")
            continue
        units.append([message])
        pending = {c.id for c in message.tool_calls} if message.role == "assistant" else set()
    return units


def plan_window(
    *,
    counter: TokenCounter,
    fixed: Sequence[Message],
    history: Sequence[Message],
    tools: Sequence[FunctionDecl],
    max_context_tokens: int,
    safety_buffer_tokens: int,
    reserved_output_tokens: int = 0,
) -> WindowPlan:
    """Choose the history to send: newest units first, never splitting a tool exchange.

    Raises:
        ContextTooSmallError: when even the newest unit does not fit.
    """
    budget = max_context_tokens - safety_buffer_tokens - reserved_output_tokens
    fixed_cost = sum(message_tokens(counter, m) for m in fixed) + tools_tokens(counter, tools)
    room = budget - fixed_cost
    chosen: list[list[Message]] = []
    used = 0
    units = history_units(history)
    for unit in reversed(units):
        cost = sum(message_tokens(counter, m) for m in unit)
        if used + cost > room:
            break
        chosen.append(unit)
        used += cost
    if units and not chosen:
        raise ContextTooSmallError(
            f"the latest message needs more than the {max(room, 0)} tokens left in the "
            f"model's context window ({max_context_tokens} tokens)",
            hint="shorten the message or choose a model with a larger context window",
        )
    kept = [m for unit in reversed(chosen) for m in unit]
    return WindowPlan(
        messages=(*fixed, *kept),
        dropped=len(history) - len(kept),
        history_tokens=used,
        fixed_tokens=fixed_cost,
        budget_tokens=budget,
    )
