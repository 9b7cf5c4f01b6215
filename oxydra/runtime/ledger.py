"""What turns cost, in tokens and in money, per turn and per session.

Money comes from the catalog's prices (USD per million tokens) through an injected `price`
function; a model without prices costs 0 and is flagged `priced=False`.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from oxydra.core.messages import UsageUpdate

PriceFn = Callable[[UsageUpdate], float | None]


class Spend(msgspec.Struct, kw_only=True):
    """Running totals of one turn or one session."""

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


class CostLedger:
    """Spend per session, queryable at any time; turns keep their own `Spend`."""

    def __init__(self, price: PriceFn | None = None) -> None:
        self._price = price or (lambda _usage: None)
        self._sessions: dict[str, Spend] = {}

    def record(self, session_id: str, turn: Spend, usage: UsageUpdate | None) -> float | None:
        """Add one call's usage to the turn and to its session; returns its USD or None."""
        cost = self._price(usage) if usage is not None else None
        turn.add(usage, cost)
        self._sessions.setdefault(session_id, Spend()).add(usage, cost)
        return cost

    def session(self, session_id: str) -> Spend:
        """Totals of a session so far (zeros if it has made no call)."""
        return msgspec.structs.replace(self._sessions.get(session_id, Spend()))
