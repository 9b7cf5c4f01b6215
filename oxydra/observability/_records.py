"""What the observer keeps of a finished span and of a finished turn (durable shapes)."""

from __future__ import annotations

import msgspec


class SpanEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A point in time inside a span: a retry, a fallback."""

    name: str
    at_ns: int
    attrs: dict[str, str | bool | int | float] = {}


class SpanRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One finished span as the local store keeps it (attributes already exported-named)."""

    trace_id: str
    span_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    parent_id: str | None = None
    error: str | None = None
    attrs: dict[str, str | bool | int | float | tuple[str, ...]] = {}
    events: tuple[SpanEvent, ...] = ()


class TurnUsage(msgspec.Struct, kw_only=True):
    """One row of the usage ledger: what one turn (a sub-agent's turn included) cost.

    `cost_usd` is None — unknown, never 0 — when any call of the turn had no catalog price;
    `priced_cost_usd` then holds what the priced calls cost.
    """

    turn_id: str
    started_at: float
    duration_s: float
    person: str
    session: str
    agent: str
    model: str
    provider: str
    channel: str = ""
    schedule: str = ""
    outcome: str = "ok"
    trace_id: str = ""
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    unpriced_calls: int = 0
    priced_cost_usd: float = 0.0

    @property
    def cost_usd(self) -> float | None:
        """USD of the turn, or None when a call had no price."""
        return None if self.unpriced_calls else self.priced_cost_usd

    def add_call(self, result: dict[str, object]) -> None:
        """Count one finished `chat` span's usage and price."""
        self.calls += 1
        for kind in ("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"):
            value = result.get(kind)
            if isinstance(value, int):
                setattr(self, kind, getattr(self, kind) + value)
        cost = result.get("cost_usd")
        if isinstance(cost, int | float):
            self.priced_cost_usd += float(cost)
        else:
            self.unpriced_calls += 1
