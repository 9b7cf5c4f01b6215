"""Confinement of every shell command the product runs (`ask`, `vm`, the shell daemon).

A command never runs as a child of the agent. The agent sends it to the confinement server
(`_confine_server.py`, a small interpreter that imports nothing of ours, started once with an
empty environment); the server forks an intermediate (`_confine_child.py`) in a new session,
which forks the shell and, in that child only, applies the sandbox before `execve` with the
scrubbed environment. Invariants:

1. Files: Landlock allows read-write beneath `writable` (the workspace's `shared` and
   `tmp`), read + execute on the system directories and on `read_only` (the folders of the
   skills in force; an MCP server's interpreter and `read_paths`), read on a fixed list of
   `/etc` entries, and the harmless devices. Nothing else: not `/proc` (no other process's
   environment or memory), not `ipc/`, `.oxydra/`, the config and credential files, `$HOME`.
   Since Landlock ABI 6 the shell also cannot signal, or connect to abstract sockets of,
   processes outside its domain.
2. Privileges: `no_new_privs`; as root the capability bounding set is emptied; rlimits
   (no core files, bounded open files and file size).
3. Environment: PATH, LANG, LC_ALL, TZ and the operator's `[tools.shell] env_keys`, minus
   any `OXYDRA*` name and any value equal to a known secret (provider keys, the gateway
   token); HOME is the working directory and TMPDIR the workspace's `tmp`.
4. Lifetime: the intermediate is a child subreaper and dies with the agent, so every
   process a command starts is killed when the call ends (see `_confine_child.py`).
5. Without Landlock the shell is off, unless the operator opted in by name
   (`[tools.shell] allow_unconfined = true`); 2-4 still hold then.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oxydra.security import _landlock as ll

if TYPE_CHECKING:
    from oxydra.security._confine_client import ConfinedProcess

SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
ETC_ENTRIES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ld.so.preload", "ssl", "ca-certificates",
    "ca-certificates.conf", "pki", "crypto-policies", "resolv.conf", "hosts", "nsswitch.conf",
    "gai.conf", "host.conf", "localtime", "timezone", "passwd", "group", "services",
    "protocols", "mime.types", "os-release", "alternatives", "gitconfig",
)  # fmt: skip
DEVICES_RW = ("/dev/null", "/dev/zero", "/dev/full")
DEVICES_RO = ("/dev/urandom", "/dev/random")
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
FSIZE_LIMIT = 4 * 1024**3
DEFAULT_RLIMITS = (
    (resource.RLIMIT_CORE, 0),
    (resource.RLIMIT_NOFILE, 4096),
    (resource.RLIMIT_FSIZE, FSIZE_LIMIT),
)
OPT_IN = "[tools.shell] allow_unconfined = true"


@dataclass(frozen=True)
class ShellSandbox:
    """How each shell command is confined.

    Attributes:
        writable: directories the command may change (the workspace's shared and tmp).
        abi: the Landlock ABI in force; 0 means unconfined files (the operator opted in).
        read_only: paths the command may read and execute but never change.
    """

    writable: tuple[str, ...]
    abi: int
    rlimits: tuple[tuple[int, int], ...] = DEFAULT_RLIMITS
    read_only: tuple[str, ...] = ()

    @property
    def confined(self) -> bool:
        """Landlock applies to the command's files."""
        return self.abi > 0

    def rules(self) -> list[tuple[str, int]] | None:
        """The Landlock rules as `(path, access)` pairs, or None when unconfined."""
        if not self.confined:
            return None
        rules = [(p, ll.READ_WRITE) for p in self.writable]
        rules += [(p, ll.READ_ONLY) for p in dict.fromkeys((*SYSTEM_DIRS, *self.read_only))]
        rules += [(f"/etc/{name}", ll.READ_FILE | ll.READ_DIR) for name in ETC_ENTRIES]
        device_rw = ll.READ_FILE | ll.WRITE_FILE | ll.IOCTL_DEV | ll.TRUNCATE
        rules += [(p, device_rw) for p in DEVICES_RW]
        rules += [(p, ll.READ_FILE) for p in DEVICES_RO]
        return rules

    def spec(
        self, *, shell: str, command: str, cwd: str, env: Mapping[str, str], grace: float = 2.0
    ) -> dict[str, Any]:
        """What the intermediate needs to run `shell -c command` in `cwd`, confined.

        `env` is the command's whole environment (`shell_environment` builds it); `grace`
        is how long a stopped command gets between SIGTERM and SIGKILL.
        """
        return {
            "shell": shell,
            "command": command,
            "cwd": cwd,
            "env": dict(env),
            "abi": self.abi,
            "rules": self.rules(),
            "rlimits": [list(pair) for pair in self.rlimits],
            "grace": grace,
        }

    async def start(
        self,
        *,
        shell: str,
        command: str,
        cwd: str,
        env: Mapping[str, str],
        grace: float = 2.0,
        stdin: bool = False,
    ) -> ConfinedProcess:
        """Start `shell -c command` under this sandbox (see `_confine_client.start_confined`).

        With `stdin` the command reads a pipe (`ConfinedProcess.stdin`), not /dev/null.

        Raises:
            OSError: the confinement server could not run it.
        """
        from oxydra.security._confine_client import start_confined

        spec = self.spec(shell=shell, command=command, cwd=cwd, env=env, grace=grace)
        return await start_confined(spec, stdin=stdin)

    def describe(self) -> str:
        """One line for `config show` and the logs."""
        if self.confined:
            return f"on, confined by Landlock (ABI {self.abi}) to the workspace's shared and tmp"
        return f"on, UNCONFINED files ({OPT_IN}); environment scrubbed, process tree killed"


def shell_sandbox(
    writable: Iterable[str],
    *,
    allow_unconfined: bool,
    probe: Callable[[], tuple[int, str]] | None = None,
) -> tuple[ShellSandbox | None, str]:
    """The sandbox for shell commands, or None when the shell must stay off; and why.

    Returns:
        The sandbox (None: no Landlock and no opt-in) and a sentence for `config show`.
    """
    abi, reason = (probe or ll.landlock_abi)()
    paths = tuple(os.path.realpath(p) for p in writable)
    if abi > 0:
        sandbox = ShellSandbox(writable=paths, abi=abi)
        return sandbox, sandbox.describe()
    if allow_unconfined:
        sandbox = ShellSandbox(writable=paths, abi=0)
        return sandbox, f"{sandbox.describe()}; {reason}"
    return None, f"off: {reason}, so commands cannot be confined; {OPT_IN} runs them anyway"


def shell_status(*, enabled: bool, allow_unconfined: bool) -> str:
    """What `shell_exec` will be on this machine, for `config show` and `config check`."""
    if not enabled:
        return "off ([tools.shell] enabled = false)"
    return shell_sandbox(("shared", "tmp"), allow_unconfined=allow_unconfined)[1]


def shell_environment(
    source: Mapping[str, str],
    env_keys: Iterable[str],
    *,
    home: str,
    tmp: str,
    secrets: Iterable[str] = (),
) -> dict[str, str]:
    """The scrubbed environment of invariant 3."""
    known = {s for s in secrets if s}
    env: dict[str, str] = {}
    for key in (*SAFE_ENV, *env_keys):
        value = source.get(key)
        if value is None or key.upper().startswith("OXYDRA") or value in known:
            continue
        env[key] = value
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update({"HOME": home, "TMPDIR": tmp, "TERM": "dumb"})
    return env
