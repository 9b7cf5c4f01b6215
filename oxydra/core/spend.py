"""What model calls cost, in tokens and money: one `Spend` per turn, per session, per child.

A core type because every layer that causes or reports calls reads it: the runtime charges
it, a tool that runs a nested agent (delegation) hands its spend back to the calling turn,
and the scheduler and clients report it.
"""

from __future__ import annotations

import msgspec

from oxydra.core.messages import UsageUpdate


class Spend(msgspec.Struct, kw_only=True):
    """Running totals of model calls; money is None-safe (`priced=False` when a call had no
    price)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    priced: bool = True
    unreported_calls: int = 0

    def add(self, usage: UsageUpdate | None, cost: float | None) -> None:
        """Count one provider call."""
        self.calls += 1
        if usage is None:
            self.unreported_calls += 1
            return
        self.prompt_tokens += usage.prompt_tokens or 0
        self.completion_tokens += usage.completion_tokens or 0
        self.total_tokens += usage.total
        if cost is None:
            self.priced = False
        else:
            self.cost_usd += cost

    def absorb(self, other: Spend) -> None:
        """Add another spend's totals (a nested agent's) to these."""
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.cost_usd += other.cost_usd
        self.priced = self.priced and other.priced
        self.unreported_calls += other.unreported_calls
