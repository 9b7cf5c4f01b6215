"""The tool registry as the runtime's `ToolExecutor`, optionally narrowed to a sub-agent's
tool list; each call gets the turn's context with its own call id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from oxydra.core.messages import FunctionDecl, ToolCall
from oxydra.core.tiers import SafetyTier
from oxydra.tools import (
    FileBackend,
    ToolExecutionContext,
    ToolRegistry,
    ToolResult,
    tier_of,
)


class RegistryExecutor:
    """Runs calls through a `ToolRegistry`, with each user's own file backend."""

    def __init__(
        self,
        registry: ToolRegistry,
        backend_for: Callable[[str], FileBackend],
        only: frozenset[str] | None = None,
    ) -> None:
        self.registry = registry
        self.backend_for = backend_for
        self.allowed = only

    def only(self, names: Iterable[str]) -> RegistryExecutor:
        """A view offering and running just `names` (a sub-agent's tool list)."""
        return RegistryExecutor(self.registry, self.backend_for, frozenset(names))

    def schemas(self) -> list[FunctionDecl]:
        """The declarations of the tools this view offers."""
        return self.registry.schemas(None if self.allowed is None else sorted(self.allowed))

    def workspace_for(self, user_id: str) -> FileBackend:
        """The file backend of the user's calls."""
        return self.backend_for(user_id)

    def prepare(self, name: str) -> None:
        """The model started calling `name`: warm what its call will need (the file sandbox)."""
        if name.startswith(("file_", "vault_")):
            backend = self.backend_for("")
            warm = getattr(backend, "start_warming", None)
            if warm is not None:
                warm()

    def is_read_only(self, name: str) -> bool:
        """Whether the tool may run concurrently (unknown tools may not)."""
        return tier_of(self.registry, name) == SafetyTier.READ_ONLY

    async def execute(self, call: ToolCall, ctx: ToolExecutionContext) -> ToolResult:
        """One call through the registry's policy (approval and time limit included)."""
        if self.allowed is not None and call.name not in self.allowed:
            known = ", ".join(sorted(self.allowed)) or "none"
            text = f"unknown tool '{call.name}'. Available tools: {known}"
            return ToolResult(name=call.name, text=text, ok=False, error_kind="unknown_tool")
        raw = call.invalid_arguments if call.invalid_arguments is not None else call.arguments
        return await self.registry.execute(call.name, raw, replace(ctx, call_id=call.id))
