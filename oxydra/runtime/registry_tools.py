"""The tool registry as the runtime's `ToolExecutor`.

Maps the runtime's per-call scope onto a `ToolExecutionContext` (built per call, never
stored), the runtime's approver onto the registry's approval hook, and the registry's error
kinds onto feedback: an unknown tool or bad arguments are the model's own mistake, which it
is told about so it can correct itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from oxydra.core.messages import FunctionDecl, ToolCall
from oxydra.core.tiers import SafetyTier
from oxydra.runtime.api import Approver
from oxydra.runtime.toolrun import ToolOutcome, ToolScope
from oxydra.tools import (
    ApprovalRequest,
    FileBackend,
    ToolExecutionContext,
    ToolRegistry,
    tier_of,
)

FEEDBACK_KINDS = frozenset({"unknown_tool", "invalid_arguments"})


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

    def timeout_for(self, name: str) -> float | None:
        """The tool's own time limit, which may exceed the turn's per-call bound."""
        tool = self.registry.get(name)
        return None if tool is None else float(tool.timeout)

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

    async def execute(
        self, call: ToolCall, scope: ToolScope, approver: Approver | None
    ) -> ToolOutcome:
        """One call through the registry's policy."""
        hook = None
        if approver is not None:
            ask = approver

            async def hook(request: ApprovalRequest) -> bool:
                if not request.taint_sources:
                    return await ask(request.tool, request.arguments, str(request.safety_tier))
                return await ask(
                    request.tool,
                    request.arguments,
                    str(request.safety_tier),
                    reason=request.reason,
                    sources=request.taint_sources,
                )

        ctx = ToolExecutionContext(
            user_id=scope.user_id,
            session_id=scope.session_id,
            workspace=self.backend_for(scope.user_id),
            channel=scope.channel,
            approval=hook,
            provider=scope.provider,
            model=scope.model,
            call_id=call.id,
            taint=scope.taint,
        )
        if self.allowed is not None and call.name not in self.allowed:
            known = ", ".join(sorted(self.allowed)) or "none"
            return ToolOutcome(
                text=f"unknown tool '{call.name}'. Available tools: {known}",
                ok=False,
                feedback=True,
            )
        raw = call.invalid_arguments if call.invalid_arguments is not None else call.arguments
        result = await self.registry.execute(call.name, raw, ctx)
        return ToolOutcome(
            text=result.text,
            ok=result.ok,
            feedback=result.error_kind in FEEDBACK_KINDS,
            label=result.label,
        )
