"""`SubagentBrief`: what a child agent is given, and all it is given (`delegation.py`)."""

from __future__ import annotations

import msgspec


class SubagentBrief(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a child agent is given (rule 1), with its effective scope and budget."""

    agent_name: str
    goal: str
    key_facts: tuple[str, ...] = ()
    expected_output: str | None = None
    tools: tuple[str, ...] = ()
    max_turns: int | None = None
    max_secs: float | None = None
    max_cost_usd: float | None = None

    def render(self) -> str:
        """The child's one user message."""
        lines = [f"Goal: {self.goal}"]
        if self.key_facts:
            lines += ["", "Key facts:", *(f"- {fact}" for fact in self.key_facts)]
        if self.expected_output:
            lines += ["", f"Expected output: {self.expected_output}"]
        limits = [
            f"{self.max_turns} model calls" if self.max_turns else "",
            f"{self.max_secs:g} seconds" if self.max_secs else "",
            f"${self.max_cost_usd:.4f}" if self.max_cost_usd is not None else "",
        ]
        budget = ", ".join(x for x in limits if x)
        lines += ["", f"Tools: {', '.join(self.tools) or 'none'}."]
        if budget:
            lines.append(f"Budget: at most {budget}.")
        lines.append("You see nothing but this brief. Reach the goal, then report.")
        return "\n".join(lines)
