"""The rest of the command line: foreground daemon, a guest that dies, restart, logs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxydra.security._landlock import landlock_abi
from tests.runner.support import Sandbox, fake_llm, make_sandbox, parse_kv, provider_env

pytestmark = pytest.mark.skipif(landlock_abi()[0] <= 0, reason="these runs expect Landlock")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    with fake_llm(tmp_path, []) as (url, _):
        sandbox = make_sandbox(tmp_path, **provider_env(url))
        try:
            yield sandbox
        finally:
            sandbox.runner("stop")


def test_the_foreground_daemon_serves_status_and_stops_on_sigterm(box: Sandbox) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "oxydra", "runner", "--insecure", "--daemon"],
        cwd=box.cwd,
        env=box.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.startswith("status="):
            break
    kv = parse_kv("\n".join(lines))
    assert kv["control_socket"] and kv["gateway_endpoint"]
    assert parse_kv(box.runner("status").stdout)["healthy"] == ["true"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    proc.stdout.close()
    proc.stderr.close()
    pid = int(kv["runtime_pid"][0])
    assert not Path(f"/proc/{pid}").exists()
    assert not (box.workspace() / "ipc" / "gateway-endpoint").exists()
    assert box.runner("status").returncode == 1


def test_a_guest_that_dies_is_reported_then_stop_ends_the_daemon(box: Sandbox) -> None:
    started = parse_kv(box.runner("--insecure", "start").stdout)
    os.kill(int(started["runtime_pid"][0]), signal.SIGKILL)
    for _ in range(100):  # the kill lands asynchronously
        status = parse_kv(box.runner("status").stdout)
        if status["healthy"] == ["false"]:
            break
    assert status["healthy"] == ["false"]
    assert status["message"] == ["guest exited with status -9"]
    stopped = parse_kv(box.runner("stop").stdout)
    assert stopped["already_stopped"] == ["true"]


def test_restart_gives_a_new_guest(box: Sandbox) -> None:
    first = parse_kv(box.runner("--insecure", "start").stdout)
    out = box.runner("--insecure", "restart")
    assert out.returncode == 0, out.stderr
    second = parse_kv(out.stdout)
    assert second["runtime_pid"] != first["runtime_pid"]
    assert parse_kv(box.runner("status").stdout)["runtime_pid"] == second["runtime_pid"]


def test_logs_come_from_the_daemon_and_from_the_files_once_it_is_gone(box: Sandbox) -> None:
    started = parse_kv(box.runner("--insecure", "start").stdout)
    endpoint = started["gateway_endpoint"][0]
    live = box.runner("logs", "--stream", "stdout", "--tail", "5")
    assert f"[process_file][runtime][stdout] gateway_endpoint={endpoint}" in live.stdout
    as_json = box.runner("logs", "--stream", "stdout", "--format", "json")
    assert '"message":"gateway_endpoint=' in as_json.stdout
    box.runner("stop")
    after = box.runner("logs", "--stream", "stdout")
    assert after.returncode == 0 and f"gateway_endpoint={endpoint}" in after.stdout
    bad = box.runner("logs", "--since", "last tuesday")
    assert bad.returncode == 1 and "RFC 3339" in bad.stderr


def test_tui_execs_the_terminal_client_which_quits_on_ctrl_d(box: Sandbox) -> None:
    """`runner --tui` on a real pseudo-terminal: the TUI takes the screen, Ctrl-D gives it back."""
    import pty
    import time

    box.runner("--insecure", "start")
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "oxydra", "runner", "--tui"],
        cwd=box.cwd,
        env={**box.env, "TERM": "xterm-256color", "LINES": "24", "COLUMNS": "80"},
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    terminal = _Terminal(primary)
    try:
        assert terminal.read_until(b"\x1b[?1049h", time.monotonic() + 60), terminal.screen[-2000:]
        # The alternate screen shows after cbreak, so keys now reach the app; Ctrl-D is sent
        # again each second until the TUI has read one and exited (a deadline, not a sleep).
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            terminal.write(b"\x04")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
            terminal.read_until(None, 0.0)  # keep reading: a full terminal blocks the TUI
        assert proc.wait(1) == 0
        terminal.read_until(None, time.monotonic() + 5)  # to end of output
        assert b"\x1b[?1049l" in terminal.screen  # and gave the terminal back
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)


class _Terminal:
    """The terminal side of a pty: collects the screen and answers cursor position reports.

    A real terminal answers `CSI 6n` at once; the TUI's terminal library asks before taking
    the screen (after capability queries it uses the answer as their end marker) and would
    otherwise wait out its own timeout for each query.
    """

    def __init__(self, fd: int) -> None:
        self.fd, self.screen, self._answered = fd, b"", 0

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # the TUI may close the terminal meanwhile
            os.write(self.fd, data)

    def read_until(self, marker: bytes | None, deadline: float) -> bool:
        """Read until `marker` shows (True), or until nothing is ready by `deadline` or the
        other side closed (False; with `marker` None, reads what is there or comes by then)."""
        import select
        import time

        while marker is None or marker not in self.screen:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return False
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: every copy of the other side is closed
                return False
            if not chunk:
                return False
            self.screen += chunk
            asked = self.screen.count(b"\x1b[6n")
            self.write(b"\x1b[1;1R" * (asked - self._answered))
            self._answered = asked
        return True


def test_logs_follow_prints_new_lines_and_ends_when_the_daemon_exits(box: Sandbox) -> None:
    started = parse_kv(box.runner("--insecure", "start").stdout)
    follower = subprocess.Popen(
        [sys.executable, "-m", "oxydra", "runner", "logs", "-f", "--stream", "stdout"],
        cwd=box.cwd,
        env=box.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None and follower.stderr is not None
    # A bound on a hang: the reads below block until the follower writes or ends, so a
    # follower that never noticed the daemon exit is killed (and the test fails) after 120 s.
    watchdog = threading.Timer(120, follower.kill)
    watchdog.start()
    with follower, follower.stdout, follower.stderr:
        try:
            first = follower.stdout.readline()
            assert f"gateway_endpoint={started['gateway_endpoint'][0]}" in first
            box.runner("stop")
            err = follower.stderr.read()
            assert follower.wait(60) == 0, err
        finally:
            watchdog.cancel()
        assert "(daemon exited)" in err


def test_a_restart_that_cannot_start_leaves_the_running_guest_alone(box: Sandbox) -> None:
    # The "already running" hint used to say `runner restart` without --insecure; with no
    # runner.toml that stopped the guest, then refused to start one: the user had nothing.
    first = parse_kv(box.runner("--insecure", "start").stdout)
    again = box.runner("--insecure", "start")
    assert again.returncode == 1 and "runner --insecure restart" in again.stderr, again.stderr
    out = box.runner("restart")
    assert out.returncode == 1 and "no runner.toml" in out.stderr
    status = parse_kv(box.runner("status").stdout)
    assert status["healthy"] == ["true"] and status["runtime_pid"] == first["runtime_pid"]
