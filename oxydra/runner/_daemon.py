"""The resident part of the runner: supervise one user's guest, answer the control socket.

Lifecycle: launch → (daemon: bind the control socket) → wait ≤30 s for the guest's gateway
marker → stand aside until SIGTERM/SIGINT or a `shutdown_user` → stop the guest → remove
the socket. A guest that dies on its own is reported (`healthy=false` with its exit status)
rather than restarted; `runner stop` then ends the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from oxydra.core.errors import RunnerError
from oxydra.core.tiers import SandboxTier
from oxydra.runner._control import ControlServer, descends_from
from oxydra.runner._guest import LaunchResult, log_tail
from oxydra.runner._logs import read_logs
from oxydra.runner._workspace import UserWorkspace
from oxydra.wire.control import (
    ControlError,
    ControlHealth,
    ControlRequest,
    ControlResponse,
    HealthCheckRequest,
    LogsRequest,
    ShutdownStatus,
    ShutdownUser,
)

GATEWAY_WAIT_SECS = 30.0
_POLL = 0.05
_MARKER_MAX = 512
_GUEST_ENDPOINT = re.compile(r"ws://(127\.0\.0\.1|0\.0\.0\.0|localhost|\[::1\]):([0-9]{1,5})/ws")

Emit = Callable[[str, object], None]


@dataclass
class Supervisor:
    """One user's guest and the control socket in front of it."""

    user_id: str
    workspace: UserWorkspace
    launch: LaunchResult
    emit: Emit
    stopped: bool = False
    exit_status: int | None = None
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    def health(self) -> ControlHealth:
        """The answer to `health_check` (blocks: a container guest asks the engine)."""
        status = self.launch.status
        code = self.exit_status if self.exit_status is not None else self.launch.guest.exit_code()
        message = None if code is None else f"guest exited with status {code}"
        return ControlHealth(
            user_id=self.user_id,
            healthy=code is None and not self.stopped,
            sandbox_tier=str(status.sandbox_tier),
            shell_available=status.shell_available,
            browser_available=status.browser_available,
            sidecar_available=status.sidecar_available,
            shutdown=self.stopped,
            startup_status=msgspec.to_builtins(status),
            message=message,
            log_dir=str(self.workspace.logs),
            runtime_pid=self.launch.guest.pid,
            runtime_container_name=self.launch.guest.container_name,
            hardening=list(status.hardening),
            degraded_reasons=[f"{r.code}:{r.detail}" for r in status.degraded_reasons],
        )

    async def handle(self, request: ControlRequest) -> ControlResponse:
        """Answer one control request."""
        match request:
            case HealthCheckRequest():
                return await asyncio.to_thread(self.health)
            case ShutdownUser():
                return await self._shutdown(request)
            case LogsRequest():
                docker = self.launch.status.sandbox_tier == SandboxTier.CONTAINER
                return await asyncio.to_thread(read_logs, self.workspace, request, docker=docker)

    async def _shutdown(self, request: ShutdownUser) -> ControlResponse:
        if request.user_id != self.user_id:
            return ControlError(
                code="unknown_user", message=f"this daemon serves '{self.user_id}' only"
            )
        code = await asyncio.to_thread(self.launch.guest.exit_code)
        already = self.stopped or code is not None
        await self.stop_guest()
        self.stop_event.set()
        return ShutdownStatus(
            user_id=self.user_id,
            shutdown=True,
            already_stopped=already,
            message="guest stopped" if not already else "guest was not running",
        )

    async def stop_guest(self) -> None:
        """Stop the guest (idempotent) and remove its gateway marker."""
        if not self.stopped:
            self.stopped = True
            await asyncio.to_thread(self.launch.stop)
        with contextlib.suppress(FileNotFoundError):
            self.workspace.gateway_marker.unlink()

    async def wait_for_gateway(self, timeout: float | None = None) -> str | None:
        """The endpoint once the guest wrote its marker; None on timeout.

        A guest in a container or microVM writes its own marker (`launch.guest_marker`):
        that text is the guest's, so it is read without following links, checked to be a
        loopback `ws://` endpoint, mapped to the host's side, and only then published as
        `ipc/gateway-endpoint` for clients.

        Raises:
            RunnerError: the guest exited first (with the end of its stderr log).
        """
        marker = self.launch.guest_marker or self.workspace.gateway_marker
        deadline = time.monotonic() + (timeout or self.launch.ready_timeout)
        while time.monotonic() < deadline:
            text = read_marker(marker)
            if text and self.launch.guest_marker is not None:
                text = self._publish(text)
            if text:
                return text
            code = await asyncio.to_thread(self.launch.guest.exit_code)
            if code is not None:
                tail = log_tail(self.workspace.log_file(self.launch.guest.role, "stderr"))
                raise RunnerError(
                    f"the guest exited with status {code} before its gateway came up; "
                    f"the end of its log:\n{tail}"
                )
            await asyncio.sleep(_POLL)
        return None

    def _publish(self, announced: str) -> str | None:
        endpoint = guest_endpoint(announced)
        if endpoint is None:
            return None
        if self.launch.host_endpoint is not None:
            endpoint = self.launch.host_endpoint(endpoint)
        marker = self.workspace.gateway_marker
        partial = marker.with_name(marker.name + ".partial")
        partial.write_text(endpoint + "\n")
        partial.chmod(0o644)
        partial.replace(marker)
        return endpoint

    def _is_guest(self, pid: int) -> bool:
        """Whether a control-socket peer is the guest or one of its processes."""
        guests = [self.launch.guest.pid]
        if self.launch.sidecar is not None:
            guests.append(self.launch.sidecar.pid)
        return any(g is not None and descends_from(pid, g) for g in guests)

    async def run(self, *, control: bool, on_ready: Callable[[], None] | None = None) -> int:
        """Serve until told to stop; returns the process exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        server = (
            ControlServer(self.workspace.control_socket, self.handle, self._is_guest)
            if control
            else None
        )
        try:
            if server is not None:
                await server.start()
                self.emit("control_socket", server.path)
            await self._announce_gateway()
            if on_ready is not None:
                on_ready()
            return await self._stand_aside(control)
        finally:
            await self.stop_guest()
            if server is not None:
                await server.close()

    async def _announce_gateway(self) -> None:
        endpoint = await self.wait_for_gateway()
        if endpoint is None:
            self.emit(
                "warning",
                f"no gateway marker after {self.launch.ready_timeout:g}s (still starting?)",
            )
        else:
            self.emit("gateway_endpoint", endpoint)
        self.emit("status", "running")

    async def _stand_aside(self, control: bool) -> int:
        exited = asyncio.ensure_future(asyncio.to_thread(self.launch.guest.wait, None))
        stop = asyncio.ensure_future(self.stop_event.wait())
        await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
        if stop.done() or not control:
            stop.cancel()
            await self.stop_guest()
            with contextlib.suppress(asyncio.CancelledError):
                await exited
            code = self.exit_status = await asyncio.to_thread(self.launch.guest.exit_code)
            return 0 if stop.done() or not code else 1
        self.exit_status = exited.result()  # dead guest: keep answering until `runner stop`
        await self.stop_event.wait()
        return 0


def read_marker(path: Path) -> str | None:
    """A marker's text (at most 512 bytes, not through a link), or None when absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, _MARKER_MAX)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace").strip() or None


def guest_endpoint(text: str) -> str | None:
    """`ws://<loopback or any>:<port>/ws` as announced by a guest, normalised; else None."""
    found = _GUEST_ENDPOINT.fullmatch(text)
    if found is None or not 0 < int(found.group(2)) < 65536:
        return None
    host = "127.0.0.1" if found.group(1) == "0.0.0.0" else found.group(1)
    return f"ws://{host}:{int(found.group(2))}/ws"
