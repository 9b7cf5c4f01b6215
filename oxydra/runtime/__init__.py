"""Runtime: the turn loop, budgets and the cost ledger, the context window, summaries and
delegation.

`build_agent` assembles an `AgentRuntime` from config; callers above (the gateway, the
scheduler, `oxydra.app`) drive it through `TurnRunner.run_turn(TurnRequest, EventSink)` and
read a `TurnOutcome`. The memory bridge adapts the store to the runtime's seams.
"""

import typing as _typing

from oxydra._lazy import lazy_getattr as _lazy_getattr

if _typing.TYPE_CHECKING:
    from oxydra.runtime._memory_bridge import (
        MemoryConversations,
        MemoryScratchpad,
        retriever_for,
    )
    from oxydra.runtime.api import Approver, EventSink, TurnOutcome, TurnRequest, TurnRunner
    from oxydra.runtime.factory import Agent, build_agent, provision_workspace
    from oxydra.runtime.ledger import CostLedger, Spend
    from oxydra.runtime.loop import AgentRuntime, Retriever

__all__ = [
    "Agent",
    "AgentRuntime",
    "Approver",
    "CostLedger",
    "EventSink",
    "MemoryConversations",
    "MemoryScratchpad",
    "Retriever",
    "Spend",
    "TurnOutcome",
    "TurnRequest",
    "TurnRunner",
    "build_agent",
    "provision_workspace",
    "retriever_for",
]

__getattr__ = _lazy_getattr(
    globals(),
    {
        "Agent": "oxydra.runtime.factory",
        "AgentRuntime": "oxydra.runtime.loop",
        "Approver": "oxydra.runtime.api",
        "CostLedger": "oxydra.runtime.ledger",
        "EventSink": "oxydra.runtime.api",
        "MemoryConversations": "oxydra.runtime._memory_bridge",
        "MemoryScratchpad": "oxydra.runtime._memory_bridge",
        "Retriever": "oxydra.runtime.loop",
        "Spend": "oxydra.runtime.ledger",
        "TurnOutcome": "oxydra.runtime.api",
        "TurnRequest": "oxydra.runtime.api",
        "TurnRunner": "oxydra.runtime.api",
        "build_agent": "oxydra.runtime.factory",
        "provision_workspace": "oxydra.runtime.factory",
        "retriever_for": "oxydra.runtime._memory_bridge",
    },
)
