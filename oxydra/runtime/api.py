"""What the runtime offers the layers above it (gateway, channels, scheduler, `ask`).

A turn is cancelled by cancelling the task that runs it; the runtime turns that into a
consistent history (no tool call without a result) and a `cancelled` outcome.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from oxydra.core.messages import MediaPart, Response
from oxydra.core.provenance import Label
from oxydra.core.spend import Spend
from oxydra.core.stream import StreamItem
from oxydra.runtime.decide import EndReason
from oxydra.tools import ApprovalHook

Approver = ApprovalHook
"""Asks a human about one tool call (an `ApprovalRequest`) -> approved? One shape from the
gateway through the runtime and the registry to a sub-agent's calls."""


class TurnRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One user turn to run.

    `max_turns`, `max_cost_usd`, `max_tokens` and `deadline_secs` are this turn's own limits
    (the scheduler sets them from `[scheduler]`, a delegation from its brief and what its
    caller has left); they can only tighten the runtime's `[runtime]` limits, never widen
    them. `label` marks a prompt that is not the session owner's own words (another person
    in a shared chat, a task written by a tainted agent): the turn starts tainted.
    """

    user_id: str
    session_id: str
    turn_id: str
    prompt: str
    attachments: tuple[MediaPart, ...] = ()
    agent_name: str = "default"
    channel: str = "tui"
    max_turns: int | None = None
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    label: Label | None = None
    tools: frozenset[str] | None = None
    """The tools the person behind the turn may use (None: every tool)."""
    media_types: tuple[str, ...] = ()
    """The kinds of file the turn's channel shows (`send_media`); none: it shows none."""
    deadline_secs: float | None = None
    """This turn's own time limit (a sub-agent's budget); tightens `turn_deadline_secs`."""
    traceparent: str | None = None
    """W3C trace context of the caller in another process (gateway frame), if any."""


class TurnOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """How a turn ended; `response` is set when the model gave a final answer."""

    reason: EndReason
    detail: str = ""
    response: Response | None = None
    spend: Spend = msgspec.field(default_factory=Spend)

    @property
    def ok(self) -> bool:
        """Whether the turn ended with a final answer."""
        return self.reason == "completed"


class EventSink(Protocol):
    """Receives stream items (text, progress, ...) as the turn produces them."""

    async def __call__(self, item: StreamItem, /) -> None:
        """Deliver one item; may apply backpressure by awaiting."""
        ...


class TurnRunner(Protocol):
    """Runs turns; the gateway, channels and scheduler depend only on this."""

    async def run_turn(
        self, request: TurnRequest, sink: EventSink, approver: Approver | None = None
    ) -> TurnOutcome:
        """Run one turn to its end."""
        ...
