"""`delegate_to_agent`: hand a goal to a specialist agent from `[agents.<name>]`.

The sub-agent runs as its own turn on the same runtime machinery, and — unlike the Rust
version, where none of these were applied — with its own system prompt (`system_prompt`, or
the text of `system_prompt_file`), only its listed `tools`, its own provider/model when it has
a `selection`, and the tightest of the caller's, the agent's and the request's `max_turns` /
`max_cost` (USD) — and never more than what the calling turn has left of its tokens and
money; what it spends is charged to the calling turn, so the caller's caps hold. It runs
inside the caller's tool call, so cancelling the caller's turn cancels it, and the caller's
approver answers for its tool calls. Its transcript is stored
under `subagent:<parent session>:<id>`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import msgspec

from oxydra.config.schema import AgentDefinition
from oxydra.core.errors import ConfigError, ToolArgumentsError
from oxydra.core.provenance import note_read
from oxydra.core.stream import StreamItem
from oxydra.core.tiers import SafetyTier
from oxydra.runtime.api import TurnRequest, TurnRunner
from oxydra.tools import FunctionTool, ToolExecutionContext, tool

NAME = "delegate_to_agent"
_N = TypeVar("_N", int, float)
Goal = Annotated[str, msgspec.Meta(min_length=1)]
RuntimeFor = Callable[[str, AgentDefinition, str], TurnRunner]
"""(agent name, definition, system prompt) -> the runtime of that agent."""


def agent_prompt(name: str, agent: AgentDefinition) -> str:
    """The agent's system prompt: inline, or read from `system_prompt_file`."""
    if agent.system_prompt:
        return agent.system_prompt
    if agent.system_prompt_file:
        path = Path(agent.system_prompt_file).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"agent '{name}': cannot read system_prompt_file {path}: {exc.strerror}",
                key=f"agents.{name}.system_prompt_file",
            ) from exc
    return f"You are the specialist agent '{name}'. Reach the goal you are given, then report."


def check_agent_tools(
    agents: Mapping[str, AgentDefinition], known: list[str], *, later: tuple[str, ...] = ()
) -> None:
    """Every tool an agent lists must exist; one error names them all.

    Names starting with one of `later` (an MCP server's `<server>__` prefix) are accepted:
    those tools are registered when their server is up, after the agent is built.
    """
    problems = [
        f"agents.{name}.tools: unknown tool {tool!r}"
        for name, agent in agents.items()
        for tool in agent.tools or []
        if tool not in known and not (later and tool.startswith(later))
    ]
    if problems:
        raise ConfigError("; ".join(problems), problems=problems)


def delegate_tool(
    agents: Mapping[str, AgentDefinition], runtime_for: RuntimeFor, timeout: float = 600.0
) -> FunctionTool:
    """The `delegate_to_agent` tool over `agents` (side-effecting: the sub-agent may use tools).

    The agent names are an enum in the schema; the description lists each agent's first
    prompt line. Each agent's runtime is built on first use and kept.
    """
    names = sorted(agents)
    runtimes: dict[str, TurnRunner] = {}
    described = "; ".join(f"{n}: {agent_prompt(n, agents[n]).splitlines()[0][:120]}" for n in names)
    AgentName = Literal[tuple(names)]  # type: ignore[valid-type]

    async def delegate_to_agent(
        ctx: ToolExecutionContext,
        agent_name: str,  # the enum of `names`, set below
        goal: Goal,
        key_facts: list[str] | None = None,
        max_turns: Annotated[int, msgspec.Meta(ge=1)] | None = None,
        max_cost: Annotated[float, msgspec.Meta(gt=0)] | None = None,
    ) -> str:
        """Hand a self-contained goal to a specialist agent and get its report.

        Args:
            agent_name: The agent to run.
            goal: What the agent must achieve, self-contained.
            key_facts: Facts the agent needs (it sees nothing else).
            max_turns: Most model calls the agent may make.
            max_cost: Money limit in USD.
        """
        if not goal.strip():
            raise ToolArgumentsError(f"{NAME}: `goal` must not be empty")
        agent = agents[agent_name]
        if agent_name not in runtimes:
            runtimes[agent_name] = runtime_for(agent_name, agent, agent_prompt(agent_name, agent))
        facts = "".join(f"\n- {fact}" for fact in key_facts or [])
        budget = ctx.budget
        turn = TurnRequest(
            user_id=ctx.user_id,
            session_id=f"subagent:{ctx.session_id}:{uuid.uuid4().hex[:12]}",
            turn_id=uuid.uuid4().hex,
            prompt=goal + (f"\n\nKey facts:{facts}" if facts else ""),
            agent_name=agent_name,
            channel=ctx.channel,
            max_turns=_tightest(max_turns, agent.max_turns),
            max_cost_usd=_tightest(
                max_cost, agent.max_cost, budget.remaining_cost_usd() if budget else None
            ),
            max_tokens=budget.remaining_tokens() if budget else None,
            label=ctx.taint,  # a task written from a tainted step starts the agent tainted
            tools=ctx.allowed_tools,  # a person's allow-list holds for the agents they start
        )
        outcome = await runtimes[agent_name].run_turn(turn, _discard, ctx.approval)
        if budget is not None:
            budget.absorb(outcome.spend)
        if outcome.ok and outcome.response is not None:
            note_read(outcome.response.message.label)  # what the agent read taints its answer
            return str(outcome.response.message.text or "(the agent finished without text)")
        return f"The agent '{agent_name}' stopped ({outcome.reason}): {outcome.detail}"

    # The enum of names exists only at run time; annotations here are strings (PEP 563).
    delegate_to_agent.__annotations__["agent_name"] = AgentName
    return tool(
        name=NAME,
        description="Hand a self-contained goal to a specialist agent and get its report. "
        f"Agents: {described}",
        timeout=timeout,
        safety_tier=SafetyTier.SIDE_EFFECTING,
    )(delegate_to_agent)


def _tightest(*limits: _N | None) -> _N | None:
    present = [x for x in limits if x is not None]
    return min(present) if present else None


async def _discard(_item: StreamItem) -> None:
    return None
