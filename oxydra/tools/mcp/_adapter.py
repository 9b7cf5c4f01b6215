"""`McpTool`: one server tool as a registry `Tool`, and `mcp_find_tools` for the prompt budget.

The registry applies the same policy to these as to built-in tools (approval by tier,
timeout, scrubbing, truncation, parallelism by tier). What is MCP-specific happens here:

- the tier is the server's `safety_tier`, a per-tool `tool_tiers` entry, or read-only when
  the tool says `readOnlyHint` *and* the config sets `trust_read_only_hint` — a server's own
  hint never lowers anything by itself;
- results are untrusted content from outside: `untrusted_source = "mcp:<server>"` (and
  `untrusted = "mcp <server>"`, the taint tracking's spelling) say so, and the text is cut
  to a few times the registry's output limit before it is scrubbed (the registry cuts it to
  the limit after);
- a call that may write (not read-only by tier, and not hinted read-only by the server) and
  names a persona file (`SOUL.md`, `SYSTEM.md`, `USER.md`) in any string argument is refused
  before it reaches the server, with the jail's error and audit record. The boundary is the
  server's Landlock domain, which never holds a persona file writable; this is the layer that
  tells the model why and leaves a trace;
- `isError` results and JSON-RPC errors become `ToolError`s the model reads; images (at most
  `MAX_IMAGES`, 5 MiB each) ride along as media, which a provider whose model reads images
  shows it; the text always names them, so a model that cannot see them knows they exist;
  structured content is shown as JSON when the server sent no text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from oxydra.core.errors import ToolError
from oxydra.core.messages import FunctionDecl, MediaPart
from oxydra.core.tiers import SafetyTier
from oxydra.security import refuse_persona_write
from oxydra.tools._context import ToolExecutionContext
from oxydra.tools._protocol import ToolOutput
from oxydra.tools.mcp._server import McpServer
from oxydra.wire.mcp_tools import ToolInfo, parse_call_result

MAX_DESCRIPTION = 1024
MAX_IMAGES = 4
SEARCH_TOOL = "mcp_find_tools"
_WORD = re.compile(r"[a-z0-9]+")


class McpTool:
    """A server's tool under the name `<server>__<tool>`."""

    def __init__(
        self,
        server: McpServer,
        info: ToolInfo,
        *,
        name: str,
        parameters: dict[str, Any],
        safety_tier: SafetyTier,
        output_limit: int,
    ) -> None:
        self.server = server
        self.info = info
        self._name = name
        self._parameters = parameters
        self._tier = safety_tier
        self._cut = max(4 * output_limit, 64 * 1024)
        self.untrusted_source = f"mcp:{server.name}"
        self.untrusted = f"mcp {server.name}"  # the spelling the taint tracking reads
        self.requires_approval = server.config.approval == "always"

    @property
    def name(self) -> str:
        """`<server>__<tool>`, sanitised and bounded."""
        return self._name

    @property
    def timeout(self) -> float:
        """The server's `timeout_secs` plus a second for the cancellation to go out."""
        return float(self.server.config.timeout_secs) + 1.0

    @property
    def safety_tier(self) -> SafetyTier:
        """See the module docstring."""
        return self._tier

    def schema(self) -> FunctionDecl:
        """The server's description (bounded) and its checked input schema."""
        text = self.info.description or self.info.title or f"{self.info.name} (MCP)"
        text = f"[MCP server {self.server.name}] {text}"
        return FunctionDecl(
            name=self._name, description=text[:MAX_DESCRIPTION], parameters=self._parameters
        )

    async def execute(self, args: Mapping[str, Any], ctx: ToolExecutionContext) -> ToolOutput:
        """Call the tool on its server and render the result."""
        if self._tier != SafetyTier.READ_ONLY and not self.info.annotations.read_only_hint:
            for value in _strings(args):
                refuse_persona_write(value, action=f"mcp {self._name}")
        result = await self.server.call_tool(self.info.name, dict(args))
        return render_result(result, self.server.name, self._cut)


def _strings(value: Any, depth: int = 0) -> list[str]:
    """Every string in a call's arguments (bounded depth: schemas are depth-checked too)."""
    if isinstance(value, str):
        return [value]
    if depth > 16:
        return []
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item, depth + 1)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item, depth + 1)]
    return []


def render_result(result: dict[str, Any], server: str, cut: int) -> ToolOutput:
    """The text (and images) the model gets; raises ToolError for a failed call."""
    outcome = parse_call_result(result)
    if outcome.incomplete:
        raise ToolError(
            f"MCP server '{server}' asked for more input (resultType {outcome.incomplete!r}), "
            "which this client does not support"
        )
    parts = list(outcome.texts)
    if not parts and outcome.structured is not None:
        parts.append(msgspec.json.encode(outcome.structured).decode())
    images = outcome.images[:MAX_IMAGES]
    for image in images:
        parts.append(
            f"[{image.mime_type} image from MCP server {server}, {len(image.data)} bytes; "
            "attached for models that take images in tool results]"
        )
    if len(outcome.images) > MAX_IMAGES:
        parts.append(f"[{len(outcome.images) - MAX_IMAGES} more images dropped]")
    parts += outcome.notes
    text = "\n".join(parts) if parts else "(the tool returned no content)"
    if len(text) > cut:
        text = f"{text[:cut]}\n...[MCP result cut at {cut} characters of {len(text)}]"
    if outcome.is_error:
        raise ToolError(f"MCP server '{server}' reported an error: {text}")
    media = tuple(MediaPart(mime_type=i.mime_type, data=i.data) for i in images)
    return ToolOutput(text=text, media=media)


class FindTools:
    """`mcp_find_tools`: search the deferred MCP tools, then reveal the chosen ones.

    Args:
        catalog: returns the deferred tools (name -> tool) at call time.
        reveal: puts the found tools' schemas back into the requests that follow.
    """

    name = SEARCH_TOOL
    timeout = 10.0
    safety_tier = SafetyTier.READ_ONLY
    untrusted_source = "mcp:search"
    untrusted = "mcp search"

    def __init__(
        self,
        catalog: Callable[[], Mapping[str, McpTool]],
        reveal: Callable[[list[str]], None],
        *,
        limit: int = 5,
    ) -> None:
        self._catalog = catalog
        self._reveal = reveal
        self._limit = limit

    def schema(self) -> FunctionDecl:
        """A query and an optional server filter."""
        servers = sorted({t.server.name for t in self._catalog().values()})
        return FunctionDecl(
            name=SEARCH_TOOL,
            description=(
                "Find tools from MCP servers by keywords. Returns the best matches with their "
                "parameter schemas; found tools can be called from the next step on. "
                f"Servers: {', '.join(servers) or 'none'}."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What the tool should do."},
                    "server": {"type": "string", "description": "Only this server's tools."},
                },
                "required": ["query"],
            },
        )

    async def execute(self, args: Mapping[str, Any], ctx: ToolExecutionContext) -> str:
        """Rank by shared words with name and description; reveal and describe the top ones."""
        query = args.get("query")
        if not isinstance(query, str) or not query.strip():
            from oxydra.core.errors import ToolArgumentsError

            raise ToolArgumentsError("'query' must be a non-empty string")
        server = args.get("server")
        found = search(self._catalog(), query, server if isinstance(server, str) else None)
        chosen = found[: self._limit]
        self._reveal([t.name for t in chosen])
        if not chosen:
            return "No MCP tool matches that query."
        entries = [
            {"name": t.name, "description": t.schema().description, "parameters": t._parameters}
            for t in chosen
        ]
        return msgspec.json.encode({"tools": entries}).decode()


def search(catalog: Mapping[str, McpTool], query: str, server: str | None) -> list[McpTool]:
    """Tools ranked by how many query words their name and description share."""
    words = set(_WORD.findall(query.lower()))
    scored: list[tuple[int, str, McpTool]] = []
    for name, tool in catalog.items():
        if server is not None and tool.server.name != server:
            continue
        haystack = f"{name} {tool.info.name} {tool.info.description}".lower()
        hits = set(_WORD.findall(haystack))
        score = len(words & hits) * 2 + sum(1 for w in words if w in haystack)
        if score:
            scored.append((score, name, tool))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [tool for _, _, tool in scored]
