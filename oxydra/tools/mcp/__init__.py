"""MCP client: servers' tools in the agent's registry, under the same policy as built-in ones.

`McpHub` starts the configured servers (stdio confined by `_launch`, HTTP through the SSRF
guard), registers their tools as `McpTool`s and keeps them current. The protocol itself is
the sans-I/O codec in `oxydra.wire.mcp`; see docs/mcp.md.
"""

from oxydra.tools.mcp._adapter import SEARCH_TOOL, FindTools, McpTool, render_result
from oxydra.tools.mcp._client import McpClient, McpError
from oxydra.tools.mcp._hub import McpHub, ServerStatus
from oxydra.tools.mcp._import import import_mcp_servers
from oxydra.tools.mcp._launch import LaunchSpec, server_environment, server_sandbox, spawn
from oxydra.tools.mcp._names import sanitize, server_prefix, tool_name
from oxydra.tools.mcp._schema import checked_schema
from oxydra.tools.mcp._server import McpServer, ServerState, is_reference, resolve_refs

__all__ = [
    "FindTools",
    "LaunchSpec",
    "McpClient",
    "McpError",
    "McpHub",
    "McpServer",
    "McpTool",
    "SEARCH_TOOL",
    "ServerState",
    "ServerStatus",
    "checked_schema",
    "import_mcp_servers",
    "is_reference",
    "render_result",
    "resolve_refs",
    "sanitize",
    "server_environment",
    "server_prefix",
    "server_sandbox",
    "spawn",
    "tool_name",
]
