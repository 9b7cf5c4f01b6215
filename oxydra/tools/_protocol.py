"""The tool contract the registry and the runtime rely on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import msgspec

from oxydra.core.messages import FunctionDecl, MediaPart
from oxydra.core.provenance import Label
from oxydra.core.tiers import SafetyTier

if TYPE_CHECKING:
    from oxydra.tools._context import ToolExecutionContext

ErrorKind = Literal["unknown_tool", "invalid_arguments", "timeout", "policy", "denied", "failed"]


@runtime_checkable
class Tool(Protocol):
    """A capability the model can call.

    `execute` receives the model's arguments as a mapping (validated by the tool itself;
    `@tool` does it from the signature) and the per-call context, and returns text — or a
    `ToolOutput` when the result carries media (an MCP server's images).

    Optional attributes the registry reads when present (docs/taint.md): `impact`
    (an `ImpactClass`) and `untrusted` (the source kind of its results, e.g. `"mcp github"`).
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

    async def execute(self, args: Mapping[str, Any], ctx: ToolExecutionContext) -> str | ToolOutput:
        """Run one call; raise a ToolError subclass to report a failure to the model."""
        ...


class ToolOutput(msgspec.Struct, frozen=True, kw_only=True):
    """A result with media: the text goes through the policy; the media ride along to the
    providers that accept media in tool results (the others see only the text)."""

    text: str
    media: tuple[MediaPart, ...] = ()


class ToolResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The outcome of one call, ready to become a tool message.

    Attributes:
        text: what the model sees (scrubbed, host paths rewritten, truncated).
        ok: False when the call failed; `error_kind` then says how, so the runtime can
            decide on feedback and retries without parsing text.
        truncated: the output was cut to the limit; `original_bytes` is its full size.
        scrubbed: secrets were redacted from the output.
        label: provenance of `text` (None: trusted); untrusted results taint the step
            that reads them.
    """

    name: str
    text: str
    ok: bool
    error_kind: ErrorKind | None = None
    call_id: str | None = None
    truncated: bool = False
    original_bytes: int = 0
    media: tuple[MediaPart, ...] = ()
    scrubbed: bool = False
    label: Label | None = None

    @property
    def feedback(self) -> bool:
        """The model's own mistake (no such tool, bad arguments): it can correct itself."""
        return self.error_kind in ("unknown_tool", "invalid_arguments")
