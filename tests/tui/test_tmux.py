"""The TUI in a real terminal (tmux) against a real `vm`: type, send, see the answer."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxydra.testing.fake_llm import FakeLLM, Reply
from tests.gateway.support import TOKEN, VmProcess

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, name: str, socket: Path) -> None:
        self.name, self.socket = name, socket

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=20
        )
        return out.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    async def wait_for(self, text: str, timeout: float = 20) -> str:
        for _ in range(int(timeout / 0.1)):
            screen = self.screen()
            if text in screen:
                return screen
            await asyncio.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on screen:\n{self.screen()}")


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[VmProcess, FakeLLM]]:
    async with FakeLLM() as llm:
        vm = VmProcess(tmp_path, llm.base_url)
        await vm.start()
        yield vm, llm
        await vm.stop()


async def test_type_send_and_see_the_streamed_answer(
    running: tuple[VmProcess, FakeLLM], tmp_path: Path
) -> None:
    vm, llm = running
    llm.add([Reply(text="The capital of Norway is Oslo.", chunk=3, delay=0.02)])
    tmux = Tmux("oxytui", tmp_path / "tmux.sock")
    home = shlex.quote(str(tmp_path / "home"))
    env = f"HOME={home} OXYDRA_GATEWAY_TOKEN={TOKEN} TERM=xterm-256color"
    workspace = shlex.quote(str(vm.workspace))
    python = shlex.quote(sys.executable)
    cmd = f"env {env} {python} -m oxydra tui --user alice --workspace {workspace}"
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "100", "-y", "30", cmd)
    try:
        screen = await tmux.wait_for("connected")
        assert "session" in screen
        tmux.run("send-keys", "-t", tmux.name, "What is the capital of Norway?", "Enter")
        screen = await tmux.wait_for("Oslo.")
        assert "you ▸ What is the capital of Norway?" in screen
        assert "oxydra ▸ The capital of Norway is Oslo." in screen
        status = [line for line in screen.splitlines() if "session" in line and "│" in line]
        assert status and "connected" in status[0]
        assert "session runtime-alice" in status[0]
        await tmux.wait_for("/help · Ctrl+D quit")  # the hint once the turn is over
        requests = len(llm.requests)
        tmux.run("send-keys", "-t", tmux.name, "/help", "Enter")
        await tmux.wait_for("/switch <id>")
        assert len(llm.requests) == requests  # answered by the TUI, not the model
        tmux.run("send-keys", "-t", tmux.name, "/status", "Enter")
        await tmux.wait_for("healthy=True")
        tmux.run("send-keys", "-t", tmux.name, "C-c")
        for _ in range(100):
            if tmux.name not in tmux.run("list-sessions"):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("Ctrl+C on an idle TUI did not exit")
    finally:
        tmux.run("kill-server")


async def test_with_no_running_vm_the_tui_says_so(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    out = subprocess.run(
        [sys.executable, "-m", "oxydra", "tui", "--user", "nobody"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "no running vm for user 'nobody'" in out.stderr and "Traceback" not in out.stderr


HOSTILE_REPLY = (
    "Before\x1b]2;PWNED-TITLE\x07 \x1b]52;c;UFdORUQtQ0xJUA==\x07middle\x1b[2J\x1b[H"
    " \x1bP+q544e\x1b\\after\x9b31m\u202eend"
)


async def test_model_text_cannot_drive_the_terminal(
    running: tuple[VmProcess, FakeLLM], tmp_path: Path
) -> None:
    """OSC 2 (title), OSC 52 (clipboard), a screen clear, DCS, C1 and bidi from the model."""
    vm, llm = running
    llm.add([Reply(text=HOSTILE_REPLY, chunk=7)])
    tmux = Tmux("oxyesc", tmp_path / "tmux.sock")
    home = shlex.quote(str(tmp_path / "home"))
    env = f"HOME={home} OXYDRA_GATEWAY_TOKEN={TOKEN} TERM=xterm-256color"
    workspace = shlex.quote(str(vm.workspace))
    python = shlex.quote(sys.executable)
    cmd = f"env {env} {python} -m oxydra tui --user alice --workspace {workspace}"
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "100", "-y", "30", cmd)
    try:
        tmux.run("set-option", "-g", "set-clipboard", "on")  # OSC 52 would fill a tmux buffer
        tmux.run("set-option", "-g", "allow-rename", "on")
        await tmux.wait_for("connected")
        tmux.run("send-keys", "-t", tmux.name, "hello", "Enter")
        screen = await tmux.wait_for("end")
        assert "you ▸ hello" in screen  # no screen clear wiped the history
        assert "Before middle after31mend" in screen
        assert "PWNED" not in tmux.run("display-message", "-p", "-t", tmux.name, "#{pane_title}")
        assert tmux.run("list-buffers") == ""
    finally:
        tmux.run("kill-server")


async def test_the_session_lifecycle_from_the_tui(
    running: tuple[VmProcess, FakeLLM], tmp_path: Path
) -> None:
    vm, llm = running
    llm.add([Reply(text="Noted the trip.")])
    tmux = Tmux("oxylife", tmp_path / "tmux.sock")
    home = shlex.quote(str(tmp_path / "home"))
    env = f"HOME={home} OXYDRA_GATEWAY_TOKEN={TOKEN} TERM=xterm-256color"
    workspace = shlex.quote(str(vm.workspace))
    python = shlex.quote(sys.executable)
    cmd = f"env {env} {python} -m oxydra tui --user alice --workspace {workspace}"
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "160", "-y", "40", cmd)

    def type_line(text: str) -> None:
        tmux.run("send-keys", "-t", tmux.name, "-l", text)
        tmux.run("send-keys", "-t", tmux.name, "Enter")

    try:
        await tmux.wait_for("connected")
        type_line("/new trip plans")
        screen = await tmux.wait_for("session ")
        await tmux.wait_for("…")  # the status bar shows the new UUIDv7 session
        type_line("book the train")
        await tmux.wait_for("Noted the trip.")
        type_line("/rename italy")
        await tmux.wait_for("renamed:")
        type_line("/sessions")
        screen = await tmux.wait_for("runtime-alice")
        assert "italy" in screen and "turns 1" in screen
        type_line("/export")
        screen = await tmux.wait_for("(read-only)")
        await tmux.wait_for("book the train")
        type_line("/archive runtime-alice")
        await tmux.wait_for("archived:")
        type_line("/delete")
        await tmux.wait_for("/delete needs a session id")
        type_line("/delete runtime-alice")
        await tmux.wait_for("session runtime-alice deleted")
        log = subprocess.run(
            [sys.executable, "-m", "oxydra", "sessions", "audit", "--user", "alice",
             "--workspace", str(vm.workspace)],
            capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": home},
        )  # fmt: skip
        actions = [line.split()[2] for line in log.stdout.splitlines()]
        assert actions == ["delete", "archive", "export", "rename", "new", "new"], log
        assert "(from runtime-alice)" in log.stdout.splitlines()[-2]  # the rollover
    finally:
        tmux.run("kill-server")
