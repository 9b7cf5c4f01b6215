"""Runtime: the turn loop, budgets and the cost ledger, the context window, summaries and
delegation.

`build_agent` assembles an `AgentRuntime` from config; callers above (the gateway, the
scheduler, `oxydra.app`) drive it through `TurnRunner.run_turn(TurnRequest, EventSink)` and
read a `TurnOutcome`. The memory bridge adapts the store to the runtime's seams.
"""

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
