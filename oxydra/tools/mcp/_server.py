"""One configured MCP server over its life: start, list tools, call, restart, stop.

States: `starting` → `ready`; a handshake that fails or does not finish within
`startup_timeout_secs` → `failed` (reported, skipped: the agent goes on without it). A server
that dies while `ready` is `restarting`: it is started again after `restart_backoff_secs`,
doubling each time up to 30 s, at most `[mcp] restart_max` times in a row (a successful
start resets the count); then `failed`. A call made while it restarts fails at once with
the reason, so the model can try something else. Every transition is logged and kept in
`error` for `mcp list`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from oxydra.config.schema import McpConfig, McpServerConfig
from oxydra.core.errors import OxydraError, ToolError
from oxydra.core.log import get_logger
from oxydra.security import SsrfGuard
from oxydra.tools.mcp._client import McpClient, McpError, Transport
from oxydra.tools.mcp._http import SESSION_EXPIRED
from oxydra.tools.mcp._launch import Confinement, LaunchSpec, spawn
from oxydra.wire.mcp import McpClientProtocol
from oxydra.wire.mcp_tools import ToolInfo

_log = get_logger(__name__)
MAX_BACKOFF_SECS = 30.0
_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$|^env:([A-Za-z_][A-Za-z0-9_]*)$")


class ServerState(enum.StrEnum):
    """Where a server is in its life (see the module docstring)."""

    DISABLED = "disabled"
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


def resolve_refs(
    values: Mapping[str, str], environ: Mapping[str, str], where: str
) -> dict[str, str]:
    """`${VAR}` / `env:VAR` values read from `environ`; ToolError naming the key when unset."""
    out: dict[str, str] = {}
    for key, value in values.items():
        match = _REF.match(value)
        if match is None:
            out[key] = value
            continue
        var = match.group(1) or match.group(2)
        if var not in environ:
            raise ToolError(f"{where}.{key} refers to ${{{var}}}, which is not set")
        out[key] = environ[var]
    return out


def is_reference(value: str) -> bool:
    """Whether a config value is a reference rather than an inlined literal."""
    return _REF.match(value) is not None


class McpServer:
    """A configured server and its live connection.

    Args:
        name: the key under `[mcp.servers]`.
        config: its section.
        settings: `[mcp]` (restart policy, allow_unconfined).
        environ: where references are resolved.
        directory: the server's own directory (stdio servers are confined to it).
        guard: the SSRF guard for HTTP servers.
        on_tools: awaited after each successful (re)listing, to (re)register tools.
    """

    def __init__(
        self,
        name: str,
        config: McpServerConfig,
        *,
        settings: McpConfig,
        environ: Mapping[str, str],
        directory: Path,
        guard: SsrfGuard | None = None,
        on_tools: Callable[[McpServer], Awaitable[None]] | None = None,
        http_factory: Callable[[SsrfGuard], Any] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.settings = settings
        self.environ = environ
        self.directory = directory
        self.guard = guard
        self.on_tools = on_tools
        self._http_factory = http_factory
        self.state = ServerState.STARTING if config.enabled else ServerState.DISABLED
        self.error: str | None = None
        self.tools: list[ToolInfo] = []
        self.problems: list[str] = []
        self.restarts = 0
        self.confinement: Confinement | None = None
        self.client: McpClient | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._reconnecting = asyncio.Lock()

    @property
    def protocol_version(self) -> str | None:
        """The negotiated revision, once connected."""
        return self.client.protocol.protocol_version if self.client else None

    async def start(self) -> bool:
        """Connect and list tools within `startup_timeout_secs`; False (and `error`) if not."""
        if not self.config.enabled:
            return False
        self.state = ServerState.STARTING
        try:
            async with asyncio.timeout(self.config.startup_timeout_secs):
                client = await self._connect()
                tools, problems = await client.list_tools(timeout=self.config.timeout_secs)
        except Exception as exc:  # any failure: report and skip, the agent goes on
            if not isinstance(exc, OxydraError | TimeoutError | OSError):
                _log.exception("mcp server %s failed to start", self.name)
            await self._drop_client()
            self.state = ServerState.FAILED
            self.error = _describe_start(exc, self.config.startup_timeout_secs)
            _log.warning("mcp server %s skipped: %s", self.name, self.error)
            return False
        self.tools, self.problems = tools, problems
        self.state, self.error = ServerState.READY, None
        if self.on_tools is not None:
            await self.on_tools(self)
        return True

    async def _connect(self) -> McpClient:
        client = McpClient(self.name, McpClientProtocol(), on_tools_changed=self._tools_changed)
        self.client = client
        transport = await self._transport(client)
        await client.connect(
            transport, protocol=self.config.protocol, timeout=self.config.startup_timeout_secs
        )
        listen = getattr(transport, "listen", None)
        if listen is not None and client.protocol.era == "handshake":
            await listen()
        if client.protocol.era == "modern" and client.protocol.tools_list_changes:
            await client.listen_for_changes()
        return client

    async def _transport(self, client: McpClient) -> Transport:
        where = f"mcp.servers.{self.name}"
        if self.config.command is not None:
            from oxydra.tools.mcp._stdio import StdioTransport

            spec = LaunchSpec(
                argv=[self.config.command, *self.config.args],
                directory=self.directory,
                env=resolve_refs(self.config.env, self.environ, f"{where}.env"),
                cwd=Path(self.config.cwd) if self.config.cwd else None,
                read_paths=self.config.read_paths,
                confine=self.name not in self.settings.allow_unconfined,
            )
            process, self.confinement = await spawn(spec, self.environ)
            return StdioTransport(
                process,
                name=self.name,
                on_event=client.on_event,
                on_close=lambda reason: self._closed(reason, client),
            )
        return await self._http(client, where)

    async def _http(self, client: McpClient, where: str) -> Transport:
        from oxydra.tools.mcp._http import LegacySseTransport, StreamableHttpTransport

        assert self.config.url is not None and self.guard is not None
        headers = resolve_refs(self.config.headers, self.environ, f"{where}.headers")
        http = (
            _http_client(self.guard)
            if self._http_factory is None
            else self._http_factory(self.guard)
        )
        kind = self.config.transport
        if kind == "sse" or (kind == "auto" and self.config.url.rstrip("/").endswith("/sse")):
            legacy = LegacySseTransport(
                self.config.url, name=self.name, client=http, headers=headers,
                on_event=client.on_event, on_close=lambda reason: self._closed(reason, client),
            )  # fmt: skip
            await legacy.open(self.config.startup_timeout_secs)
            return legacy
        return StreamableHttpTransport(
            self.config.url, name=self.name, client=http, headers=headers,
            on_event=client.on_event, on_close=lambda reason: self._closed(reason, client),
        )  # fmt: skip

    # -- calls -------------------------------------------------------------------------

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """`tools/call` within `timeout_secs`; ToolError when the server is not ready."""
        client = self.client
        if self.state is not ServerState.READY or client is None:
            why = f": {self.error}" if self.error else ""
            raise ToolError(f"MCP server '{self.name}' is {self.state.value}{why}")
        params = {"name": tool, "arguments": arguments}
        try:
            return await client.request(
                "tools/call", params, timeout=self.config.timeout_secs, tool=tool
            )
        except McpError as exc:
            if exc.code != SESSION_EXPIRED:
                raise
        async with self._reconnecting:
            if self.client is client:  # the first caller to notice starts the new session
                _log.info("mcp server %s ended our session; starting a new one", self.name)
                await self._drop_client()
                await self.start()
        if self.client is None or self.state is not ServerState.READY:
            raise ToolError(f"MCP server '{self.name}' ended the session and did not come back")
        return await self.client.request(
            "tools/call", params, timeout=self.config.timeout_secs, tool=tool
        )

    # -- crashes, restarts, list changes ---------------------------------------------------

    def _closed(self, reason: str, client: McpClient) -> None:
        client.on_close(reason)
        if self._stopping or client is not self.client or self.state is not ServerState.READY:
            return
        self.state, self.error = ServerState.RESTARTING, f"crashed: {reason}"
        _log.warning("mcp server %s stopped (%s); restarting", self.name, reason)
        self._restart_task = asyncio.ensure_future(self._restart())

    async def _restart(self) -> None:
        await self._drop_client()
        delay = self.settings.restart_backoff_secs
        while not self._stopping:
            if self.restarts >= self.settings.restart_max:
                self.state = ServerState.FAILED
                self.error = f"gave up after {self.restarts} restarts; last: {self.error}"
                _log.error("mcp server %s: %s", self.name, self.error)
                return
            await asyncio.sleep(delay)
            self.restarts += 1
            last = self.error
            if await self.start():
                _log.warning("mcp server %s restarted (restart %d)", self.name, self.restarts)
                return
            self.state, self.error = ServerState.RESTARTING, self.error or last
            delay = min(delay * 2, MAX_BACKOFF_SECS)

    def _tools_changed(self) -> None:
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        client = self.client
        if client is None or self.state is not ServerState.READY:
            return
        try:
            self.tools, self.problems = await client.list_tools(timeout=self.config.timeout_secs)
        except OxydraError as exc:
            _log.warning("mcp server %s: re-listing tools failed: %s", self.name, exc)
            return
        if self.on_tools is not None:
            await self.on_tools(self)

    async def _drop_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def stop(self) -> None:
        """Close the connection (and the process); no restart follows."""
        self._stopping = True
        for task in (self._restart_task, self._refresh_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self._drop_client()
        if self.state is not ServerState.DISABLED:
            self.state = ServerState.STOPPED


def _http_client(guard: SsrfGuard) -> Any:
    import httpx

    from oxydra.security import GuardedTransport

    return httpx.AsyncClient(
        transport=GuardedTransport(guard),
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(30.0, read=None),
    )


def _describe_start(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer to the handshake within {timeout:g} seconds"
    return str(exc) or type(exc).__name__
