"""A small real ToolExecutor for loop tests: plain async functions, strict about arguments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from oxydra.core.messages import FunctionDecl, ToolCall
from oxydra.core.stream import StreamItem
from oxydra.tools import FileBackend, ToolExecutionContext, ToolResult

Fn = Callable[..., Awaitable[str]]


class FunctionTools:
    """Tools from async functions; `required` names arguments that must be present."""

    def __init__(self) -> None:
        self.tools: dict[str, tuple[Fn, bool, list[str]]] = {}
        self.calls: list[tuple[str, dict[str, Any], ToolExecutionContext]] = []
        self.prepared: list[str] = []

    def add(
        self, name: str, fn: Fn, *, read_only: bool = True, required: list[str] | None = None
    ) -> None:
        self.tools[name] = (fn, read_only, required or [])

    def schemas(self) -> list[FunctionDecl]:
        return [
            FunctionDecl(
                name=n,
                description=f"tool {n}",
                parameters={
                    "type": "object",
                    "properties": {r: {"type": "string"} for r in req},
                    "required": req,
                },
            )
            for n, (_, _, req) in sorted(self.tools.items())
        ]

    def workspace_for(self, user_id: str) -> FileBackend:
        return None  # type: ignore[return-value]  # these tools touch no files

    def prepare(self, name: str) -> None:
        self.prepared.append(name)

    def is_read_only(self, name: str) -> bool:
        return name in self.tools and self.tools[name][1]

    async def execute(self, call: ToolCall, ctx: ToolExecutionContext) -> ToolResult:
        if call.name not in self.tools:
            text = f"unknown tool {call.name!r}; known: {sorted(self.tools)}"
            return ToolResult(name=call.name, text=text, ok=False, error_kind="unknown_tool")
        if call.invalid_arguments is not None:
            text = f"arguments are not a JSON object: {call.invalid_arguments!r}"
            return ToolResult(name=call.name, text=text, ok=False, error_kind="invalid_arguments")
        fn, _, required = self.tools[call.name]
        missing = [r for r in required if r not in call.arguments]
        if missing:
            text = f"missing required argument(s): {missing}"
            return ToolResult(name=call.name, text=text, ok=False, error_kind="invalid_arguments")
        self.calls.append((call.name, call.arguments, ctx))
        return ToolResult(name=call.name, text=await fn(**call.arguments), ok=True)


class Sink:
    """Collects what the runtime streams."""

    def __init__(self) -> None:
        self.items: list[StreamItem] = []

    async def __call__(self, item: StreamItem) -> None:
        self.items.append(item)

    def text(self) -> str:
        return "".join(getattr(i, "text", "") for i in self.items if type(i).__name__ == "Text")

    def progress(self) -> list[str]:
        return [i.message for i in self.items if type(i).__name__ == "Progress"]  # type: ignore[attr-defined]


def scripted_runtime(provider: Any = None, **overrides: Any) -> Any:
    """An `AgentRuntime` on a scripted provider (none: one that must not be called) and no
    tools, for tests about what sits around a turn (gateway, relay, outbox)."""
    from oxydra.config.schema import RuntimeConfig
    from oxydra.runtime.loop import AgentRuntime
    from oxydra.runtime.tokens import EstimateCounter
    from oxydra.testing.mock_provider import MockProvider

    settings: dict[str, Any] = {
        "provider": provider if provider is not None else MockProvider([]),
        "tools": FunctionTools(),
        "config": RuntimeConfig(),
        "provider_id": "mock",
        "model": "m",
        "system_prompt": "",
        "counter": EstimateCounter(),
    }
    return AgentRuntime(**{**settings, **overrides})
