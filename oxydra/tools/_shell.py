"""`shell_exec` behind a `ShellSession`: a local subprocess now, the shell daemon later.

`LocalShellSession` runs `/bin/sh -c <command>` in its own process group with a minimal
environment (PATH, HOME, LANG, TERM and the `[tools.shell] env_keys` only, so the agent's
own API keys are not inherited), stdin closed, both streams read concurrently and capped.
On timeout or cancellation the whole group gets SIGTERM, then SIGKILL; when the command
itself exits, stragglers it left in the background are killed too, so no output pipe is
held open and nothing outlives the call. The exit status is always reported.

The shell policy (argv-level allow/deny) is applied by the tool before the session sees
the command. It is a guard rail only: confinement comes from the sandbox tier.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Protocol

import msgspec

from oxydra.core.tiers import SafetyTier
from oxydra.security import ShellPolicy
from oxydra.tools._context import ToolExecutionContext
from oxydra.tools._decorator import FunctionTool, tool

OUTPUT_LIMIT = 64 * 1024
_SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")


class ShellOutput(msgspec.Struct, frozen=True, kw_only=True):
    """What a command produced.

    Attributes:
        exit_code: the status, or the negative signal number; None if it never finished.
        timed_out: the command was killed at the timeout.
        truncated: stdout + stderr exceeded the cap; the rest was read and dropped.
    """

    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool = False
    truncated: bool = False


class ShellSession(Protocol):
    """Where shell commands run (a local process group now, the shell daemon later)."""

    async def run(self, command: str, *, timeout: float) -> ShellOutput:
        """Run one command to completion or timeout and return its output.

        Cancelling the calling task stops the command (its process group is killed).
        """
        ...

    async def close(self) -> None:
        """Release the session."""
        ...


class LocalShellSession:
    """Runs commands as local subprocesses, one process group per command.

    Args:
        cwd: working directory (the user's /shared on the host).
        env_keys: extra variables copied from `environ` ([tools.shell] env_keys).
        environ: where those variables come from (the process environment by default).
    """

    def __init__(
        self,
        cwd: str,
        *,
        env_keys: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
        shell: str = "/bin/sh",
        output_limit: int = OUTPUT_LIMIT,
        kill_grace: float = 2.0,
    ) -> None:
        source = os.environ if environ is None else environ
        self.cwd = cwd
        self.shell = shell
        self.output_limit = output_limit
        self.kill_grace = kill_grace
        keys = (*_SAFE_ENV, *env_keys)
        self.env = {k: source[k] for k in keys if k in source}
        self.env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        self.env.update({"HOME": cwd, "TERM": "dumb"})
        self.env.setdefault("LANG", "C.UTF-8")

    async def run(self, command: str, *, timeout: float) -> ShellOutput:
        """See `ShellSession.run`."""
        process = await asyncio.create_subprocess_exec(
            self.shell, "-c", command,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=self.cwd, env=self.env, start_new_session=True,
        )  # fmt: skip
        budget = _Budget(self.output_limit)
        readers = [
            asyncio.ensure_future(budget.drain(process.stdout, 0)),
            asyncio.ensure_future(budget.drain(process.stderr, 1)),
        ]
        try:
            timed_out = await self._timed_out(process, timeout)
        finally:
            await self._reap(process, readers)
        return ShellOutput(
            stdout=budget.text(0),
            stderr=budget.text(1),
            exit_code=None if timed_out else process.returncode,
            timed_out=timed_out,
            truncated=budget.truncated,
        )

    async def _timed_out(self, process: asyncio.subprocess.Process, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await _exited(process)
        except TimeoutError:
            return True
        return False

    async def _reap(
        self, process: asyncio.subprocess.Process, readers: Sequence[asyncio.Future[None]]
    ) -> None:
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), self.kill_grace)
        _signal_group(process.pid, signal.SIGKILL)
        await process.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*readers), self.kill_grace)
        for reader in readers:
            reader.cancel()

    async def close(self) -> None:
        """See `ShellSession.close` (nothing persists between commands here)."""


async def _exited(process: asyncio.subprocess.Process) -> None:
    """Wait until the shell itself exits, even if a background child keeps its pipes open.

    `Process.wait()` also waits for the pipes to close, so it cannot tell "the command
    finished" from "a straggler still holds stdout". A pidfd says exactly when the process
    ends (Linux >= 5.3); elsewhere the return code the child watcher records is polled.
    """
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        while process.returncode is None:
            await asyncio.sleep(0.02)
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(fd, lambda: None if done.done() else done.set_result(None))
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


class _Budget:
    """Shared cap for stdout + stderr; reading continues past it so the child never blocks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: tuple[bytearray, bytearray] = (bytearray(), bytearray())
        self.truncated = False

    async def drain(self, stream: asyncio.StreamReader | None, index: int) -> None:
        if stream is None:
            return
        while chunk := await stream.read(65536):
            room = self.limit - len(self.parts[0]) - len(self.parts[1])
            if len(chunk) > room:
                self.truncated = True
                chunk = chunk[: max(room, 0)]
            self.parts[index].extend(chunk)

    def text(self, index: int) -> str:
        return self.parts[index].decode("utf-8", errors="replace")


def format_output(output: ShellOutput, timeout: float) -> str:
    """The text `shell_exec` returns: stdout, stderr, then the status line."""
    sections = [output.stdout.rstrip("\n")] if output.stdout.strip() else []
    if output.stderr.strip():
        sections.append("[stderr]\n" + output.stderr.rstrip("\n"))
    if not sections:
        sections.append("command completed with no output")
    if output.truncated:
        sections.append("[output truncated]")
    if output.timed_out:
        sections.append(f"[timed out after {timeout:g} seconds; the process group was killed]")
    else:
        sections.append(f"[exit status: {output.exit_code}]")
    return "\n".join(sections)


def shell_exec_tool(
    session: ShellSession, policy: ShellPolicy, *, timeout_secs: float
) -> FunctionTool:
    """The `shell_exec` tool: policy check, then the session runs the command."""

    @tool(name="shell_exec", timeout=timeout_secs + 5, safety_tier=SafetyTier.PRIVILEGED)
    async def shell_exec(
        ctx: ToolExecutionContext,
        command: Annotated[str, msgspec.Meta(min_length=1, max_length=65536)],
    ) -> str:
        """Run a shell command in the workspace (/shared) and return its output and exit status.

        Args:
            command: A POSIX shell command line; pipes and && are allowed unless disabled.
        """
        policy.enforce(command)
        output = await session.run(command, timeout=timeout_secs)
        return format_output(output, timeout_secs)

    return shell_exec
