"""shell_exec and LocalShellSession with real subprocesses."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from oxydra.config.schema import ShellConfig
from oxydra.security import ShellPolicy
from oxydra.security._landlock import landlock_abi
from oxydra.security.confine import ShellSandbox
from oxydra.tools import (
    LocalShellSession,
    ShellOutput,
    ToolExecutionContext,
    ToolRegistry,
    format_output,
    shell_exec_tool,
)


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def sandbox(*writable: Path) -> ShellSandbox:
    return ShellSandbox(writable=tuple(str(p) for p in writable), abi=landlock_abi()[0])


@pytest.fixture
def session(tmp_path: Path) -> LocalShellSession:
    return LocalShellSession(
        str(tmp_path),
        sandbox=sandbox(tmp_path),
        environ={"PATH": os.environ["PATH"], "OPENAI_API_KEY": "sk-x", "KEEP": "1"},
        env_keys=["KEEP"],
        kill_grace=0.5,
    )


class TestLocalSession:
    async def test_output_and_exit_status(self, session: LocalShellSession) -> None:
        out = await session.run("echo out; echo err >&2; exit 3", timeout=10)
        assert (out.stdout, out.stderr, out.exit_code, out.timed_out) == (
            "out\n",
            "err\n",
            3,
            False,
        )

    async def test_runs_in_the_workspace_directory(
        self, session: LocalShellSession, tmp_path: Path
    ) -> None:
        assert (await session.run("pwd", timeout=10)).stdout.strip() == str(tmp_path)

    async def test_environment_is_minimal(self, session: LocalShellSession) -> None:
        out = (await session.run("env", timeout=10)).stdout
        assert "OPENAI_API_KEY" not in out and "KEEP=1" in out and "TERM=dumb" in out

    async def test_timeout_kills_the_whole_process_group(
        self, session: LocalShellSession, tmp_path: Path
    ) -> None:
        out = await session.run("sleep 60 & echo $! > child.pid; sleep 60", timeout=0.5)
        child = int((tmp_path / "child.pid").read_text())
        assert out.timed_out and out.exit_code is None
        for _ in range(50):
            if _gone(child):
                break
            await asyncio.sleep(0.05)
        assert _gone(child)

    async def test_background_stragglers_do_not_hold_the_call(
        self, session: LocalShellSession, tmp_path: Path
    ) -> None:
        out = await session.run("sleep 60 & echo $! > bg.pid; echo done", timeout=30)
        assert (out.stdout, out.exit_code, out.timed_out) == ("done\n", 0, False)
        child = int((tmp_path / "bg.pid").read_text())
        for _ in range(50):
            if _gone(child):
                break
            await asyncio.sleep(0.05)
        assert _gone(child)

    async def test_output_is_capped_but_the_command_finishes(self, tmp_path: Path) -> None:
        session = LocalShellSession(str(tmp_path), sandbox=sandbox(tmp_path), output_limit=1000)
        out = await session.run("head -c 200000 /dev/zero | tr '\\0' a; echo end >&2", timeout=30)
        assert out.truncated and len(out.stdout) + len(out.stderr) == 1000 and out.exit_code == 0

    async def test_cancelling_the_call_kills_the_command(
        self, session: LocalShellSession, tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "pid"
        command = f"echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 60"
        run = asyncio.ensure_future(session.run(command, timeout=60))
        async with asyncio.timeout(20):
            while not pid_file.exists():
                await asyncio.sleep(0.02)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        # Under load the intermediate may miss its grace; the backstop kill then leaves the
        # sweep of the command to the confinement server, which finishes soon after.
        pid = int(pid_file.read_text())
        async with asyncio.timeout(30):
            while not _gone(pid):
                await asyncio.sleep(0.02)


class TestShellExecTool:
    def registry(self, session: LocalShellSession, **policy: object) -> ToolRegistry:
        reg = ToolRegistry()
        reg.register(shell_exec_tool(session, ShellPolicy(ShellConfig(**policy)), timeout_secs=10))  # type: ignore[arg-type]
        return reg

    async def test_reports_output_and_status(
        self, session: LocalShellSession, ctx: ToolExecutionContext
    ) -> None:
        result = await self.registry(session).execute(
            "shell_exec", {"command": "echo hi; false"}, ctx
        )
        assert result.ok and result.text == "hi\n[exit status: 1]"

    async def test_denied_program_never_runs(
        self, session: LocalShellSession, ctx: ToolExecutionContext, tmp_path: Path
    ) -> None:
        reg = self.registry(session, deny=["rm"])
        (tmp_path / "keep").write_text("x")
        result = await reg.execute("shell_exec", {"command": "ls && rm keep"}, ctx)
        assert result.error_kind == "policy" and (tmp_path / "keep").exists()

    @pytest.mark.parametrize(
        "command",
        [
            "echo evil > SOUL.md",
            "cp notes.md ../.oxydra/USER.md",
            "sed -i 's/a/b/' /etc/oxydra/System.md",
            "mv x 'soul.md'",
            "ln -s x.md SYSTEM.md && echo done",
        ],
    )
    async def test_a_command_naming_a_persona_file_is_refused_and_audited(
        self,
        session: LocalShellSession,
        ctx: ToolExecutionContext,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
        command: str,
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="oxydra.audit"):
            result = await self.registry(session).execute("shell_exec", {"command": command}, ctx)
        assert result.error_kind == "policy", result.text
        assert "operator-owned persona file" in result.text
        [record] = [r for r in caplog.records if r.getMessage() == "persona change refused"]
        assert record.oxy["action"] == "shell"  # type: ignore[attr-defined]
        assert not any(p.name.lower().endswith(".md") for p in tmp_path.iterdir())

    @pytest.mark.parametrize("command", ["cat mysoul.md", "echo SOUL.mdx", "ls user.markdown"])
    async def test_other_names_pass_the_persona_check(
        self, session: LocalShellSession, ctx: ToolExecutionContext, command: str
    ) -> None:
        result = await self.registry(session).execute("shell_exec", {"command": command}, ctx)
        assert result.error_kind != "policy", result.text

    async def test_user_cancel_reaches_the_subprocess(
        self, session: LocalShellSession, ctx: ToolExecutionContext, tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "pid"
        command = f"echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; exec sleep 60"
        call = asyncio.ensure_future(
            self.registry(session).execute("shell_exec", {"command": command}, ctx)
        )
        async with asyncio.timeout(20):
            while not pid_file.exists():
                await asyncio.sleep(0.02)
        call.cancel()  # what stopping the turn does to the tool call's task
        with pytest.raises(asyncio.CancelledError):
            await call
        assert _gone(int(pid_file.read_text()))

    def test_format_without_output(self) -> None:
        text = format_output(ShellOutput(stdout="", stderr="", exit_code=0), 5)
        assert text == "command completed with no output\n[exit status: 0]"

    def test_format_timeout(self) -> None:
        text = format_output(ShellOutput(stdout="x", stderr="", exit_code=None, timed_out=True), 5)
        assert text.endswith("[timed out after 5 seconds; the process group was killed]")
