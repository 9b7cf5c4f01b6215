"""`shell_exec` behind a `ShellSession`: a local confined process, or the shell daemon.

`LocalShellSession` runs `/bin/sh -c <command>` through the sandbox of
`security/confine.py`: the confinement server forks an intermediate process in a new
session (so the shell's parent is not the agent), Landlock to the workspace's `shared` and
`tmp`, `no_new_privs`, rlimits and a scrubbed environment (no provider key, no gateway
token). Stdin is closed, both streams are read concurrently and capped. On timeout or
cancellation the intermediate is asked to stop (SIGTERM): it terminates the command, then
kills every process the command started, `setsid` helpers included; when the command
itself exits, stragglers are killed too, so no output pipe is held open and nothing
outlives the call. The exit status is always reported.

The shell policy (argv-level allow/deny) is applied by the tool before the session sees
the command, and so is the persona check: a command line naming `SOUL.md`, `SYSTEM.md` or
`USER.md` as a word is refused with the jail's error and audit record. Both are guard rails
that say why and leave a trace; confinement comes from the sandbox (Landlock keeps the
persona folders out of reach however a name is spelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Protocol

import msgspec

from oxydra.core.tiers import SafetyTier
from oxydra.security.confine import ShellSandbox, shell_environment
from oxydra.security.jail import refuse_persona_write
from oxydra.tools._context import ToolExecutionContext
from oxydra.tools._decorator import FunctionTool, tool

if TYPE_CHECKING:
    from oxydra.security._confine_client import ConfinedProcess
    from oxydra.security.shellpolicy import ShellPolicy, ShellRules

OUTPUT_LIMIT = 64 * 1024


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
    """Runs each command as a confined local process tree (see the module docstring).

    Args:
        cwd: working directory (the user's `shared` on the host).
        sandbox: the confinement (`security.confine.shell_sandbox` decides it).
        env_keys: extra variables copied from `environ` ([tools.shell] env_keys).
        environ: where those variables come from (the process environment by default).
        secrets: values that must never reach the command's environment.
        tmp: the command's TMPDIR (the workspace's `tmp`; `cwd` when not given).
    """

    def __init__(
        self,
        cwd: str,
        *,
        sandbox: ShellSandbox,
        env_keys: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
        tmp: str | None = None,
        shell: str = "/bin/sh",
        output_limit: int = OUTPUT_LIMIT,
        kill_grace: float = 2.0,
    ) -> None:
        self.cwd = cwd
        self.sandbox = sandbox
        self.shell = shell
        self.output_limit = output_limit
        self.kill_grace = kill_grace
        source = os.environ if environ is None else environ
        self.env = shell_environment(source, env_keys, home=cwd, tmp=tmp or cwd, secrets=secrets)

    def set_read_only(self, paths: Iterable[str]) -> None:
        """Let later commands read and run, never change, `paths` (the skills' folders)."""
        found = tuple(dict.fromkeys(os.path.realpath(p) for p in paths))
        self.sandbox = dataclasses.replace(self.sandbox, read_only=found)

    async def run(self, command: str, *, timeout: float) -> ShellOutput:
        """See `ShellSession.run`."""
        process = await self.sandbox.start(
            shell=self.shell, command=command, cwd=self.cwd, env=self.env, grace=self.kill_grace
        )
        budget = _Budget(self.output_limit)
        readers = [
            asyncio.ensure_future(budget.drain(process.stdout, 0)),
            asyncio.ensure_future(budget.drain(process.stderr, 1)),
        ]
        exited = False
        try:
            timed_out = await self._timed_out(process, timeout)
            exited = not timed_out
        finally:  # timed out, or the task was cancelled: stop the tree
            await self._reap(process, readers, stop=not exited)
        return ShellOutput(
            stdout=budget.text(0),
            stderr=budget.text(1),
            exit_code=None if timed_out else process.returncode,
            timed_out=timed_out,
            truncated=budget.truncated,
        )

    async def _timed_out(self, process: ConfinedProcess, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await process.wait()
        except TimeoutError:
            return True
        return False

    async def _reap(
        self,
        process: ConfinedProcess,
        readers: Sequence[asyncio.Future[None]],
        *,
        stop: bool,
    ) -> None:
        if stop and process.returncode is None:  # the intermediate stops and sweeps the tree
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), self.kill_grace + 3)
            process.kill()  # a backstop if it could not (the server sweeps its leftovers)
        await process.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*readers), self.kill_grace)
        for reader in readers:
            reader.cancel()
        process.close()

    async def close(self) -> None:
        """See `ShellSession.close` (nothing persists between commands here)."""


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


LOCAL_DESCRIPTION = (
    "Run a shell command in /shared; returns output and exit status. The paths /shared, "
    "/tmp and /vault do not exist there: use relative paths (notes.md, not /shared/notes.md)."
)


class CommandPolicy(Protocol):
    """What `shell_exec` asks before running a command (`security.ShellPolicy`)."""

    def enforce(self, command: str) -> tuple[str, ...]:
        """The command's programs; PolicyError when it is refused."""
        ...


class _PolicyOnFirstUse:
    """A `ShellPolicy` built, and its shell parser imported, on the first command."""

    def __init__(self, rules: ShellRules) -> None:
        self.rules = rules
        self.policy: ShellPolicy | None = None

    def enforce(self, command: str) -> tuple[str, ...]:
        if self.policy is None:
            from oxydra.security.shellpolicy import ShellPolicy

            self.policy = ShellPolicy(self.rules)
        return self.policy.enforce(command)


def policy_on_first_use(rules: ShellRules) -> CommandPolicy:
    """The `[tools.shell]` policy, with nothing of it loaded until a command is checked."""
    return _PolicyOnFirstUse(rules)


# A persona file's name as a shell word: after a start, space, quote, slash, `=` or an operator,
# and before an end, space, quote or operator. One pass, no backtracking (linear time).
_PERSONA_WORD = re.compile(
    r"""(?:^|(?<=[\s/'"=<>;|&(`]))((?i:soul|system|user)\.md)(?=$|[\s'"<>;|&)`])"""
)


def refuse_persona_names(command: str) -> None:
    """Refuse (and audit) a command line that names a persona file (module docstring)."""
    found = _PERSONA_WORD.search(command)
    if found is not None:
        refuse_persona_write(found.group(1), action="shell")


def shell_exec_tool(
    session: ShellSession, policy: CommandPolicy, *, timeout_secs: float
) -> FunctionTool:
    """The `shell_exec` tool: policy check, then the session runs the command.

    A local session runs in the host folder behind /shared, where the absolute /shared,
    /tmp and /vault paths of the file tools do not exist: its description says so, or the
    model writes `cat /shared/x` and fails.
    """
    local = LOCAL_DESCRIPTION if isinstance(session, LocalShellSession) else None

    @tool(
        name="shell_exec",
        description=local,
        timeout=timeout_secs + 5,
        safety_tier=SafetyTier.PRIVILEGED,
    )
    async def shell_exec(
        ctx: ToolExecutionContext,
        command: Annotated[str, msgspec.Meta(min_length=1, max_length=65536)],
    ) -> str:
        """Run a shell command in /shared; returns output and exit status.

        Args:
            command: A POSIX shell command line; pipes and && work unless disabled.
        """
        refuse_persona_names(command)
        policy.enforce(command)
        output = await session.run(command, timeout=timeout_secs)
        return format_output(output, timeout_secs)

    return shell_exec
