"""The Streamable HTTP transport against a strict loopback server of our own (JSON answers).

It checks what the SDK server does not: header references resolved from the environment,
the session id echoed on every later request, a non-JSON-RPC 4xx to `server/discover`
falling back to the handshake, and a result too large for the transport.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from oxydra.config.schema import McpServerConfig
from oxydra.testing._fake_http import HttpRequest, HttpResponseWriter, serve_connection
from oxydra.tools import ToolExecutionContext

SESSION = "sess-123"


class StrictServer:
    """Answers JSON (never SSE), demands the Authorization header and the session id."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.big = False

    async def handle(self, request: HttpRequest, out: HttpResponseWriter) -> None:
        self.requests.append(request)
        if request.method == "DELETE":
            await out.send(200, {}, b"")
            return
        if request.headers.get("authorization") != "Bearer from-env":
            await out.send(401, {"content-type": "text/plain"}, b"no auth")
            return
        message = json.loads(request.body)
        method = message.get("method")
        if method == "server/discover":
            await out.send(400, {"content-type": "text/plain"}, b"unknown method")
            return
        headers = {"content-type": "application/json"}
        if method == "initialize":
            headers["mcp-session-id"] = SESSION
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                      "serverInfo": {"name": "strict", "version": "1"}}  # fmt: skip
        elif request.headers.get("mcp-session-id") != SESSION:
            await out.send(400, {"content-type": "text/plain"}, b"missing session")
            return
        elif "id" not in message:
            await out.send(202, {}, b"")
            return
        elif method == "tools/list":
            schema = {"type": "object", "properties": {"q": {"type": "string"}}}
            result = {"tools": [{"name": "look", "description": "Look.", "inputSchema": schema}]}
        else:
            text = "x" * (9 * 1024 * 1024) if self.big else f"saw {message['params']['arguments']}"
            result = {"content": [{"type": "text", "text": text}]}
        body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
        await out.send(200, headers, body)


@pytest.fixture
async def strict() -> AsyncIterator[tuple[StrictServer, str]]:
    server = StrictServer()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(reader, writer, server.handle)

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    yield server, f"http://127.0.0.1:{port}/mcp"
    listener.close()
    await listener.wait_closed()


def _config(url: str) -> McpServerConfig:
    return McpServerConfig(
        url=url, headers={"Authorization": "${STRICT_AUTH}"}, startup_timeout_secs=10.0
    )


async def test_header_references_session_ids_and_discover_fallback(
    make_hub, strict, call_ctx: ToolExecutionContext
) -> None:
    server, url = strict
    environ = {"STRICT_AUTH": "Bearer from-env"}
    hub = await make_hub({"strict": _config(url)}, environ=environ, egress_allowlist=["127.0.0.1"])
    [status] = hub.status()
    assert status.state == "ready", status.error
    assert status.protocol == "2025-06-18"
    result = await hub.registry.execute("strict__look", {"q": "here"}, call_ctx)
    assert result.ok and result.text == "saw {'q': 'here'}"
    later = [r for r in server.requests if r.method == "POST"][2:]
    assert later and all(r.headers.get("mcp-session-id") == SESSION for r in later)
    assert all(r.headers.get("mcp-protocol-version") == "2025-06-18" for r in later)
    await hub.stop()
    assert server.requests[-1].method == "DELETE"


async def test_a_missing_reference_never_sends_the_request(make_hub, strict) -> None:
    server, url = strict
    hub = await make_hub({"strict": _config(url)}, environ={}, egress_allowlist=["127.0.0.1"])
    assert "STRICT_AUTH" in (hub.status()[0].error or "")
    assert server.requests == []


async def test_an_answer_over_the_body_limit_is_a_tool_error(
    make_hub, strict, call_ctx: ToolExecutionContext
) -> None:
    server, url = strict
    environ = {"STRICT_AUTH": "Bearer from-env"}
    hub = await make_hub({"strict": _config(url)}, environ=environ, egress_allowlist=["127.0.0.1"])
    server.big = True
    result = await hub.registry.execute("strict__look", {"q": "big"}, call_ctx)
    assert not result.ok and "exceeded" in result.text
