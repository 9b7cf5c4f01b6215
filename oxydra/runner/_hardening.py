"""Confinement of a process-tier guest: Landlock, `no_new_privs`, resource limits.

Unlike the Rust runner, which only probed for Landlock, the runner applies it. The plan is
computed in the parent (paths, limits, the Landlock ruleset fd); `HardeningPlan.preexec` runs
in the child between fork and exec and only makes syscalls: `prctl(PR_SET_NO_NEW_PRIVS)`,
`setrlimit`, `sched_setaffinity`, `landlock_restrict_self`. Landlock is inherited, so the
shell commands the guest runs are confined the same way; that is why the shell tool is
enabled only when Landlock is in force.

What a confined guest may touch (everything else is denied, whatever its uid):
- read-write: the user's workspace and its `[mounts]` (vault read-only when outside it);
- read + execute: the interpreter (prefix, base prefix, stdlib, site-packages, the source
  tree or `oxydra.pyz` and its native cache), `/usr`, `/lib*`, `/bin`, `/sbin`;
- read: the few `/etc` files a Python process, TLS, DNS and `/bin/sh` need; the agent config
  files directly inside the config directories (not their subdirectories, which can hold
  other users' workspaces); CPU topology under `/sys/devices/system/cpu`;
- read + execute, never write: the operator's skill sources (`skills/` of `/etc/oxydra`,
  `~/.config/oxydra`, `~/.oxydra` and `./.oxydra`), so the guest finds those skills and a
  skill's scripts can run;
- `/dev/null` read-write; `/dev/zero`, `/dev/urandom`, `/dev/random` read;
- nothing under `/proc`: another process's environment (API keys) stays unreadable.

The shell commands the guest starts run in a nested Landlock domain of their own
(`security/confine.py`): only the workspace's `shared` and `tmp` are writable there, and
`ipc/`, `.oxydra/` and the config files are out of reach.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
import sysconfig
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from oxydra.config.runner_schema import Resources
from oxydra.core.errors import RunnerError
from oxydra.runner._selfcmd import package_root
from oxydra.runner._workspace import UserWorkspace
from oxydra.security import _landlock as ll
from oxydra.security.confine import ETC_ENTRIES, SYSTEM_DIRS

PR_SET_NO_NEW_PRIVS = 38
DEFAULT_NOFILE = 4096
_SYSTEM_DIRS = SYSTEM_DIRS
_ETC_FILES = (*ETC_ENTRIES, "oxydra")
_DEVICES_RW = ("/dev/null",)
_DEVICES_RO = ("/dev/zero", "/dev/urandom", "/dev/random", "/sys/devices/system/cpu")
_CONFIG_DIRS = (".config/oxydra", ".oxydra")


@dataclass
class HardeningPlan:
    """What will be applied to the guest, and what could not be.

    Attributes:
        applied: names for `runner status` (`landlock`, `no_new_privs`, `rlimits`).
        degraded: `(code, detail)` pairs for the envelope's startup status.
        confined: Landlock is in force, so the in-guest shell may be enabled.
    """

    rlimits: list[tuple[int, int]] = field(default_factory=list)
    cpus: set[int] | None = None
    ruleset: ll.Ruleset | None = None
    applied: list[str] = field(default_factory=list)
    degraded: list[tuple[str, str]] = field(default_factory=list)

    @property
    def confined(self) -> bool:
        """Landlock rules will be enforced in the guest."""
        return self.ruleset is not None

    def preexec(self) -> None:
        """Runs in the child before exec: syscalls only, no allocation-heavy work."""
        if _prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        for limit, value in self.rlimits:
            resource.setrlimit(limit, (value, value))
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)
        if self.ruleset is not None:
            self.ruleset.enforce()

    def close(self) -> None:
        """Release the ruleset fd once the child is running."""
        if self.ruleset is not None:
            self.ruleset.close()


_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl


def plan_hardening(
    workspace: UserWorkspace,
    resources: Resources,
    *,
    environ: Mapping[str, str],
    home: Path,
    cwd: Path,
    abi_probe: Callable[[], tuple[int, str]] = ll.landlock_abi,
) -> HardeningPlan:
    """Decide the confinement of a process-tier guest and build its Landlock ruleset."""
    plan = HardeningPlan(rlimits=resource_limits(resources), applied=["no_new_privs", "rlimits"])
    plan.cpus = _cpu_set(resources.max_vcpus)
    abi, reason = abi_probe()
    if abi <= 0:
        plan.degraded.append(
            ("process_hardening_limited", f"landlock unavailable: {reason}; shell tool disabled")
        )
        return plan
    rules = landlock_rules(workspace, environ=environ, home=home, cwd=cwd)
    try:
        plan.ruleset = ll.Ruleset.build(rules, abi)
    except ll.LandlockError as exc:
        raise RunnerError(str(exc)) from exc
    plan.applied.insert(0, "landlock")
    return plan


def resource_limits(resources: Resources) -> list[tuple[int, int]]:
    """RLIMIT_CORE 0, NOFILE, and NPROC / AS from `[resources]` when set.

    RLIMIT_NPROC counts every process of the uid, and root is exempt from it: on a shared
    account it can only be a coarse bound (the container tier's pids limit is exact).
    """
    wanted = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, DEFAULT_NOFILE)]
    if resources.max_processes:
        wanted.append((resource.RLIMIT_NPROC, resources.max_processes))
    if resources.max_memory_mib:
        wanted.append((resource.RLIMIT_AS, resources.max_memory_mib * 1024 * 1024))
    limits = []
    for limit, value in wanted:  # never above the current hard limit (that would be refused)
        _, hard = resource.getrlimit(limit)
        limits.append((limit, value if hard == resource.RLIM_INFINITY else min(value, hard)))
    return limits


def _cpu_set(max_vcpus: int | None) -> set[int] | None:
    if not max_vcpus:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return set(allowed[:max_vcpus]) if max_vcpus < len(allowed) else None


def landlock_rules(
    workspace: UserWorkspace, *, environ: Mapping[str, str], home: Path, cwd: Path
) -> list[ll.PathRule]:
    """The allow-list described in the module docstring."""
    rules = [ll.PathRule(str(p), ll.READ_WRITE) for p in _writable(workspace)]
    if not _inside(workspace.vault, workspace.root):
        rules.append(ll.PathRule(str(workspace.vault), ll.READ_ONLY))
    runtime = [*_SYSTEM_DIRS, *python_paths(cwd)]
    rules += [ll.PathRule(p, ll.READ_ONLY) for p in _unique(runtime)]
    etc = [f"/etc/{name}" for name in _ETC_FILES]
    etc.append(f"/etc/python{sys.version_info.major}.{sys.version_info.minor}")
    etc += [environ[k] for k in ("SSL_CERT_FILE", "SSL_CERT_DIR") if environ.get(k)]
    rules += [ll.PathRule(p, ll.READ_FILE | ll.READ_DIR) for p in etc]
    rules += [ll.PathRule(p, ll.READ_FILE) for p in config_files(home, cwd)]
    rules += [ll.PathRule(p, ll.READ_ONLY) for p in skill_dirs(home, cwd)]
    rules += [ll.PathRule(p, ll.READ_FILE | ll.WRITE_FILE | ll.IOCTL_DEV) for p in _DEVICES_RW]
    rules += [ll.PathRule(p, ll.READ_FILE | ll.READ_DIR) for p in _DEVICES_RO]
    return rules


def _writable(workspace: UserWorkspace) -> list[Path]:
    extra = [p for p in (workspace.shared, workspace.tmp) if not _inside(p, workspace.root)]
    return [workspace.root, *extra]


def python_paths(cwd: Path) -> list[str]:
    """Directories the interpreter needs to start and import us (not the working directory)."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    paths.append(os.path.dirname(os.path.realpath(sys.executable)))
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    paths += [sysconfig.get_path(name) for name in names if sysconfig.get_path(name)]
    paths.append(str(package_root()))
    here = {str(cwd), ""}
    paths += [p for p in sys.path if p not in here and os.path.exists(p)]
    return paths


def config_files(home: Path, cwd: Path) -> list[str]:
    """Regular files directly inside the agent config directories (agent.toml, SYSTEM.md...)."""
    files: list[str] = []
    for directory in [home / d for d in _CONFIG_DIRS] + [cwd / ".oxydra"]:
        try:
            with os.scandir(directory) as found:
                entries = list(found)
        except OSError:
            continue
        files += [e.path for e in entries if e.is_file(follow_symlinks=True)]
    return files


def skill_dirs(home: Path, cwd: Path) -> list[str]:
    """The operator's skill sources (tools.skills.skill_sources without the workspace)."""
    dirs = [Path("/etc/oxydra"), *(home / d for d in _CONFIG_DIRS), cwd / ".oxydra"]
    return [str(d / "skills") for d in dirs]


def describe(plan: HardeningPlan) -> str:
    """The `hardening=` value of `runner status`."""
    return ",".join(plan.applied) or "none"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(os.path.normpath(i) for i in items if i))
