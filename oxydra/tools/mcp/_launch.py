"""Starting a stdio MCP server confined: its own directory, a scrubbed environment, Landlock.

A stdio server is a program someone else wrote, run with our uid. Like `shell_exec`'s
commands it gets its own session (process group), stdin/stdout pipes, and an environment
holding only `PATH`, `LANG`, `LC_ALL`, `TZ`, `HOME` (= its directory) and the variables its
config gives it — never the agent's provider keys or gateway token. On top of that, between
fork and exec (`preexec_fn`, syscalls only):

1. `prctl(PR_SET_NO_NEW_PRIVS)`: no setuid escalation, and the precondition of Landlock;
2. `RLIMIT_CORE` 0: a crash leaves no core file holding what the server had in memory;
3. Landlock (`oxydra.security._landlock`): read-write only beneath the server's directory,
   read + execute on the system and interpreter paths and the server's own install
   directory, read on the few `/etc` files processes need, and on `read_paths` it was given.
   Since ABI 6 it also cannot signal processes outside its domain (the agent).

Without Landlock in the kernel a server is not started unless the operator allowed
unconfined servers by name (`[mcp] allow_unconfined`), and `mcp list` says so.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import shutil
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from oxydra.core.errors import PolicyError, ToolError
from oxydra.security import _landlock as ll

PR_SET_NO_NEW_PRIVS = 38
# What any confined process needs to start (the runner's guest list, plus git's config file).
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ld.so.preload", "ssl", "ca-certificates",
    "ca-certificates.conf", "pki", "crypto-policies", "resolv.conf", "hosts", "nsswitch.conf",
    "gai.conf", "host.conf", "localtime", "timezone", "passwd", "group", "services",
    "protocols", "mime.types", "os-release", "alternatives", "gitconfig",
)  # fmt: skip
DEVICES_RW = ("/dev/null",)
DEVICES_RO = ("/dev/zero", "/dev/urandom", "/dev/random")
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_libc = ctypes.CDLL(None, use_errno=True)


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


def landlock_rules(spec: LaunchSpec, executable: str) -> list[ll.PathRule]:
    """The allow-list of the module docstring."""
    rules = [ll.PathRule(str(spec.directory), ll.READ_WRITE)]
    if spec.cwd is not None and spec.cwd != spec.directory:
        rules.append(ll.PathRule(str(spec.cwd), ll.READ_WRITE))
    install = _install_dirs(executable)
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    runtime = [*SYSTEM_DIRS, sys.prefix, sys.base_prefix, *install]
    runtime += [p for p in (sysconfig.get_path(n) for n in names) if p]
    rules += [ll.PathRule(p, ll.READ_ONLY) for p in dict.fromkeys(runtime)]
    etc = [f"/etc/{name}" for name in ETC_FILES]
    rules += [ll.PathRule(p, ll.READ_FILE | ll.READ_DIR) for p in [*etc, *spec.read_paths]]
    rules += [ll.PathRule(p, ll.READ_FILE | ll.WRITE_FILE | ll.IOCTL_DEV) for p in DEVICES_RW]
    rules += [ll.PathRule(p, ll.READ_FILE | ll.READ_DIR) for p in DEVICES_RO]
    return rules


def _install_dirs(executable: str) -> list[str]:
    """The command's directory and its prefix (a venv's `bin/..`), plus a script's interpreter."""
    dirs = [os.path.dirname(executable), os.path.dirname(os.path.dirname(executable))]
    real = os.path.realpath(executable)
    dirs += [os.path.dirname(real), os.path.dirname(os.path.dirname(real))]
    return [d for d in dirs if d and d != "/"]


async def spawn(
    spec: LaunchSpec, environ: Mapping[str, str], *, abi: int | None = None
) -> tuple[asyncio.subprocess.Process, Confinement]:
    """Start the server with pipes on stdin/stdout/stderr, confined as described above.

    Raises:
        ToolError: the command does not exist or cannot be started.
        PolicyError: confinement was required and the kernel has no Landlock.
    """
    spec.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (spec.directory / "tmp").mkdir(exist_ok=True, mode=0o700)
    env = server_environment(spec, environ)
    executable = resolve_command(spec.argv[0], env["PATH"])
    ruleset: ll.Ruleset | None = None
    if spec.confine:
        level, why = (abi, "") if abi is not None else ll.landlock_abi()
        if level <= 0:
            raise PolicyError(
                f"Landlock is unavailable ({why or 'disabled'}); stdio MCP servers run only "
                "confined unless [mcp] allow_unconfined names them"
            )
        try:
            ruleset = ll.Ruleset.build(landlock_rules(spec, executable), level)
        except Exception as exc:  # the kernel refused a rule: never start unconfined instead
            raise PolicyError(f"cannot confine MCP server {spec.argv[0]!r}: {exc}") from exc
    confinement = Confinement(
        landlock=ruleset is not None,
        detail=f"landlock abi {ruleset.abi}" if ruleset else "unconfined (allowed by config)",
    )
    try:
        process = await asyncio.create_subprocess_exec(
            executable,
            *spec.argv[1:],
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(spec.cwd or spec.directory),
            env=env,
            start_new_session=True,
            preexec_fn=_preexec(ruleset),
            limit=1024 * 1024,
        )
    except OSError as exc:
        raise ToolError(f"MCP server {spec.argv[0]!r} could not start: {exc.strerror}") from exc
    finally:
        if ruleset is not None:
            ruleset.close()
    return process, confinement


def _preexec(ruleset: ll.Ruleset | None) -> Callable[[], None]:
    def confine() -> None:
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if ruleset is not None:
            ruleset.enforce()

    return confine
