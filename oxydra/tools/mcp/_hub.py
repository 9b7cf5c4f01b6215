"""All configured MCP servers, and their tools in the agent's `ToolRegistry`.

Rules:
1. Servers start concurrently; each within its own `startup_timeout_secs`. One that fails is
   reported (`status()`, the log) and skipped; the others and the agent go on.
2. A server's tools are filtered (`tools` allow-list, then `exclude_tools`; both take
   `fnmatch` globs on the server's own names), named `<server>__<tool>`, and their schemas
   checked (`checked_schema`). A tool whose schema fails, or whose name is already taken by
   a built-in tool or another server's tool, is left out with a problem naming both.
3. Re-listing (after `tools/list_changed` or a restart) replaces that server's tools: gone
   ones are unregistered, new ones registered, the rest replaced.
4. Prompt budget: when the MCP tools' schemas together exceed `search_threshold_bytes`, they
   stay callable but leave the requests; `mcp_find_tools` finds them and brings the chosen
   ones back. Below the threshold every schema is sent and the search tool is absent.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Mapping
from pathlib import Path

import msgspec

from oxydra.config.schema import McpConfig, McpServerConfig
from oxydra.core.log import get_logger
from oxydra.core.tiers import SafetyTier
from oxydra.security import Resolver, SsrfGuard
from oxydra.tools._registry import ToolRegistry
from oxydra.tools.mcp._adapter import SEARCH_TOOL, FindTools, McpTool
from oxydra.tools.mcp._names import tool_name
from oxydra.tools.mcp._schema import checked_schema
from oxydra.tools.mcp._server import McpServer, ServerState
from oxydra.wire.mcp_tools import ToolInfo

_log = get_logger(__name__)


class ServerStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One line of `mcp list`: a server, its state and its tools with their tiers."""

    name: str
    state: str
    transport: str
    protocol: str | None = None
    confinement: str | None = None
    error: str | None = None
    restarts: int = 0
    tools: dict[str, str] = {}
    problems: tuple[str, ...] = ()


class McpHub:
    """Owns every `McpServer` and keeps the registry in step with their tools.

    Args:
        config: `[mcp]`.
        registry: where tools are registered (the agent's one registry).
        environ: where `${VAR}` references are resolved.
        state_dir: parent of the per-server directories (`<state_dir>/<server>`).
        egress_allowlist: entries (with `[mcp] egress_allowlist`) that may open private
            addresses to HTTP servers.
        resolver: DNS seam for the SSRF guard (tests).
    """

    def __init__(
        self,
        config: McpConfig,
        registry: ToolRegistry,
        *,
        environ: Mapping[str, str],
        state_dir: Path,
        egress_allowlist: list[str] | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        allow = [*config.egress_allowlist, *(egress_allowlist or [])]
        guard = SsrfGuard(resolver=resolver, allowlist=allow)
        self.servers = {
            name: McpServer(
                name,
                server,
                settings=config,
                environ=environ,
                directory=state_dir / name,
                guard=guard,
                on_tools=self._register,
            )
            for name, server in sorted(config.servers.items())
        }
        self._owned: dict[str, dict[str, McpTool]] = {name: {} for name in self.servers}
        self._lock = asyncio.Lock()
        self._search: FindTools | None = None

    async def start(self) -> None:
        """Start every enabled server (rule 1)."""
        await asyncio.gather(*(s.start() for s in self.servers.values() if s.config.enabled))

    async def stop(self) -> None:
        """Stop every server and unregister their tools."""
        await asyncio.gather(*(s.stop() for s in self.servers.values()))
        for tools in self._owned.values():
            for name in tools:
                self.registry.unregister(name)
            tools.clear()
        self._budget()

    def tools(self) -> dict[str, McpTool]:
        """Every registered MCP tool by name."""
        return {n: t for owned in self._owned.values() for n, t in owned.items()}

    async def _register(self, server: McpServer) -> None:
        async with self._lock:
            old = self._owned[server.name]
            fresh, problems = self._build(server, old)
            for name in set(old) - set(fresh):
                self.registry.unregister(name)
            for tool in fresh.values():
                self.registry.register(tool, replace=True)
            self._owned[server.name] = fresh
            server.problems = [*server.problems, *problems]
            for problem in problems:
                _log.warning("mcp server %s: %s", server.name, problem)
            self._budget()

    def _build(
        self, server: McpServer, old: Mapping[str, McpTool]
    ) -> tuple[dict[str, McpTool], list[str]]:
        fresh: dict[str, McpTool] = {}
        problems: list[str] = []
        limit = self.registry.config.output_limit_bytes
        for info in server.tools:
            if not _selected(server.config, info.name):
                continue
            name = tool_name(server.name, info.name)
            if name in fresh or (name in self.registry and name not in old):
                owner = self._owner(name)
                problems.append(
                    f"tool {info.name!r} is not registered: the name {name!r} is already "
                    f"taken by {owner}"
                )
                continue
            schema, why = checked_schema(info.input_schema, max_bytes=self.config.max_schema_bytes)
            if schema is None:
                problems.append(f"tool {info.name!r} is not registered: {'; '.join(why)}")
                continue
            fresh[name] = McpTool(
                server, info, name=name, parameters=schema,
                safety_tier=_tier(server.config, info), output_limit=limit,
            )  # fmt: skip
        return fresh, problems

    def _owner(self, name: str) -> str:
        for server, owned in self._owned.items():
            if name in owned:
                return f"MCP server '{server}'"
        return "a built-in tool"

    def _budget(self) -> None:
        tools = self.tools()
        size = sum(len(msgspec.json.encode(t.schema())) for t in tools.values())
        over = size > self.config.search_threshold_bytes
        self.registry.defer(tools, over)
        if over and SEARCH_TOOL not in self.registry:
            self._search = FindTools(self._deferred, self._reveal)
            self.registry.register(self._search)
        elif not over and self._search is not None:
            self.registry.unregister(SEARCH_TOOL)
            self._search = None

    def _deferred(self) -> dict[str, McpTool]:
        return self.tools()

    def _reveal(self, names: list[str]) -> None:
        self.registry.defer(names, False)

    def schema_bytes(self) -> int:
        """The size of the MCP tools' declarations as requests would carry them."""
        return sum(len(msgspec.json.encode(t.schema())) for t in self.tools().values())

    def status(self) -> list[ServerStatus]:
        """Each server's state, tools and tiers (for `mcp list` / `mcp check`)."""
        out: list[ServerStatus] = []
        for name, server in self.servers.items():
            owned = self._owned[name]
            out.append(
                ServerStatus(
                    name=name,
                    state=server.state.value,
                    transport="stdio" if server.config.command else server.config.transport,
                    protocol=server.protocol_version,
                    confinement=server.confinement.detail if server.confinement else None,
                    error=server.error,
                    restarts=server.restarts,
                    tools={n: t.safety_tier.value for n, t in sorted(owned.items())},
                    problems=tuple(server.problems),
                )
            )
        return out

    @property
    def ready(self) -> list[str]:
        """Names of the servers that are up."""
        return [n for n, s in self.servers.items() if s.state is ServerState.READY]


def _selected(config: McpServerConfig, tool: str) -> bool:
    if config.tools is not None and not any(fnmatch.fnmatchcase(tool, p) for p in config.tools):
        return False
    return not any(fnmatch.fnmatchcase(tool, p) for p in config.exclude_tools)


def _tier(config: McpServerConfig, info: ToolInfo) -> SafetyTier:
    if info.name in config.tool_tiers:
        return config.tool_tiers[info.name]
    if config.trust_read_only_hint and info.annotations.read_only_hint is True:
        return SafetyTier.READ_ONLY
    return config.safety_tier
