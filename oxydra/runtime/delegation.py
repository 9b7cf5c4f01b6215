"""`delegate_to_agent`: hand a typed brief to a specialist agent from `[agents.<name>]`.

Theory of operation:
1. The child sees a `SubagentBrief` — goal, key facts, expected output, its tools and its
   budget — rendered as its one user message, under its own system prompt (`system_prompt`
   or the text of `system_prompt_file`). Never the parent's history.
2. Its tools are the intersection of the brief's `tools` (when given), the agent's
   `tools` (when listed) and what the calling turn may use itself (the parent runtime's
   tools, and a person's allow-list when the turn carries one). A brief asking for a tool
   outside the agent's list is refused back to the model, naming what it may ask for; a
   call the child makes outside its scope is refused like an unknown tool.
3. Its budget is the tightest of the brief's, the agent's and what the calling turn has
   left: model calls (`max_turns`), USD (`max_cost`), tokens, and wall-clock seconds
   (`max_secs`, against the agent's `max_secs` and the tool's own time limit). What it
   spends is charged to the calling turn and the parent session's ledger.
4. It runs inside the caller's tool call: cancelling the caller's turn cancels it, and the
   caller's approver answers for its calls. Its session is `subagent:<parent>:<id>`,
   recorded as a child of the parent session (`ChildSessions`), so `/sessions all` shows
   the tree; deleting the parent deletes it.
5. Limits against runaway trees: depth 1 (an agent can never list `delegate_to_agent`,
   so a cycle of agent definitions cannot exist) and at most `[runtime]
   max_subagents_per_turn` delegations per calling turn.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar

import msgspec

from oxydra.config.schema import AgentDefinition
from oxydra.core.errors import ConfigError, ToolArgumentsError
from oxydra.core.provenance import Label, note_read
from oxydra.core.spend import Spend
from oxydra.core.stream import StreamItem
from oxydra.core.tiers import SafetyTier
from oxydra.runtime.api import TurnOutcome, TurnRequest, TurnRunner
from oxydra.runtime.background import BackgroundJob, BackgroundRunner
from oxydra.runtime.brief import SubagentBrief
from oxydra.tools import FunctionTool, ToolExecutionContext, tool

NAME = "delegate_to_agent"
_N = TypeVar("_N", int, float)
Goal = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
Fact = Annotated[str, msgspec.Meta(max_length=4_000)]
RuntimeFor = Callable[[str, AgentDefinition, str, frozenset[str]], TurnRunner]
"""(agent name, definition, system prompt, tool scope) -> a runtime of that agent."""


class ChildSessions(Protocol):
    """Records a child session under its parent (the gateway's session tree)."""

    async def started(
        self, *, user_id: str, parent_session_id: str, session_id: str, agent_name: str
    ) -> None:
        """A child session begins."""
        ...


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
    """Every tool an agent lists must exist, and none may delegate (rule 5).

    Names starting with one of `later` (an MCP server's `<server>__` prefix) are accepted:
    those tools are registered when their server is up, after the agent is built.
    """
    problems = []
    for name, agent in agents.items():
        for tool_name in agent.tools or []:
            if tool_name == NAME:
                problems.append(
                    f"agents.{name}.tools: an agent cannot delegate ({NAME!r}); sub-agents "
                    "are one level deep, so agent definitions can never form a cycle"
                )
            elif tool_name not in known and not (later and tool_name.startswith(later)):
                problems.append(f"agents.{name}.tools: unknown tool {tool_name!r}")
    if problems:
        raise ConfigError("; ".join(problems), problems=problems)


def scope_for(
    agent_name: str,
    agent: AgentDefinition,
    offered: frozenset[str],
    asked: list[str] | None,
    person: frozenset[str] | None = None,
) -> frozenset[str]:
    """The child's tools (rule 2).

    Raises:
        ToolArgumentsError: the brief asks for tools the agent may not have.
    """
    allowed = (frozenset(agent.tools) if agent.tools else offered) - {NAME}
    allowed &= offered
    if person is not None:
        allowed &= person
    if asked is None:
        return allowed
    outside = sorted(set(asked) - allowed)
    if outside:
        raise ToolArgumentsError(
            f"{NAME}: tools outside what agent '{agent_name}' may use: {', '.join(outside)} "
            f"(it may use: {', '.join(sorted(allowed)) or 'none'})"
        )
    return frozenset(asked)


def delegate_tool(
    agents: Mapping[str, AgentDefinition],
    runtime_for: RuntimeFor,
    offered: Callable[[], frozenset[str]],
    *,
    timeout: float = 600.0,
    max_per_turn: int = 8,
    children: ChildSessions | None = None,
    jobs: BackgroundRunner | None = None,
    charge: Callable[[str, Spend], None] | None = None,
) -> FunctionTool:
    """The `delegate_to_agent` tool over `agents` (side-effecting: the sub-agent may use tools).

    `offered()` names the tools the calling runtime offers (rule 2). The agent names are an
    enum in the schema; the description lists each agent's first prompt line. With a
    `jobs` runner, `background=true` runs the child without holding the caller's turn
    (`background.py`); `charge(parent session, spend)` bills its spend to the parent.
    """
    names = sorted(agents)
    described = "; ".join(f"{n}: {agent_prompt(n, agents[n]).splitlines()[0][:120]}" for n in names)
    AgentName = Literal[tuple(names)]  # type: ignore[valid-type]
    started: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()

    async def delegate_to_agent(
        ctx: ToolExecutionContext,
        agent_name: str,  # the enum of `names`, set below
        goal: Goal,
        key_facts: Annotated[list[Fact], msgspec.Meta(max_length=50)] | None = None,
        expected_output: str | None = None,
        tools: list[str] | None = None,
        max_turns: Annotated[int, msgspec.Meta(ge=1)] | None = None,
        max_cost: Annotated[float, msgspec.Meta(gt=0)] | None = None,
        max_secs: Annotated[float, msgspec.Meta(gt=0)] | None = None,
        background: bool = False,
    ) -> str:
        """Hand a self-contained brief to a specialist agent and get its report.

        Args:
            agent_name: The agent to run.
            goal: What the agent must achieve, self-contained.
            key_facts: Facts the agent needs (it sees nothing else).
            expected_output: What the report should contain, and its form.
            tools: The tools it may use (default: all the agent may use).
            max_turns: Most model calls the agent may make.
            max_cost: Money limit in USD.
            max_secs: Time limit in seconds.
            background: Run it in the background: you get no report now; it is
                delivered to this conversation (and the user told) when the agent finishes.
        """
        if not goal.strip():
            raise ToolArgumentsError(f"{NAME}: `goal` must not be empty")
        if background and jobs is None:
            raise ToolArgumentsError(
                f"{NAME}: background runs need the long-running `vm` (this is a one-turn "
                "`ask`); run the agent in the foreground instead"
            )
        agent = agents[agent_name]
        person = getattr(ctx, "allowed_tools", None)
        scope = scope_for(agent_name, agent, offered(), tools, person)
        _count_fan_out(started, ctx.budget, max_per_turn)
        budget = ctx.budget
        brief = SubagentBrief(
            agent_name=agent_name,
            goal=goal,
            key_facts=tuple(key_facts or ()),
            expected_output=expected_output,
            tools=tuple(sorted(scope)),
            max_turns=_tightest(max_turns, agent.max_turns),
            max_secs=_tightest(
                max_secs, agent.max_secs, None if background else max(1.0, timeout - 5)
            ),
            max_cost_usd=_tightest(
                max_cost, agent.max_cost, budget.remaining_cost_usd() if budget else None
            ),
        )
        session_id = f"subagent:{ctx.session_id}:{uuid.uuid4().hex[:12]}"
        if children is not None:
            await children.started(
                user_id=ctx.user_id, parent_session_id=ctx.session_id,
                session_id=session_id, agent_name=agent_name,
            )  # fmt: skip
        if background:
            assert jobs is not None
            job = BackgroundJob(
                job_id=uuid.uuid4().hex[:16], user_id=ctx.user_id,
                parent_session_id=ctx.session_id, session_id=session_id,
                channel=ctx.channel, brief=brief,
            )  # fmt: skip
            await jobs.submit(job)
            return (
                f"Started agent '{agent_name}' in the background (job {job.job_id}). Its "
                "report will be added to this conversation when it finishes; do not wait."
            )
        outcome = await _run(brief, ctx.user_id, session_id, ctx.channel, ctx.approval, ctx)
        if budget is not None:
            budget.absorb(outcome.spend)
        return _report(agent_name, outcome)

    async def _run(
        brief: SubagentBrief,
        user_id: str,
        session_id: str,
        channel: str,
        approver: Any,
        ctx: ToolExecutionContext | None = None,
    ) -> TurnOutcome:
        budget = ctx.budget if ctx is not None else None
        turn = TurnRequest(
            user_id=user_id,
            session_id=session_id,
            turn_id=uuid.uuid4().hex,
            prompt=brief.render(),
            agent_name=brief.agent_name,
            channel=channel,
            max_turns=brief.max_turns,
            max_cost_usd=brief.max_cost_usd,
            max_tokens=budget.remaining_tokens() if budget else None,
            deadline_secs=brief.max_secs,
            label=ctx.taint if ctx is not None else None,  # a task from a tainted step
        )
        agent = agents[brief.agent_name]
        prompt = agent_prompt(brief.agent_name, agent)
        runner = runtime_for(brief.agent_name, agent, prompt, frozenset(brief.tools))
        return await runner.run_turn(turn, _discard, approver)

    async def run_job(job: BackgroundJob) -> tuple[str, Label | None]:
        outcome = await _run(job.brief, job.user_id, job.session_id, job.channel, None)
        if charge is not None:
            charge(job.parent_session_id, outcome.spend)
        label = outcome.response.message.label if outcome.response is not None else None
        return _report(job.brief.agent_name, outcome), label

    if jobs is not None:
        jobs.run_child = run_job

    # The enum of names exists only at run time; annotations here are strings (PEP 563).
    delegate_to_agent.__annotations__["agent_name"] = AgentName
    return tool(
        name=NAME,
        description="Hand a self-contained brief to a specialist agent and get its report. "
        f"Agents: {described}",
        timeout=timeout,
        safety_tier=SafetyTier.SIDE_EFFECTING,
    )(delegate_to_agent)


def _report(agent_name: str, outcome: TurnOutcome) -> str:
    if outcome.ok and outcome.response is not None:
        note_read(outcome.response.message.label)  # what the agent read taints its answer
        return str(outcome.response.message.text or "(the agent finished without text)")
    return f"The agent '{agent_name}' stopped ({outcome.reason}): {outcome.detail}"


def _count_fan_out(
    started: weakref.WeakKeyDictionary[object, int], turn: object | None, limit: int
) -> None:
    """At most `limit` delegations per calling turn (rule 5); keyed on the turn's budget."""
    if turn is None:
        return
    count = started.get(turn, 0)
    if count >= limit:
        raise ToolArgumentsError(
            f"{NAME}: this turn already started {count} sub-agents, the most one turn may "
            f"([runtime] max_subagents_per_turn = {limit}); finish with what you have"
        )
    started[turn] = count + 1


def _tightest(*limits: _N | None) -> _N | None:
    present = [x for x in limits if x is not None]
    return min(present) if present else None


async def _discard(_item: StreamItem) -> None:
    return None
