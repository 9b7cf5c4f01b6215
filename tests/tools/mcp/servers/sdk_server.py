"""An MCP server written with the official SDK's own classes (1.x FastMCP or 2.x MCPServer).

Usage: sdk_server.py TRANSPORT PORT MARKER_DIR, TRANSPORT in stdio, streamable-http, sse.
Tools: add, slow (records a cancellation in MARKER_DIR/cancelled), fail, grow (adds a tool
and sends notifications/tools/list_changed), version.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

transport, port, marker = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
try:
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as Server  # 2.x

    server = Server("sdk-fixture")
    major = 2
except ImportError:  # 1.x
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as Server

    server = Server("sdk-fixture", host="127.0.0.1", port=port)
    major = 1


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer; a cancellation is recorded."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        (marker / "cancelled").write_text("cancelled")
        raise
    return "slept"


@server.tool()
def fail() -> str:
    """Always fails."""
    raise ValueError("this tool always fails")


def grown() -> str:
    """A tool added at run time."""
    return "grown"


@server.tool()
async def grow(ctx: Context) -> str:
    """Add the `grown` tool and tell the client its tool list changed."""
    server.add_tool(grown)
    if major == 2 and ctx.protocol_version == "2026-07-28":
        await ctx.notify_tools_changed()  # to `subscriptions/listen` subscribers
    else:
        await ctx.session.send_tool_list_changed()
    return "added"


@server.tool()
def version() -> str:
    """The SDK major version serving."""
    return str(major)


if transport == "stdio" or major == 1:
    server.run(transport)
else:
    server.run(transport, host="127.0.0.1", port=port)
