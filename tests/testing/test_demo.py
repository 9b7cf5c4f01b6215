"""`make demo` in a real terminal: the scripted model, a tool call, an approval, the way out."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from oxydra.testing.demo import DEMO_SCRIPT, LABEL
from tests.tui.test_tmux import Tmux

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


async def idle(tmux: Tmux) -> None:
    """Wait until the turn is over (the status bar shows the idle hint again)."""
    for _ in range(300):
        status = [ln for ln in tmux.screen().splitlines() if "│ session" in ln]
        if status and "Ctrl+D quit" in status[-1]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the turn did not end:\n" + tmux.screen())


def test_every_demo_reply_says_it_is_a_script() -> None:
    assert all(step.text.startswith(LABEL) for step in DEMO_SCRIPT)


async def test_the_demo_tours_the_tui_a_tool_and_an_approval(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = f"HOME={shlex.quote(str(home))} PYTHONPATH={shlex.quote(str(ROOT))} TERM=xterm-256color"
    python = shlex.quote(sys.executable)
    cmd = f"env -u API_KEY -u OPENAI_API_KEY {env} {python} -m oxydra.testing.demo"
    tmux = Tmux("oxydemo", tmp_path / "tmux.sock")
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "120", "-y", "40", cmd)
    try:
        await tmux.wait_for("/help · Ctrl+D quit", timeout=90)
        steps = (
            ("hello", "I will use a tool."),
            ("go on", "sandbox. Next I will write"),
            ("write it", None),
        )
        for text, expect in steps:
            tmux.run("send-keys", "-t", tmux.name, text, "Enter")
            if expect:
                await tmux.wait_for(expect, timeout=30)
                await idle(tmux)
        await tmux.wait_for("approve file_write?", timeout=30)
        tmux.run("send-keys", "-t", tmux.name, "y")
        await tmux.wait_for("That is the tour", timeout=30)
        written = home / ".oxydra" / "workspaces" / "demo" / "shared" / "hello-from-oxydra.txt"
        assert written.exists(), tmux.screen()
        assert "after you approved it" in written.read_text()
        tmux.run("send-keys", "-t", tmux.name, "C-d")
        for _ in range(200):
            if tmux.name not in tmux.run("list-sessions"):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the demo did not end with the TUI:\n" + tmux.screen())
        assert not (
            home / ".oxydra" / "workspaces" / "demo" / "ipc" / "runner-control.sock"
        ).exists()
    finally:
        tmux.run("kill-server")
