"""The tool registry: schemas for a turn, and the policy every call goes through.

Per call, in order:
1. unknown tool -> `unknown_tool` (the text lists the real names so the model can retry);
2. arguments given as JSON text are decoded; not an object -> `invalid_arguments`;
3. taint gate (`_taint.py`, docs/taint.md): while the step's context holds untrusted
   content, a call of a gated impact class is refused or needs the person's yes (no hook:
   refused), and a URL that could carry data out is refused; each gated call and its
   answer go to the audit log. A yes here also answers step 4;
4. safety-tier gate: a tier listed in `[tools.approval] require` needs a yes from the
   context's approval hook (within `timeout_secs`; no answer in time is a no); with no hook
   wired, `[tools.approval] default` decides;
5. the tool runs under `asyncio.timeout(tool.timeout)`, inside `call_scope(ctx.taint)` so
   what it writes keeps the step's label and what it reads is reported; the result gets
   its label;
6. the output (or error text) has host paths rewritten to `/shared`, `/tmp`, `/vault`, is
   scrubbed of secrets, then truncated to `output_limit_bytes` with a visible marker
   (`_output.py`: a huge output is cut to the limit plus a margin first, so scrubbing cost is
   bounded; long outputs are scrubbed in a worker thread so no session's loop stalls).

Errors the model caused or can work around come back as a `ToolResult` with `ok=False`;
only cancellation of the calling task propagates (that is how a stopped turn stops a tool).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

import msgspec

from oxydra.config.schema import ApprovalConfig, ToolsConfig
from oxydra.core.errors import (
    OxydraError,
    PolicyError,
    ToolArgumentsError,
    ToolError,
    ToolTimeoutError,
)
from oxydra.core.log import get_logger, span
from oxydra.core.messages import FunctionDecl, MediaPart
from oxydra.core.provenance import Label, call_scope
from oxydra.core.tiers import SafetyTier
from oxydra.security import Scrubber
from oxydra.tools._context import ApprovalRequest, ToolExecutionContext
from oxydra.tools._output import clean_output_async
from oxydra.tools._protocol import ErrorKind, Tool, ToolOutput, ToolResult
from oxydra.tools._taint import TaintGuard
from oxydra.wire import MAX_JSON_DEPTH, nesting_exceeds

_log = get_logger(__name__)
_DECODER = msgspec.json.Decoder()


class ToolRegistry:
    """Holds the tools of one agent and applies the per-call policy.

    Args:
        config: `[tools]` (output limit, approval); defaults when omitted.
        scrubber: redacts secrets from every output; a plain `Scrubber()` when omitted.
        taint: the taint guard (policy, tainted files, audit); in-memory defaults when
            omitted.
    """

    def __init__(
        self,
        config: ToolsConfig | None = None,
        *,
        scrubber: Scrubber | None = None,
        taint: TaintGuard | None = None,
    ) -> None:
        self.config = config if config is not None else ToolsConfig()
        self.scrubber = scrubber if scrubber is not None else Scrubber()
        self.taint = taint if taint is not None else TaintGuard()
        self._tools: dict[str, Tool] = {}
        self._deferred: set[str] = set()

    def register(self, tool: Tool, *, replace: bool = False) -> None:
        """Add a tool; a second tool with the same name is an error unless `replace`."""
        if tool.name in self._tools and not replace:
            raise ValueError(f"a tool named '{tool.name}' is already registered")
        self._tools[tool.name] = tool

    def unregister(self, name: str) -> None:
        """Remove a tool (an MCP server dropped it); unknown names are ignored."""
        self._tools.pop(name, None)
        self._deferred.discard(name)

    def defer(self, names: Iterable[str], deferred: bool = True) -> None:
        """Keep `names` callable but leave their schemas out of `schemas()` (or put them back).

        The MCP prompt budget: past a size, servers' schemas are found on demand
        (`mcp_find_tools`) instead of being sent with every request.
        """
        wanted = set(names) & set(self._tools)
        if deferred:
            self._deferred |= wanted
        else:
            self._deferred -= wanted

    def register_all(self, tools: Iterable[Tool]) -> None:
        """Add several tools."""
        for item in tools:
            self.register(item)

    def get(self, name: str) -> Tool | None:
        """The tool called `name`, if registered."""
        return self._tools.get(name)

    @property
    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def schemas(self, names: Iterable[str] | None = None) -> list[FunctionDecl]:
        """Declarations to send with a turn, sorted by name; `names` limits them."""
        wanted = self.names if names is None else sorted(set(names) & set(self._tools))
        return [self._tools[n].schema() for n in wanted if n not in self._deferred]

    async def execute(
        self, name: str, raw_args: Mapping[str, Any] | str, ctx: ToolExecutionContext
    ) -> ToolResult:
        """Run one call through the policy; never raises for tool-side failures."""
        traced = {"taint": ctx.taint.describe()} if ctx.taint is not None else {}
        with span(
            "tool.call", tool=name, session=ctx.session_id, call_id=ctx.call_id, **traced
        ) as seen:
            seen["_arguments"] = raw_args
            result = await self._execute(name, raw_args, ctx)
            seen["outcome"] = result.error_kind or "ok"
            seen["truncated"] = result.truncated
            seen["scrubbed"] = result.scrubbed
            seen["_result"] = result.text
            return result

    async def _execute(
        self, name: str, raw_args: Mapping[str, Any] | str, ctx: ToolExecutionContext
    ) -> ToolResult:
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self.names) or "none"
            text = f"unknown tool '{name}'. Available tools: {known}"
            return await self._result(name, text, ctx, kind="unknown_tool")
        try:
            args = _arguments(raw_args)
            if not await self._taint_gate(tool, args, ctx):
                await self._gate(tool, args, ctx)
            with call_scope(ctx.taint) as reads:
                output = await self._run(tool, args, ctx)
            label = self.taint.result_label(tool, args, reads)
            await self.taint.after_write(tool, args, ctx)
        except OxydraError as exc:
            kind, text = _classify(name, exc)
            return await self._result(name, text, ctx, kind=kind)
        except Exception as exc:  # a bug in a tool must not end the turn
            _log.exception("tool %s raised", name)
            text = f"Tool execution failed: internal error: {type(exc).__name__}: {exc}"
            return await self._result(name, text, ctx, kind="failed")
        if isinstance(output, ToolOutput):
            return await self._result(name, output.text, ctx, media=output.media, label=label)
        return await self._result(name, output, ctx, label=label)

    async def _taint_gate(
        self, tool: Tool, args: dict[str, Any], ctx: ToolExecutionContext
    ) -> bool:
        """Apply taint policy; True when the person approved (no second question)."""
        decision = self.taint.check(tool, args, ctx)
        if decision.action == "allow":
            return False
        if decision.action == "deny":
            await self.taint.record(tool, args, ctx, decision, "refused", self.scrubber)
            raise PolicyError(decision.reason)
        if ctx.approval is None:
            await self.taint.record(tool, args, ctx, decision, "refused_no_approver", self.scrubber)
            raise _Denied(f"{decision.reason}; it needs the user's approval and nobody can answer")
        request = _request(
            tool,
            args,
            ctx,
            reason=decision.reason,
            taint_sources=tuple(str(s) for s in ctx.taint.sources) if ctx.taint else (),
        )
        approved = await _ask(ctx.approval(request), self.config.approval)
        answer = "approved" if approved else "denied"
        await self.taint.record(tool, args, ctx, decision, answer, self.scrubber)
        if not approved:
            raise _Denied(f"the user did not approve running '{tool.name}' ({decision.reason})")
        return True

    async def _gate(self, tool: Tool, args: dict[str, Any], ctx: ToolExecutionContext) -> None:
        approval = self.config.approval
        always = getattr(tool, "requires_approval", False) is True
        if tool.safety_tier not in approval.require and not always:
            return
        if ctx.approval is None:
            if approval.default == "allow":
                return
            raise _Denied(f"'{tool.name}' needs approval and no approver is available")
        if not await _ask(ctx.approval(_request(tool, args, ctx)), approval):
            raise _Denied(f"the user did not approve running '{tool.name}'")

    async def _run(
        self, tool: Tool, args: dict[str, Any], ctx: ToolExecutionContext
    ) -> str | ToolOutput:
        try:
            async with asyncio.timeout(tool.timeout):
                return await tool.execute(args, ctx)
        except TimeoutError as exc:
            raise ToolTimeoutError(
                f"'{tool.name}' did not finish within {tool.timeout:g} seconds and was stopped"
            ) from exc

    async def _result(
        self,
        name: str,
        text: str,
        ctx: ToolExecutionContext,
        *,
        kind: ErrorKind | None = None,
        media: tuple[MediaPart, ...] = (),
        label: Label | None = None,
    ) -> ToolResult:
        limit = self.config.output_limit_bytes
        shown = await clean_output_async(
            text, scrubber=self.scrubber, to_virtual=ctx.workspace.to_virtual, limit=limit
        )
        return ToolResult(
            name=name,
            text=shown.text,
            ok=kind is None,
            error_kind=kind,
            call_id=ctx.call_id,
            truncated=shown.truncated,
            original_bytes=shown.original_bytes,
            scrubbed=shown.scrubbed,
            media=media,
            label=label,
        )


class _Denied(OxydraError):
    """Approval refused (a control-flow outcome, reported as `denied`)."""


def _arguments(raw: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(raw, str):
        if nesting_exceeds(raw):
            raise ToolArgumentsError(f"arguments nest deeper than {MAX_JSON_DEPTH} levels")
        try:
            raw = _DECODER.decode(raw or "{}")
        except msgspec.DecodeError as exc:
            raise ToolArgumentsError(f"arguments are not valid JSON: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ToolArgumentsError(f"arguments must be a JSON object, got {type(raw).__name__}")
    return dict(raw)


async def _ask(answer: Awaitable[bool], config: ApprovalConfig) -> bool:
    try:
        async with asyncio.timeout(config.timeout_secs):
            return bool(await answer)
    except TimeoutError:
        return False


def _classify(name: str, exc: OxydraError) -> tuple[ErrorKind, str]:
    if isinstance(exc, ToolArgumentsError):
        return "invalid_arguments", f"Invalid arguments for tool '{name}': {exc}"
    if isinstance(exc, ToolTimeoutError):
        return "timeout", f"Tool execution failed: {exc}"
    if isinstance(exc, PolicyError):
        return "policy", f"Tool execution refused by policy: {exc}"
    if isinstance(exc, _Denied):
        return "denied", f"Tool call not approved: {exc}"
    if isinstance(exc, ToolError):
        return "failed", f"Tool execution failed: {exc}"
    return "failed", f"Tool execution failed: {type(exc).__name__}: {exc}"


def tier_of(registry: ToolRegistry, name: str) -> SafetyTier | None:
    """The safety tier of a registered tool (the runtime's parallelism decision)."""
    tool = registry.get(name)
    return tool.safety_tier if tool is not None else None


def _request(
    tool: Tool, args: dict[str, Any], ctx: ToolExecutionContext, **why: Any
) -> ApprovalRequest:
    """The question put to the user about one call (`why`: the taint reason and sources)."""
    return ApprovalRequest(
        tool=tool.name,
        safety_tier=tool.safety_tier,
        arguments=args,
        user_id=ctx.user_id,
        session_id=ctx.session_id,
        call_id=ctx.call_id,
        **why,
    )
