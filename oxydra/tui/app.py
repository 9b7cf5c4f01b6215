"""`oxydra tui`: the terminal client.

Connect-only: it finds a running `vm` through the workspace's endpoint marker (or
`--gateway-endpoint`) and its token (`OXYDRA_GATEWAY_TOKEN`, `[gateway] auth_token`, or
`<workspace>/ipc/gateway-token`); with no running `vm` it exits with a clear message. The
terminal is restored on every exit path, crash included (blessed's context managers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

from oxydra.core.errors import ChannelError, ConfigError, GatewayError
from oxydra.tui.channel import TuiChannel
from oxydra.tui.client import GatewayClient
from oxydra.tui.model import Action, TuiState, apply_frame, handle_key
from oxydra.tui.render import layout
from oxydra.wire.gateway import (
    ApprovalResponse,
    ArchiveSession,
    CancelActiveTurn,
    CancelAllActiveTurns,
    ClientFrame,
    CreateSession,
    DeleteSession,
    ExportSession,
    HealthCheck,
    ListSessions,
    RenameSession,
    SendTurn,
    SwitchSession,
    UnarchiveSession,
)


def discover(args: argparse.Namespace) -> tuple[str, str]:
    """The gateway endpoint and token to use, or a ConfigError saying what is missing."""
    from oxydra.config.workspace import ipc_dir, resolve_workspace

    workspace = resolve_workspace(args.user, getattr(args, "workspace", None))
    ipc = ipc_dir(workspace)
    endpoint = args.gateway_endpoint
    if not endpoint:
        marker = ipc / "gateway-endpoint"
        if not marker.is_file():
            raise ConfigError(
                f"no running vm for user '{args.user}' (no endpoint marker at {marker})",
                hint="start it with `oxydra runner start` or `oxydra vm`, "
                "or pass --gateway-endpoint",
            )
        endpoint = marker.read_text().strip()
    token = os.environ.get("OXYDRA_GATEWAY_TOKEN") or os.environ.get("OXYDRA__GATEWAY__AUTH_TOKEN")
    token_file = ipc / "gateway-token"
    if not token and token_file.is_file():
        token = token_file.read_text().strip()
    if not token:
        raise ConfigError(f"no gateway token (looked in OXYDRA_GATEWAY_TOKEN and {token_file})")
    return endpoint, token


def run_tui(args: argparse.Namespace) -> int:
    """Entry of the `tui` mode."""
    endpoint, token = discover(args)
    return asyncio.run(_main(endpoint, token, args.user, args.session, lambda: discover(args)))


async def _main(
    endpoint: str,
    token: str,
    user: str,
    session: str | None,
    rediscover: Callable[[], tuple[str, str]] | None = None,
) -> int:
    probe = GatewayClient(endpoint, token, user, session)
    try:
        await probe.connect_once()
    except GatewayError as exc:
        print(f"oxydra tui: {exc}", file=sys.stderr)
        return 1
    await probe.close()
    import blessed

    term = blessed.Terminal()
    client = GatewayClient(endpoint, token, user, probe.session_id, rediscover=rediscover)
    app = _App(term, TuiChannel(client), TuiState(user_id=user))
    # cbreak first: once the alternate screen shows, keys (Ctrl-D included) reach the app
    # instead of the line discipline, which would swallow an early Ctrl-D as end-of-file.
    with term.cbreak(), term.fullscreen(), term.hidden_cursor():
        client.start()
        try:
            await app.run()
        finally:
            await client.close()
    return 0


def command_frame(name: str, argument: str, rid: str, sid: str) -> ClientFrame | str:
    """The frame a slash command sends, or what is wrong with it (said, nothing sent)."""
    target = argument or sid
    match name:
        case "new":
            return CreateSession(request_id=rid, display_name=argument or None)
        case "sessions":
            every = argument == "all"
            return ListSessions(
                request_id=rid, include_archived=every, include_subagent_sessions=every
            )
        case "switch" | "unarchive" | "delete" if not argument:
            return f"/{name} needs a session id or prefix (this session: {sid})"
        case "switch":
            return SwitchSession(request_id=rid, session_id=argument)
        case "rename":
            return RenameSession(request_id=rid, session_id=sid, display_name=argument or None)
        case "archive":
            return ArchiveSession(request_id=rid, session_id=target)
        case "unarchive":
            return UnarchiveSession(request_id=rid, session_id=argument)
        case "export":
            return ExportSession(request_id=rid, session_id=target)
        case "delete":
            return DeleteSession(request_id=rid, session_id=argument)
        case "cancel":
            return CancelActiveTurn(request_id=rid, session_id=sid)
        case "cancelall":
            return CancelAllActiveTurns(request_id=rid)
        case _:
            return HealthCheck(request_id=rid)


class _App:
    """Glue: keys and frames into the state, the state onto the terminal."""

    def __init__(self, term: Any, channel: TuiChannel, state: TuiState) -> None:
        self.term, self.channel, self.state = term, channel, state
        self.keys: asyncio.Queue[str] = asyncio.Queue()
        self.done = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(sys.stdin.fileno(), self._read_keys)
        frames = asyncio.create_task(self._frames())
        try:
            self.draw()
            while not self.done.is_set():
                key = await self.keys.get()
                await self._perform(handle_key(self.state, key))
                self.draw()
        finally:
            loop.remove_reader(sys.stdin.fileno())
            frames.cancel()

    def _read_keys(self) -> None:
        while True:
            key = self.term.inkey(timeout=0)
            if not key:
                return
            name = key.name or str(key)
            if str(key) == "\x03":
                name = "KEY_CTRL_C"
            elif str(key) in ("\x04", "\x11"):
                name = "KEY_CTRL_D"
            elif str(key) in ("\x1b\r", "\x1b\n"):
                name = "KEY_ALT_ENTER"
            elif str(key) in ("\r", "\n"):
                name = "KEY_ENTER"
            self.keys.put_nowait(name)

    async def _frames(self) -> None:
        async for frame in self.channel.listen():
            apply_frame(self.state, frame)
            self.draw()

    async def _perform(self, action: Action) -> None:
        rid = uuid.uuid4().hex[:12]
        sid = self.state.session_id
        try:
            match action.kind:
                case "quit":
                    self.done.set()
                case "send":
                    await self.channel.send(
                        SendTurn(
                            request_id=rid,
                            session_id=sid,
                            turn_id=uuid.uuid4().hex[:12],
                            prompt=action.text,
                        )
                    )
                case "cancel":
                    await self.channel.send(CancelActiveTurn(request_id=rid, session_id=sid))
                case "approve":
                    self.state.approval = None
                    await self.channel.send(
                        ApprovalResponse(
                            request_id=rid, approval_id=action.argument, approved=action.approved
                        )
                    )
                case "command":
                    await self._command(action, rid, sid)
                case _:
                    pass
        except ChannelError as exc:
            self.state.add("error", str(exc))

    async def _command(self, action: Action, rid: str, sid: str) -> None:
        frame = command_frame(action.text, action.argument, rid, sid)
        if isinstance(frame, str):
            self.state.add("error", frame)
        else:
            await self.channel.send(frame)

    def draw(self) -> None:
        term = self.term
        styles = {
            "user": term.bold_cyan,
            "assistant": term.normal,
            "system": term.bright_black,
            "error": term.bold_red,
            "status": term.black_on_white,
            "input": term.bold,
            "blank": term.normal,
        }
        rows = layout(self.state, term.width, term.height)
        out = [term.home]
        for y, (style, text) in enumerate(rows):
            line = text.ljust(term.width)[: term.width]
            out.append(term.move_xy(0, y) + str(styles[style]) + line + term.normal)
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write("".join(out))
            sys.stdout.flush()
