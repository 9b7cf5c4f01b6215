"""One MCP connection: requests matched to answers, the handshake, tools, cancellation.

Rules:
1. Every request gets a future keyed by its id; the transport's events resolve it. An answer
   to an id we did not send is logged and dropped.
2. A request that times out or whose caller is cancelled sends `notifications/cancelled`
   (bounded to one second, never blocking the caller longer) and, on HTTP, closes its
   exchange; the caller sees `ToolTimeoutError` or its own cancellation.
3. Server requests are answered: `ping` with `{}`, anything else with "method not found"
   (we declare no client capabilities). `notifications/tools/list_changed` calls the hook.
4. When the transport closes, every pending request fails with the reason and the
   connection is dead: the owner (`McpServer`) decides about restarting.
5. Handshake: `protocol="auto"` probes `server/discover` first and speaks 2026-07-28 when the
   server lists it; any error answer falls back to `initialize` (2025-11-25, accepting
   2025-06-18). A pinned revision skips the probe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from oxydra.core.errors import ToolError, ToolTimeoutError, WireError
from oxydra.core.log import get_logger
from oxydra.wire.mcp import (
    HANDSHAKE_VERSIONS,
    MODERN_VERSION,
    ErrorResponse,
    Event,
    Malformed,
    McpClientProtocol,
    Response,
    RpcError,
    ServerNotification,
    ServerRequest,
    cancelled,
)
from oxydra.wire.mcp_tools import ToolInfo, parse_tool_page

_log = get_logger(__name__)
MAX_PAGES = 50
_CANCEL_SECS = 1.0


class Transport(Protocol):
    """What a transport offers the client (stdio, Streamable HTTP, legacy SSE)."""

    async def send(
        self,
        data: bytes,
        *,
        request_id: int | str | None = None,
        method: str = "",
        tool: str | None = None,
    ) -> None:
        """Deliver one message."""
        ...

    async def abort(self, request_id: int | str) -> None:
        """Stop waiting for one request's answer at the transport level."""
        ...

    def negotiated(self, version: str | None, *, modern: bool) -> None:
        """The revision in force (HTTP puts it in headers); called before each handshake step."""
        ...

    async def close(self) -> None:
        """Release everything."""
        ...


class McpError(ToolError):
    """The server answered with a JSON-RPC error; `code` is its code."""

    def __init__(self, error: RpcError, method: str) -> None:
        super().__init__(f"MCP {method} failed: {error.message} (code {error.code})")
        self.code = error.code


class McpClient:
    """Requests and answers over one transport; see the module docstring.

    Args:
        name: the server's configured name (for messages and logs).
        protocol: the sans-I/O state (ids, era).
        on_tools_changed: called when the server says its tool list changed.
    """

    def __init__(
        self,
        name: str,
        protocol: McpClientProtocol | None = None,
        *,
        on_tools_changed: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.protocol = protocol if protocol is not None else McpClientProtocol()
        self.transport: Transport | None = None
        self._pending: dict[int | str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._on_tools_changed = on_tools_changed
        self.closed_reason: str | None = None
        self.malformed = 0
        self._answers: set[asyncio.Future[None]] = set()

    # -- inbound ----------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Route one inbound message (called by the transport)."""
        match event:
            case Response(id=ident, result=result):
                self._resolve(ident, result, None)
            case ErrorResponse(id=ident, error=error):
                self._resolve(ident, None, error)
            case ServerRequest():
                task = asyncio.ensure_future(self._answer(event))
                self._answers.add(task)
                task.add_done_callback(self._answers.discard)
            case ServerNotification(method=method):
                if method == "notifications/tools/list_changed" and self._on_tools_changed:
                    self._on_tools_changed()
            case Malformed(reason=reason, excerpt=excerpt):
                self.malformed += 1
                if self.malformed <= 5:
                    _log.warning("mcp %s sent garbage (%s): %r", self.name, reason, excerpt)

    def on_close(self, reason: str) -> None:
        """The transport ended: fail everything pending (called by the transport)."""
        if self.closed_reason is None:
            self.closed_reason = reason
        for _method, future in self._pending.values():
            if not future.done():
                future.set_exception(ToolError(f"MCP server '{self.name}' stopped: {reason}"))
        self._pending.clear()

    def _resolve(
        self, ident: int | str | None, result: dict[str, Any] | None, error: RpcError | None
    ) -> None:
        entry = self._pending.pop(ident, None) if ident is not None else None
        if entry is None:
            _log.debug("mcp %s answered unknown id %r", self.name, ident)
            return
        method, future = entry
        if future.done():
            return
        if error is not None:
            future.set_exception(McpError(error, method))
        else:
            future.set_result(result or {})

    async def _answer(self, request: ServerRequest) -> None:
        assert self.transport is not None
        if request.method == "ping":
            reply = self.protocol.respond(request.id, {})
        else:
            reply = self.protocol.respond_error(request.id, -32601, "method not found")
        with contextlib.suppress(ToolError):
            await self.transport.send(reply)

    # -- outbound ---------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float,
        tool: str | None = None,
    ) -> dict[str, Any]:
        """Send a request and wait for its result (rule 2 on timeout or cancellation)."""
        if self.transport is None or self.closed_reason is not None:
            raise ToolError(f"MCP server '{self.name}' is not connected")
        built = self.protocol.request(method, params)
        return await self._exchange(built, method, timeout, tool=tool, cancellable=True)

    async def _exchange(
        self,
        built: tuple[int, bytes],
        method: str,
        timeout: float,
        *,
        tool: str | None = None,
        cancellable: bool,
    ) -> dict[str, Any]:
        """Send one built request and await its answer; `initialize` and `server/discover`
        are not `cancellable` (the spec forbids cancelling them)."""
        assert self.transport is not None
        ident, data = built
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = (method, future)
        try:
            await self.transport.send(data, request_id=ident, method=method, tool=tool)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError as exc:
            if cancellable:
                await self._cancel(ident, f"no answer within {timeout:g} seconds")
            raise ToolTimeoutError(
                f"MCP server '{self.name}' did not answer {method} within {timeout:g} seconds"
            ) from exc
        except asyncio.CancelledError:
            if cancellable:
                await self._cancel(ident, "the caller cancelled the request")
            raise
        finally:
            self._pending.pop(ident, None)

    async def _cancel(self, ident: int, reason: str) -> None:
        transport = self.transport
        if transport is None or self.closed_reason is not None:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CANCEL_SECS):
                await transport.abort(ident)
                await transport.send(cancelled(ident, reason), method="notifications/cancelled")

    async def listen_for_changes(self) -> None:
        """Stateless era: open `subscriptions/listen` for tool list changes (long-lived).

        The request stays open for the connection's life; its notifications arrive like any
        other, and its final result (sent only when the server ends the subscription) is
        dropped as an answer nobody waits for.
        """
        assert self.transport is not None
        params = {"notifications": {"toolsListChanged": True}}
        ident, data = self.protocol.request("subscriptions/listen", params)
        await self.transport.send(data, request_id=ident, method="subscriptions/listen")

    async def notify(self, data: bytes, method: str) -> None:
        """Send a notification built by the protocol."""
        assert self.transport is not None
        await self.transport.send(data, method=method)

    # -- lifecycle --------------------------------------------------------------------

    async def connect(self, transport: Transport, *, protocol: str, timeout: float) -> None:
        """Negotiate the revision (rule 5); raise ToolError or ToolTimeoutError on failure."""
        self.transport = transport
        if protocol in ("auto", MODERN_VERSION):
            transport.negotiated(MODERN_VERSION, modern=True)
            ident_data = self.protocol.discover()
            try:
                result = await self._exchange(
                    ident_data, "server/discover", timeout, cancellable=False
                )
            except McpError:
                result = None
                if protocol == MODERN_VERSION:
                    raise
            if result is not None and self.protocol.accept_discover(result):
                return
            transport.negotiated(None, modern=False)
            if protocol == MODERN_VERSION:
                raise ToolError(f"MCP server '{self.name}' does not offer {MODERN_VERSION}")
        if protocol in HANDSHAKE_VERSIONS:
            self.protocol.versions = (protocol,)
        result = await self._exchange(
            self.protocol.initialize(), "initialize", timeout, cancellable=False
        )
        try:
            initialized = self.protocol.accept_initialize(result)
        except WireError as exc:
            raise ToolError(f"MCP server '{self.name}': {exc}") from exc
        transport.negotiated(self.protocol.protocol_version, modern=False)
        await self.notify(initialized, "notifications/initialized")

    async def list_tools(self, *, timeout: float) -> tuple[list[ToolInfo], list[str]]:
        """Every tool, following `nextCursor` (at most MAX_PAGES pages); and the problems."""
        tools: list[ToolInfo] = []
        problems: list[str] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = {"cursor": cursor} if cursor else None
            page = parse_tool_page(await self.request("tools/list", params, timeout=timeout))
            tools += page.tools
            problems += page.problems
            cursor = page.next_cursor
            if cursor is None:
                return tools, problems
        problems.append(f"tools/list still had more pages after {MAX_PAGES}; the rest ignored")
        return tools, problems

    async def close(self) -> None:
        """Close the transport; pending requests fail."""
        transport, self.transport = self.transport, None
        self.on_close("closed by us")
        if transport is not None:
            await transport.close()
