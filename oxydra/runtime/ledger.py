"""What turns cost, in tokens and in money, per turn and per session.

Money comes from the catalog's prices (USD per million tokens) through an injected `price`
function; a model without prices costs 0 and is flagged `priced=False`.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from oxydra.core.messages import UsageUpdate
from oxydra.core.spend import Spend

__all__ = ["CostLedger", "PriceFn", "Spend"]

PriceFn = Callable[[UsageUpdate], float | None]


class CostLedger:
    """Spend per session, queryable at any time; turns keep their own `Spend`.

    One ledger prices one model: a sub-agent on another model has a ledger of its own.
    """

    def __init__(self, price: PriceFn | None = None) -> None:
        self._price = price or (lambda _usage: None)
        self._sessions: dict[str, Spend] = {}

    def cost(self, usage: UsageUpdate | None) -> float | None:
        """The price of one call's usage (None: unpriced or unreported)."""
        return self._price(usage) if usage is not None else None

    def unit_prices(self) -> tuple[float, float] | None:
        """USD per prompt token and per completion token, or None when the model is unpriced."""
        million = 1_000_000
        prompt = self._price(UsageUpdate(prompt_tokens=million, completion_tokens=0))
        completion = self._price(UsageUpdate(prompt_tokens=0, completion_tokens=million))
        if prompt is None or completion is None:
            return None
        return prompt / million, completion / million

    def charge(self, session_id: str, usage: UsageUpdate | None) -> float | None:
        """Add one call's usage to its session; returns the call's price."""
        cost = self.cost(usage)
        self._sessions.setdefault(session_id, Spend()).add(usage, cost)
        return cost

    def absorb(self, session_id: str, spend: Spend) -> None:
        """Add a nested agent's spend (already priced by its own ledger) to a session."""
        self._sessions.setdefault(session_id, Spend()).absorb(spend)

    def forget(self, session_id: str) -> None:
        """Drop an evicted session's totals (in-memory only: they never survived a restart)."""
        self._sessions.pop(session_id, None)

    def session(self, session_id: str) -> Spend:
        """Totals of a session so far (zeros if it has made no call)."""
        return msgspec.structs.replace(self._sessions.get(session_id, Spend()))
