"""The tool contract the registry and the runtime rely on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import msgspec

from oxydra.core.messages import FunctionDecl
from oxydra.core.tiers import SafetyTier

if TYPE_CHECKING:
    from oxydra.tools._context import ToolExecutionContext

ErrorKind = Literal["unknown_tool", "invalid_arguments", "timeout", "policy", "denied", "failed"]


@runtime_checkable
class Tool(Protocol):
    """A capability the model can call.

    `execute` receives the model's arguments as a mapping (validated by the tool itself;
    `@tool` does it from the signature) and the per-call context, and returns text.
    """

    @property
    def name(self) -> str:
        """The name the model calls it by."""
        ...

    @property
    def timeout(self) -> float:
        """Seconds the registry lets one call run."""
        ...

    @property
    def safety_tier(self) -> SafetyTier:
        """How much harm a call can do: decides approval and parallelism."""
        ...

    def schema(self) -> FunctionDecl:
        """Name, description and JSON Schema of the parameters."""
        ...

    async def execute(self, args: Mapping[str, Any], ctx: ToolExecutionContext) -> str:
        """Run one call; raise a ToolError subclass to report a failure to the model."""
        ...


class ToolResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The outcome of one call, ready to become a tool message.

    Attributes:
        text: what the model sees (scrubbed, host paths rewritten, truncated).
        ok: False when the call failed; `error_kind` then says how, so the runtime can
            decide on feedback and retries without parsing text.
        truncated: the output was cut to the limit; `original_bytes` is its full size.
        scrubbed: secrets were redacted from the output.
    """

    name: str
    text: str
    ok: bool
    error_kind: ErrorKind | None = None
    call_id: str | None = None
    truncated: bool = False
    original_bytes: int = 0
    scrubbed: bool = False

    @property
    def feedback(self) -> bool:
        """The model's own mistake (no such tool, bad arguments): it can correct itself."""
        return self.error_kind in ("unknown_tool", "invalid_arguments")
