"""`oxydra mcp serve`: the agent as a stdio MCP server, so editors and chat apps can use it.

One tool, `run_turn`: a prompt and an optional session name; the agent runs one turn in that
session (created on first use, continued after) with every limit of `[runtime]`, the same
tools and the same approval policy (no approver is reachable over stdio, so
`[tools.approval] default` decides), and answers with the final text; a turn that stops
early is an `isError` result naming the reason.

Protocol (server side of `oxydra.wire.mcp`): newline-delimited JSON-RPC on stdin/stdout;
`initialize` answered with the client's revision when we speak it, else 2025-11-25;
`server/discover` is answered "method not found", so clients use the handshake; `ping`;
`tools/list`; `tools/call` runs in its own task; `notifications/cancelled` cancels that task
(the runtime then records the turn as cancelled). stdout carries only protocol messages:
logs go to stderr.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from oxydra import __version__
from oxydra.core.ids import new_session_id
from oxydra.core.stream import StreamItem
from oxydra.runtime import TurnOutcome, TurnRequest, TurnRunner
from oxydra.wire.mcp import (
    HANDSHAKE_VERSIONS,
    INVALID_PARAMS,
    LATEST_HANDSHAKE,
    METHOD_NOT_FOUND,
    LineSplitter,
    McpClientProtocol,
    ServerNotification,
    ServerRequest,
    decode_messages,
)

TOOL = "run_turn"
_SESSION = re.compile(r"[^A-Za-z0-9_.-]")
_TOOL_DECL = {
    "name": TOOL,
    "description": (
        "Hand a task to the Oxydra agent: it runs one turn (using its own tools under its "
        "own limits) in the named session and returns its answer. Reuse a session name to "
        "continue a conversation."
    ),
    "inputSchema": {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "description": "The task or question."},
            "session": {
                "type": "string",
                "description": "Session name; the same name continues the conversation.",
            },
        },
        "required": ["prompt"],
    },
    "annotations": {"readOnlyHint": False, "openWorldHint": True},
}

Write = Callable[[bytes], Awaitable[None]]


class AgentMcpServer:
    """Answers one client's requests; `handle(line)` per input line.

    Args:
        runner: runs turns (the agent runtime).
        user_id: whose workspace and sessions the turns use.
        write: sends one encoded message (the transport adds the newline).
    """

    def __init__(self, runner: TurnRunner, *, user_id: str, write: Write) -> None:
        self.runner = runner
        self.user_id = user_id
        self._write = write
        self._calls: dict[int | str, asyncio.Task[None]] = {}

    async def handle(self, line: bytes) -> None:
        """Act on one inbound line (a request, a notification, or garbage)."""
        for event in decode_messages(line):
            if isinstance(event, ServerRequest):
                await self._request(event)
            elif isinstance(event, ServerNotification):
                self._notification(event)

    async def _request(self, request: ServerRequest) -> None:
        match request.method:
            case "initialize":
                asked = request.params.get("protocolVersion")
                version = asked if asked in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE
                await self._reply(request.id, _initialize_result(str(version)))
            case "ping":
                await self._reply(request.id, {})
            case "tools/list":
                await self._reply(request.id, {"tools": [_TOOL_DECL]})
            case "tools/call":
                task = asyncio.ensure_future(self._call(request))
                self._calls[request.id] = task
                task.add_done_callback(lambda _t: self._calls.pop(request.id, None))
            case _:
                message = f"method {request.method!r} not found"
                await self._write(
                    McpClientProtocol.respond_error(request.id, METHOD_NOT_FOUND, message)
                )

    def _notification(self, note: ServerNotification) -> None:
        if note.method == "notifications/cancelled":
            task = self._calls.get(note.params.get("requestId"))  # type: ignore[arg-type]
            if task is not None:
                task.cancel()

    async def _call(self, request: ServerRequest) -> None:
        name = request.params.get("name")
        args = request.params.get("arguments") or {}
        prompt = args.get("prompt") if isinstance(args, dict) else None
        if name != TOOL:
            problem = f"unknown tool {name!r}"
            await self._write(McpClientProtocol.respond_error(request.id, INVALID_PARAMS, problem))
            return
        if not isinstance(prompt, str) or not prompt.strip():
            text = "'prompt' must be a non-empty string"
            await self._reply(
                request.id, {"content": [{"type": "text", "text": text}], "isError": True}
            )
            return
        session = _session_id(args.get("session"))
        try:
            text, outcome = await self._turn(prompt, session)
        except asyncio.CancelledError:
            return  # the client cancelled: no answer is sent (the spec's rule)
        content = [{"type": "text", "text": text}]
        result: dict[str, Any] = {"content": content, "isError": not outcome.ok}
        result["structuredContent"] = {"session": session, "reason": outcome.reason}
        await self._reply(request.id, result)

    async def _turn(self, prompt: str, session: str) -> tuple[str, TurnOutcome]:
        async def sink(_item: StreamItem) -> None:
            return None

        request = TurnRequest(
            user_id=self.user_id,
            session_id=session,
            turn_id=new_session_id(),
            prompt=prompt,
            channel="mcp",
        )
        outcome = await self.runner.run_turn(request, sink)
        if outcome.ok and outcome.response is not None:
            return outcome.response.message.text, outcome
        return f"the turn stopped ({outcome.reason}): {outcome.detail}", outcome

    async def _reply(self, ident: int | str, result: dict[str, Any]) -> None:
        await self._write(McpClientProtocol.respond(ident, result))

    async def aclose(self) -> None:
        """Cancel every running turn."""
        tasks = list(self._calls.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _initialize_result(version: str) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": "oxydra", "version": __version__},
        "instructions": f"Use {TOOL} to hand a task to the Oxydra agent.",
    }


def _session_id(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        return new_session_id()
    return "mcp-" + _SESSION.sub("_", raw.strip())[:64]


async def serve_stdio(runner: TurnRunner, *, user_id: str) -> None:
    """Serve one client on this process's stdin/stdout until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=8 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    lock = asyncio.Lock()

    async def write(data: bytes) -> None:
        async with lock:
            await asyncio.to_thread(_write_stdout, data + b"\n")

    server = AgentMcpServer(runner, user_id=user_id, write=write)
    splitter = LineSplitter()
    try:
        while chunk := await reader.read(64 * 1024):
            for line in splitter.feed(chunk):
                await server.handle(line)
        for line in splitter.feed_eof():
            await server.handle(line)
    finally:
        await server.aclose()


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


async def run_serve(config: Any, *, user_id: str, workspace: Any, environ: dict[str, str]) -> int:
    """Open the agent for `user_id` (MCP servers of its own included) and serve stdio."""
    from oxydra.app.services import open_services
    from oxydra.runtime import provision_workspace

    provision_workspace(workspace)
    services = await open_services(config, user_id=user_id, workspace=workspace, environ=environ)
    try:
        await serve_stdio(services.agent.runtime, user_id=user_id)
    finally:
        await services.aclose()
    return 0
