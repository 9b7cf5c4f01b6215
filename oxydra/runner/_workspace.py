"""A user's workspace on the host: `<workspace_root>/<user_id>/{shared,tmp,vault,logs,ipc,.oxydra}`.

Invariants after `provision`:
1. every directory of the layout exists, is owned by us, and is mode 0700 (looser modes
   left by someone else are tightened; a directory owned by another uid is refused, so a
   pre-created trap cannot collect the guest's files). When we are root, a directory may
   also belong to the guest's uid (`SUDO_UID`, else 10001), to which the container and
   micro_vm tiers give the directories their guest writes;
2. `shared`, `tmp` and `vault` honour the `[mounts]` of `users/<id>.toml` (absolute, or
   relative to the user's directory) and are canonical paths; a mount that reaches a
   cache of native code, the workspace's own `ipc/`, `.oxydra/` or `logs/`, or that holds
   an agent config directory, is refused before anything is created (`_reach`);
3. nothing is deleted: stale markers and sockets are removed by `clear_stale` only.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from oxydra.config.runner_schema import Mounts
from oxydra.core.errors import RunnerError
from oxydra.runner._reach import check_mounts, mount_path
from oxydra.runner._rootfs import guest_ids

LAYOUT = ("shared", "tmp", "vault", "logs", "ipc", ".oxydra")
OWNER_ONLY = 0o700


@dataclass(frozen=True)
class UserWorkspace:
    """Canonical paths of one provisioned workspace."""

    root: Path
    shared: Path
    tmp: Path
    vault: Path

    @property
    def logs(self) -> Path:
        """Guest and runner log files."""
        return self.root / "logs"

    @property
    def ipc(self) -> Path:
        """Markers, tokens, sockets and the bootstrap file."""
        return self.root / "ipc"

    @property
    def internal(self) -> Path:
        """`.oxydra`: the memory database and caches, denied to the model's tools."""
        return self.root / ".oxydra"

    @property
    def control_socket(self) -> Path:
        """The runner daemon's control socket."""
        return self.ipc / "runner-control.sock"

    @property
    def gateway_marker(self) -> Path:
        """Written by the guest once its gateway listens: `ws://host:port/ws`."""
        return self.ipc / "gateway-endpoint"

    @property
    def gateway_token_file(self) -> Path:
        """The gateway token, for local clients (mode 0600)."""
        return self.ipc / "gateway-token"

    @property
    def lock_file(self) -> Path:
        """Held (flock) by the runner daemon for its lifetime: one daemon per user."""
        return self.ipc / "runner.lock"

    def log_file(self, role: str, stream: str) -> Path:
        """`logs/<role>.<stream>.log`, role `oxydra-vm` or `shell-vm`."""
        return self.logs / f"{role}.{stream}.log"


def provision(
    user_root: Path,
    mounts: Mounts | None = None,
    *,
    source: str = "users/<id>.toml",
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    cwd: Path | None = None,
) -> UserWorkspace:
    """Create (or check) the layout and return its canonical paths.

    `source` names the file the mounts come from, for the refusal of one that reaches what
    the tools must not (`_reach`); `environ`, `home` and `cwd` say where the caches and
    config directories are (default: this process's).

    Raises:
        RunnerError: a mount reaches a protected place; a directory cannot be created, is
            not a directory, or is not ours.
    """
    mounts = mounts or Mounts()
    home = home or Path.home()
    check_mounts(
        mounts,
        Path(os.path.realpath(user_root)),
        source=source,
        environ=os.environ if environ is None else environ,
        home=home,
        cwd=cwd or Path.cwd(),
    )
    _make_dir(user_root.parent, parents=True, shared=True)
    root = _make_dir(user_root)
    for name in LAYOUT:
        _make_dir(root / name)
    (root / "ipc" / "bootstrap").mkdir(mode=OWNER_ONLY, exist_ok=True)
    return UserWorkspace(
        root=root,
        shared=_mount(root, mounts.shared, "shared", home),
        tmp=_mount(root, mounts.tmp, "tmp", home),
        vault=_mount(root, mounts.vault, "vault", home),
    )


def _mount(root: Path, configured: str | None, name: str, home: Path) -> Path:
    if not configured:
        return root / name
    return _make_dir(mount_path(root, configured, home), parents=True)


def _make_dir(path: Path, *, parents: bool = False, shared: bool = False) -> Path:
    """Create `path` (0700); unless `shared`, insist it is ours and tighten its mode."""
    try:
        path.mkdir(mode=OWNER_ONLY, parents=parents, exist_ok=True)
        info = path.stat()
    except FileExistsError as exc:
        raise RunnerError(f"{path} exists and is not a directory") from exc
    except OSError as exc:
        raise RunnerError(f"cannot create workspace directory {path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise RunnerError(f"{path} exists and is not a directory")
    if shared:  # the workspace root holds every user: its owner and mode are the operator's
        return path.resolve()
    if info.st_uid not in _owners():
        raise RunnerError(f"{path} is owned by uid {info.st_uid}, not by us; refusing to use it")
    if stat.S_IMODE(info.st_mode) != OWNER_ONLY:
        path.chmod(OWNER_ONLY)
    return path.resolve()


def _owners() -> set[int]:
    """Who may own a workspace directory: us, and the guest's uid when we are root."""
    me = os.geteuid()
    return {me, guest_ids(os.environ)[0]} if me == 0 else {me}


def clear_stale(workspace: UserWorkspace) -> None:
    """Remove markers and sockets a previous guest may have left behind."""
    for path in (workspace.gateway_marker, workspace.ipc / "shell-daemon.sock"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
