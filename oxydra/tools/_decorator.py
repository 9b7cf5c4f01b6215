"""`@tool`: a typed async function becomes a `Tool` with a schema and validated arguments.

    @tool(timeout=10, safety_tier=SafetyTier.READ_ONLY)
    async def file_read(ctx: ToolExecutionContext, path: str) -> str:
        '''Read a UTF-8 text file from the workspace.

        Args:
            path: File path such as /shared/notes.md.
        '''

The parameter annotated `ToolExecutionContext` (any name, optional) receives the context;
the others form the schema. Arguments are converted with msgspec before the body runs
(`"5"` becomes 5 for an int; a `null` for a parameter with a non-null default is dropped,
as models often send one), and a mismatch is a `ToolArgumentsError` naming the field, what
was expected and the parameter list. A non-str return value is encoded as JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, overload

import msgspec

from oxydra.core.errors import ToolArgumentsError
from oxydra.core.messages import FunctionDecl
from oxydra.core.tiers import ImpactClass, SafetyTier
from oxydra.tools._context import ToolExecutionContext
from oxydra.tools.schema import Signature, signature_schema

ToolFunction = Callable[..., Awaitable[Any]]
_ENCODER = msgspec.json.Encoder()


class FunctionTool:
    """A `Tool` backed by an async function; built by `@tool`."""

    def __init__(
        self,
        fn: ToolFunction,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float = 10.0,
        safety_tier: SafetyTier = SafetyTier.READ_ONLY,
        impact: ImpactClass | None = None,
        untrusted: str | None = None,
    ) -> None:
        self._fn = fn
        self.impact = impact
        self.untrusted = untrusted
        self._name = name or fn.__name__
        self._timeout = float(timeout)
        self._tier = safety_tier
        self._signature: Signature = signature_schema(
            fn, self._name, ToolExecutionContext, description
        )
        self._decl = FunctionDecl(
            name=self._name,
            description=self._signature.description,
            parameters=self._signature.parameters,
        )

    @property
    def name(self) -> str:
        """See `Tool.name`."""
        return self._name

    @property
    def timeout(self) -> float:
        """See `Tool.timeout`."""
        return self._timeout

    @property
    def safety_tier(self) -> SafetyTier:
        """See `Tool.safety_tier`."""
        return self._tier

    def schema(self) -> FunctionDecl:
        """See `Tool.schema`."""
        return self._decl

    def validate(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Convert the model's arguments to the declared types; ToolArgumentsError if wrong."""
        if not isinstance(args, Mapping):
            raise ToolArgumentsError(
                f"arguments must be a JSON object, got {type(args).__name__}. "
                f"{self.parameter_summary()}"
            )
        drop = self._signature.nullable_defaults
        cleaned = {k: v for k, v in args.items() if not (v is None and k in drop)}
        try:
            value = msgspec.convert(cleaned, self._signature.args_type, strict=False)
        except msgspec.ValidationError as exc:
            raise ToolArgumentsError(f"{_explain(exc)}. {self.parameter_summary()}") from exc
        return {f: getattr(value, f) for f in self._signature.fields}

    async def execute(self, args: Mapping[str, Any], ctx: ToolExecutionContext) -> str:
        """See `Tool.execute`."""
        values = self.validate(args)
        if self._signature.context_param is not None:
            values[self._signature.context_param] = ctx
        result = await self._fn(**values)
        if isinstance(result, str):
            return result
        return _ENCODER.encode(result).decode()

    def parameter_summary(self) -> str:
        """One sentence listing the parameters, their types and which are required."""
        properties: dict[str, Any] = self._decl.parameters.get("properties", {})
        required = set(self._decl.parameters.get("required", []))
        if not properties:
            return "This tool takes no parameters."
        parts = [
            f"{key} ({_type_text(prop)}{', required' if key in required else ''})"
            for key, prop in properties.items()
        ]
        return "Parameters: " + "; ".join(parts) + "."

    def __repr__(self) -> str:
        return f"<FunctionTool {self._name} tier={self._tier} timeout={self._timeout}>"


def _explain(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    message, _, where = text.partition(" - at `$")
    if where:
        path = where.rstrip("`").lstrip(".")
        return f"at `{path}`: {message[:1].lower()}{message[1:]}"
    return message[:1].lower() + message[1:]


def _type_text(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "one of " + "|".join(str(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type_text(p) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"array of {_type_text(prop.get('items', {}))}"
    bounds = [
        f"{k}={prop[k]}" for k in ("minimum", "maximum", "minLength", "maxLength") if k in prop
    ]
    return f"{kind} {' '.join(bounds)}".strip()


@overload
def tool(fn: ToolFunction, /) -> FunctionTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float = 10.0,
    safety_tier: SafetyTier = SafetyTier.READ_ONLY,
    impact: ImpactClass | None = None,
    untrusted: str | None = None,
) -> Callable[[ToolFunction], FunctionTool]: ...


def tool(
    fn: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float = 10.0,
    safety_tier: SafetyTier = SafetyTier.READ_ONLY,
    impact: ImpactClass | None = None,
    untrusted: str | None = None,
) -> FunctionTool | Callable[[ToolFunction], FunctionTool]:
    """Turn an async function into a `Tool` (usable bare or with options).

    `impact` declares what a call can change (taint policy, docs/taint.md); `untrusted`
    names the source kind of its results (`"mcp github"`) when they come from outside and
    must never steer high-impact calls.

    Raises:
        ToolDefinitionError: listing every problem of the signature at once.
    """

    def wrap(function: ToolFunction) -> FunctionTool:
        return FunctionTool(
            function,
            name=name,
            description=description,
            timeout=timeout,
            safety_tier=safety_tier,
            impact=impact,
            untrusted=untrusted,
        )

    return wrap(fn) if fn is not None else wrap
