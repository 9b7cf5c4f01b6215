"""`oxydra mcp list|check`: start the configured servers once and report what they offer.

The servers are started exactly as the agent starts them (same launcher, confinement, SSRF
guard and built-in tool names to clash with), listed, and stopped again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from oxydra.config.schema import AgentConfig
from oxydra.tools import default_registry, default_tools, egress_allowlist
from oxydra.tools.mcp import McpHub, ServerStatus, is_reference


async def inspect_servers(
    config: AgentConfig, *, workspace: Path, environ: Mapping[str, str]
) -> tuple[list[ServerStatus], int, bool]:
    """Each server's status, the MCP schemas' size in bytes, and whether search mode is on."""
    registry = default_registry(config, default_tools(config, environ=environ), environ=environ)
    hub = McpHub(
        config.mcp,
        registry,
        environ=environ,
        state_dir=workspace / "mcp",
        egress_allowlist=egress_allowlist(config, environ),
    )
    try:
        await hub.start()
        size = hub.schema_bytes()
        return hub.status(), size, size > config.mcp.search_threshold_bytes
    finally:
        await hub.stop()


def check_warnings(config: AgentConfig) -> list[str]:
    """What `mcp check` warns about: inline secrets, servers allowed to run unconfined."""
    found = [
        f"mcp.allow_unconfined: '{name}' may run without Landlock where the kernel has none"
        for name in config.mcp.allow_unconfined
    ]
    for name, server in config.mcp.servers.items():
        for table, values in (("env", server.env), ("headers", server.headers)):
            found += [
                f"mcp.servers.{name}.{table}.{key}: an inline value; prefer a ${{VAR}} reference"
                for key, value in values.items()
                if not is_reference(value)
            ]
    return found


def render_status(statuses: list[ServerStatus], size: int, search: bool) -> str:
    """The human-readable listing."""
    lines: list[str] = []
    for status in statuses:
        head = f"{status.name}  {status.state}  {status.transport}"
        if status.protocol:
            head += f"  protocol={status.protocol}"
        if status.confinement:
            head += f"  {status.confinement}"
        if status.restarts:
            head += f"  restarts={status.restarts}"
        lines.append(head)
        if status.error:
            lines.append(f"  error: {status.error}")
        width = max((len(n) for n in status.tools), default=0)
        lines += [f"  {n.ljust(width)}  {tier}" for n, tier in status.tools.items()]
        lines += [f"  problem: {p}" for p in status.problems]
    mode = "search (mcp_find_tools)" if search else "all schemas sent"
    lines.append(f"schemas: {size} bytes; {mode}")
    return "\n".join(lines) + "\n"
