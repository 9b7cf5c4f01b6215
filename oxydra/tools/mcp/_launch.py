"""Starting a stdio MCP server exactly as a shell command starts: through the same launcher.

A stdio server is a program someone else wrote, run with our uid. It is started by the
confinement intermediate of `security/confine.py` — the one every `shell_exec` command goes
through — so it gets everything a command gets, from one implementation:

1. its own session, and an intermediate between it and the agent: `/proc/$PPID` is not the
   agent, and the intermediate is a child subreaper that dies with the agent, so whatever
   the server forks (`setsid` helpers included) is killed when it stops;
2. `no_new_privs`, the capability bounding set emptied (as root), rlimits (no core file,
   bounded open files and file size);
3. Landlock: read-write only beneath the server's directory; read + execute on the system
   directories, the interpreter and the command's install directory, `cwd` when it lies
   outside the directory, and `read_paths`; read on the few `/etc` files processes need.
   Since ABI 6 it also cannot signal processes outside its domain (the agent);
4. an environment holding only `PATH`, `LANG`, `LC_ALL`, `TZ`, `HOME` and `TMPDIR` (in its
   directory) and the variables its config gives it — never a provider key or the gateway
   token.

The launcher runs `sh -c 'exec <command>'`: the shell replaces itself with the server, so
the server is the intermediate's only child, with its stdin and stdout the pipes we hold.
Without Landlock in the kernel a server is not started unless the operator allowed
unconfined servers by name (`[mcp] allow_unconfined`), and `mcp list` says so.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from oxydra.core.errors import PolicyError, ToolError
from oxydra.security import _landlock as ll
from oxydra.security._confine_client import ConfinedProcess
from oxydra.security.confine import ShellSandbox

_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_SHELL = "/bin/sh"


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    """How to start one server.

    Attributes:
        argv: the command and its arguments.
        directory: the server's own directory (working directory unless `cwd`, HOME, TMPDIR).
        env: the variables the config gives it, already resolved.
        read_paths: extra paths it may read (a repository to inspect, say).
        confine: apply Landlock (refuse to start when the kernel has none).
    """

    argv: Sequence[str]
    directory: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    read_paths: Sequence[str] = ()
    confine: bool = True


@dataclass
class Confinement:
    """What was applied to a started server (shown by `mcp list`)."""

    landlock: bool
    detail: str


def server_environment(spec: LaunchSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """The scrubbed environment: the safe basics, HOME/TMPDIR in its directory, its own vars."""
    env = {k: environ[k] for k in _PASSED_ENV if environ.get(k)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["HOME"] = str(spec.directory)
    env["TMPDIR"] = str(spec.directory / "tmp")
    env.update(spec.env)
    return env


def resolve_command(command: str, path: str) -> str:
    """The absolute path of `command`; ToolError naming it when it cannot be found."""
    found = shutil.which(command, path=path) if os.sep not in command else command
    if not found or not os.access(found, os.X_OK):
        raise ToolError(f"MCP server command {command!r} was not found or is not executable")
    return os.path.abspath(found)


def server_sandbox(spec: LaunchSpec, executable: str, abi: int) -> ShellSandbox:
    """The shell's sandbox, with the server's directory writable and its runtime readable.

    `cwd` is writable only when it lies beneath the server's directory: a `cwd` elsewhere (a
    project, the workspace) is read-only, so no configuration can hand a server the
    operator's persona or config files to change.
    """
    directory = os.path.realpath(spec.directory)
    writable = [directory]
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    runtime = [sys.prefix, sys.base_prefix, *_install_dirs(executable)]
    runtime += [p for p in (sysconfig.get_path(n) for n in names) if p]
    if spec.cwd is not None:
        cwd = os.path.realpath(spec.cwd)
        inside = cwd == directory or cwd.startswith(directory + os.sep)
        (writable if inside else runtime).append(cwd)
    runtime += [os.path.realpath(p) for p in spec.read_paths]
    return ShellSandbox(writable=tuple(writable), abi=abi, read_only=tuple(dict.fromkeys(runtime)))


def _install_dirs(executable: str) -> list[str]:
    """The command's directory and its prefix (a venv's `bin/..`), plus a script's interpreter."""
    dirs = [os.path.dirname(executable), os.path.dirname(os.path.dirname(executable))]
    real = os.path.realpath(executable)
    dirs += [os.path.dirname(real), os.path.dirname(os.path.dirname(real))]
    return [d for d in dirs if d and d != "/"]


async def spawn(
    spec: LaunchSpec,
    environ: Mapping[str, str],
    *,
    abi: int | None = None,
    grace: float = 2.0,
) -> tuple[ConfinedProcess, Confinement]:
    """Start the server with pipes on stdin/stdout/stderr, confined as described above.

    The process returned is the intermediate; it exits with the server's status.

    Raises:
        ToolError: the command does not exist or cannot be started.
        PolicyError: confinement was required and the kernel has no Landlock.
    """
    spec.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (spec.directory / "tmp").mkdir(exist_ok=True, mode=0o700)
    env = server_environment(spec, environ)
    executable = resolve_command(spec.argv[0], env["PATH"])
    level = 0
    if spec.confine:
        level, why = (abi, "") if abi is not None else ll.landlock_abi()
        if level <= 0:
            raise PolicyError(
                f"Landlock is unavailable ({why or 'disabled'}); stdio MCP servers run only "
                "confined unless [mcp] allow_unconfined names them"
            )
    sandbox = server_sandbox(spec, executable, level)
    cwd = str(spec.cwd or spec.directory)
    command = "exec " + shlex.join([executable, *spec.argv[1:]])
    try:
        process = await sandbox.start(
            shell=_SHELL, command=command, cwd=cwd, env=env, grace=grace, stdin=True
        )
    except OSError as exc:
        raise ToolError(f"MCP server {spec.argv[0]!r} could not start: {exc}") from exc
    detail = f"landlock abi {level}" if level else "unconfined (allowed by config)"
    return process, Confinement(landlock=level > 0, detail=detail)
