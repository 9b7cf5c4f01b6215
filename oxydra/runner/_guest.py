"""A launched guest, whatever its tier: what the daemon can ask of it.

The methods block (a `waitpid`, a Docker API call); the daemon calls them from a thread.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from oxydra.core.errors import RunnerError
from oxydra.runner._workspace import UserWorkspace
from oxydra.wire.envelope import BootstrapEnvelope, StartupStatus


class Guest(Protocol):
    """One running guest (the runtime, or its shell sidecar)."""

    role: str
    pid: int | None
    container_name: str | None

    def exit_code(self) -> int | None:
        """The exit status if it has ended, else None (does not block)."""
        ...

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until it ends (or `timeout`); its exit status, or None on timeout."""
        ...

    def stop(self, grace: float = 10.0) -> None:
        """Ask it to stop, force it after `grace` seconds, and release what it held."""
        ...


@dataclass
class LaunchResult:
    """A started guest and what it was told."""

    guest: Guest
    envelope: BootstrapEnvelope
    warnings: list[str] = field(default_factory=list)
    sidecar: Guest | None = None
    closers: list[Callable[[], object]] = field(default_factory=list)
    guest_marker: Path | None = None
    """Where the guest writes its gateway marker when that is not `ipc/gateway-endpoint`
    (container, micro_vm): the runner checks it and writes the real marker itself."""
    host_endpoint: Callable[[str], str] | None = None
    """The endpoint the host reaches for the one the guest announced (a forwarded port)."""
    ready_timeout: float = 30.0

    @property
    def status(self) -> StartupStatus:
        """The startup status sent in the envelope."""
        assert self.envelope.startup_status is not None
        return self.envelope.startup_status

    def stop(self, grace: float = 10.0) -> None:
        """Stop the runtime, then its sidecar, then release clients (idempotent)."""
        self.guest.stop(grace)
        if self.sidecar is not None:
            self.sidecar.stop(grace)
        while self.closers:
            self.closers.pop()()


class ProcessGuest:
    """A guest that is a local child process in its own process group (process tier, VMM)."""

    container_name: str | None = None

    def __init__(self, popen: subprocess.Popen[bytes], role: str) -> None:
        self.popen = popen
        self.role = role
        self.pid: int | None = popen.pid

    def exit_code(self) -> int | None:
        """See `Guest.exit_code`."""
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """See `Guest.wait`."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL to the whole group (the shell commands it started too)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            if self.wait(grace) is None:
                _kill_group(self.popen.pid)
                self.popen.wait()
        _kill_group(self.popen.pid)  # stragglers left in the group


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def open_log(path: Path) -> int:
    """An append-only fd for a guest's stdout or stderr log (0600)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    try:
        data = path.read_bytes()[-16384:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def spawn_monitor(
    workspace: UserWorkspace, environ: Mapping[str, str], argv: list[str], what: str
) -> subprocess.Popen[bytes]:
    """Start a VM monitor (QEMU, Firecracker) in `ipc/`, its own session, output to the logs.

    Raises:
        RunnerError: it could not be started.
    """
    out = open_log(workspace.log_file("oxydra-vm", "stdout"))
    err = open_log(workspace.log_file("oxydra-vm", "stderr"))
    env = {k: environ[k] for k in ("PATH", "LANG") if k in environ}
    try:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
            cwd=workspace.ipc, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        raise RunnerError(f"cannot start {what} ({argv[0]}): {exc}") from exc
    finally:
        os.close(out)
        os.close(err)
