"""`DaemonShellSession` against a real `oxydra shell-daemon` subprocess on a Unix socket."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from oxydra.app.services import sidecar_shell
from oxydra.core.errors import ToolError
from oxydra.core.tiers import SandboxTier
from oxydra.tools import DaemonShellSession, format_output
from oxydra.wire.envelope import BootstrapEnvelope, SidecarEndpoint

ROOT = Path(__file__).resolve().parents[2]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"


class Daemon:
    """A shell daemon subprocess that can be stopped and started again on the same socket."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "oxydra",
                "shell-daemon",
                "--socket",
                str(self.socket),
                "--writable",
                str(self.socket.parent),
            ],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.proc.stderr is not None
        assert "listening" in self.proc.stderr.readline()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            assert self.proc.stderr is not None
            self.proc.stderr.close()
            self.proc = None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "shell.sock")
    d.start()
    yield d
    d.stop()


@pytest.fixture
async def session(daemon: Daemon, tmp_path: Path) -> AsyncIterator[DaemonShellSession]:
    s = DaemonShellSession(str(daemon.socket), cwd=str(tmp_path), connect_timeout=5)
    yield s
    await s.close()


class TestCommands:
    async def test_output_streams_and_exit_status_come_back(
        self, session: DaemonShellSession, tmp_path: Path
    ) -> None:
        out = await session.run("echo out; echo err >&2; pwd; exit 3", timeout=20)
        assert out.stdout == f"out\n{tmp_path}\n" and out.stderr == "err\n"
        assert out.exit_code == 3 and not out.timed_out

    async def test_the_session_is_reused_across_commands(self, session: DaemonShellSession) -> None:
        for n in range(3):
            assert (await session.run(f"echo {n}", timeout=20)).stdout == f"{n}\n"

    async def test_a_timeout_is_reported_and_the_command_killed(
        self, session: DaemonShellSession
    ) -> None:
        out = await session.run("echo started; sleep 30", timeout=1)
        assert out.timed_out and out.stdout == "started\n"
        assert "timed out" in format_output(out, 1)
        assert (await session.run("echo next", timeout=20)).stdout == "next\n"

    async def test_cancellation_kills_the_command_and_the_next_one_runs(
        self, session: DaemonShellSession, tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "pid"
        task = asyncio.create_task(
            session.run(
                f"echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 60", timeout=60
            )
        )
        async with asyncio.timeout(20):
            while not pid_file.exists():
                await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await session.run("echo after", timeout=20)).stdout == "after\n"
        await session.close()  # waits for the detached kill
        pid = int(pid_file.read_text())
        async with asyncio.timeout(20):
            while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
                await asyncio.sleep(0.02)

    async def test_output_beyond_the_cap_is_dropped_and_flagged(self, daemon: Daemon) -> None:
        session = DaemonShellSession(str(daemon.socket), output_limit=1000)
        try:
            out = await session.run("head -c 50000 /dev/zero | tr '\\0' x", timeout=20)
        finally:
            await session.close()
        assert out.truncated and len(out.stdout) == 1000 and out.exit_code == 0


class TestConnection:
    async def test_a_lost_daemon_fails_the_call_then_the_next_call_reconnects(
        self, daemon: Daemon, session: DaemonShellSession
    ) -> None:
        assert (await session.run("echo one", timeout=20)).stdout == "one\n"
        daemon.stop()
        with pytest.raises(ToolError, match="output lost"):
            await session.run("echo two", timeout=20)
        daemon.start()
        assert (await session.run("echo three", timeout=20)).stdout == "three\n"

    async def test_connecting_waits_for_a_daemon_still_starting(self, tmp_path: Path) -> None:
        later = Daemon(tmp_path / "late.sock")
        session = DaemonShellSession(str(later.socket), connect_timeout=20)
        task = asyncio.create_task(session.run("echo late", timeout=20))
        await asyncio.sleep(0.6)  # let the first attempts fail
        await asyncio.to_thread(later.start)
        try:
            assert (await asyncio.wait_for(task, 30)).stdout == "late\n"
        finally:
            await session.close()
            later.stop()

    async def test_no_daemon_within_the_timeout_is_a_tool_error(self, tmp_path: Path) -> None:
        session = DaemonShellSession(str(tmp_path / "none.sock"), connect_timeout=0)
        with pytest.raises(ToolError, match="unreachable"):
            await session.run("true", timeout=5)


class TestWiring:
    def envelope(self, endpoint: SidecarEndpoint | None) -> BootstrapEnvelope:
        return BootstrapEnvelope(
            user_id="u",
            sandbox_tier=SandboxTier.CONTAINER,
            workspace_root="/ws",
            sidecar_endpoint=endpoint,
        )

    def test_a_unix_sidecar_endpoint_gives_the_guest_a_daemon_session(self) -> None:
        shell = sidecar_shell(self.envelope(SidecarEndpoint(transport="unix", address="/s.sock")))
        assert isinstance(shell, DaemonShellSession) and shell.socket_path == "/s.sock"

    @pytest.mark.parametrize("endpoint", [None, SidecarEndpoint(transport="vsock", address="x")])
    def test_otherwise_the_guest_runs_commands_itself(
        self, endpoint: SidecarEndpoint | None
    ) -> None:
        assert sidecar_shell(self.envelope(endpoint)) is None
