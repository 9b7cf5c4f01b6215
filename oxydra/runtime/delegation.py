"""`delegate_to_agent`: hand a goal to a specialist agent from `[agents.<name>]`.

The sub-agent runs as its own turn on the same runtime machinery, and — unlike the Rust
version, where none of these were applied — with its own system prompt (`system_prompt`, or
the text of `system_prompt_file`), only its listed `tools`, its own provider/model when it has
a `selection`, and the tightest of the caller's, the agent's and the request's `max_turns` /
`max_cost` (USD). It runs inside the caller's tool call, so cancelling the caller's turn
cancels it, and the caller's approver answers for its tool calls. Its transcript is stored
under `subagent:<parent session>:<id>`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from oxydra.config.schema import AgentDefinition
from oxydra.core.errors import ConfigError, ToolArgumentsError
from oxydra.core.messages import FunctionDecl
from oxydra.core.provenance import note_read
from oxydra.core.stream import StreamItem
from oxydra.core.tiers import SafetyTier
from oxydra.runtime.api import Approver, TurnRequest
from oxydra.tools import ApprovalRequest, ToolExecutionContext

NAME = "delegate_to_agent"
RuntimeFor = Callable[[str, AgentDefinition, str], Any]
"""(agent name, definition, system prompt) -> an AgentRuntime for that agent."""


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


def check_agent_tools(agents: Mapping[str, AgentDefinition], known: list[str]) -> None:
    """Every tool an agent lists must exist; one error names them all."""
    problems = [
        f"agents.{name}.tools: unknown tool {tool!r}"
        for name, agent in agents.items()
        for tool in agent.tools or []
        if tool not in known
    ]
    if problems:
        raise ConfigError("; ".join(problems), problems=problems)


class DelegateTool:
    """The `delegate_to_agent` tool (side-effecting: the sub-agent may use tools)."""

    name = NAME
    safety_tier = SafetyTier.SIDE_EFFECTING

    def __init__(
        self, agents: Mapping[str, AgentDefinition], runtime_for: RuntimeFor, timeout: float = 600.0
    ) -> None:
        self.agents = dict(agents)
        self.runtime_for = runtime_for
        self.timeout = timeout
        self._runtimes: dict[str, Any] = {}

    def schema(self) -> FunctionDecl:
        """The declaration: the agent names are an enum, with each agent's first prompt line."""
        described = "; ".join(
            f"{n}: {agent_prompt(n, a).splitlines()[0][:120]}"
            for n, a in sorted(self.agents.items())
        )
        return FunctionDecl(
            name=NAME,
            description="Hand a self-contained goal to a specialist agent and get its report. "
            f"Agents: {described}",
            parameters={
                "type": "object",
                "properties": {
                    "agent_name": {"type": "string", "enum": sorted(self.agents)},
                    "goal": {
                        "type": "string",
                        "minLength": 1,
                        "description": "What the agent must achieve, self-contained.",
                    },
                    "key_facts": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Facts the agent needs (it sees nothing else).",
                    },
                    "max_turns": {"type": "integer", "minimum": 1},
                    "max_cost": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "description": "Money limit in USD.",
                    },
                },
                "required": ["agent_name", "goal"],
                "additionalProperties": False,
            },
        )

    async def execute(self, args: Mapping[str, Any], ctx: ToolExecutionContext) -> str:
        """Run the sub-agent to its end and return its answer."""
        request = _Args.parse(args, sorted(self.agents))
        agent = self.agents[request.agent_name]
        runtime = self._runtime(request.agent_name, agent)
        facts = "".join(f"\n- {fact}" for fact in request.key_facts)
        prompt = request.goal + (f"\n\nKey facts:{facts}" if facts else "")
        turn = TurnRequest(
            user_id=ctx.user_id,
            session_id=f"subagent:{ctx.session_id}:{uuid.uuid4().hex[:12]}",
            turn_id=uuid.uuid4().hex,
            prompt=prompt,
            agent_name=request.agent_name,
            channel=ctx.channel,
            max_turns=_tightest(request.max_turns, agent.max_turns),
            max_cost_usd=_tightest(request.max_cost, agent.max_cost),
            label=ctx.taint,  # a task written from a tainted step starts the agent tainted
        )
        outcome = await runtime.run_turn(turn, _discard, _approver(ctx))
        if outcome.ok and outcome.response is not None:
            note_read(outcome.response.message.label)  # what the agent read taints its answer
            return outcome.response.message.text or "(the agent finished without text)"
        return f"The agent '{request.agent_name}' stopped ({outcome.reason}): {outcome.detail}"

    def _runtime(self, name: str, agent: AgentDefinition) -> Any:
        if name not in self._runtimes:
            self._runtimes[name] = self.runtime_for(name, agent, agent_prompt(name, agent))
        return self._runtimes[name]


class _Args(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent_name: str
    goal: str
    key_facts: list[str] = []
    max_turns: int | None = None
    max_cost: float | None = None

    @classmethod
    def parse(cls, args: Mapping[str, Any], agents: list[str]) -> _Args:
        try:
            parsed = msgspec.convert(dict(args), cls)
        except msgspec.ValidationError as exc:
            raise ToolArgumentsError(f"{NAME}: {exc}") from exc
        if parsed.agent_name not in agents:
            raise ToolArgumentsError(
                f"{NAME}: unknown agent {parsed.agent_name!r}; configured: {', '.join(agents)}"
            )
        if not parsed.goal.strip():
            raise ToolArgumentsError(f"{NAME}: `goal` must not be empty")
        if (parsed.max_turns is not None and parsed.max_turns < 1) or (
            parsed.max_cost is not None and parsed.max_cost <= 0
        ):
            raise ToolArgumentsError(f"{NAME}: max_turns must be ≥ 1 and max_cost > 0")
        return parsed


def _tightest(*limits: float | None) -> Any:
    present = [x for x in limits if x is not None]
    return min(present) if present else None


async def _discard(_item: StreamItem) -> None:
    return None


def _approver(ctx: ToolExecutionContext) -> Approver | None:
    hook = ctx.approval
    if hook is None:
        return None

    async def ask(
        tool: str,
        arguments: dict[str, Any],
        tier: str,
        /,
        *,
        reason: str = "",
        sources: tuple[str, ...] = (),
    ) -> bool:
        return await hook(
            ApprovalRequest(
                tool=tool,
                safety_tier=SafetyTier(tier),
                arguments=arguments,
                user_id=ctx.user_id,
                session_id=ctx.session_id,
                reason=reason,
                taint_sources=sources,
            )
        )

    return ask
