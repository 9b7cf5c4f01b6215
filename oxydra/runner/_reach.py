"""What a `[mounts]` entry may not reach: the places whose contents later run or steer us.

A mount is a host directory the model's tools read (`vault`) or change (`shared`, `tmp`):
the container sidecar's `/shared`, a micro-VM share, the process-tier guest's Landlock
rules. So no mount may be, hold, or lie inside:
1. the archive's native package cache (`$OXYDRA_PYZ_CACHE`, else `~/.cache/oxydra/pyz`):
   the next start of `oxydra.pyz` loads the `.so` files and compiled modules (`.compiled/`)
   there, outside any sandbox;
2. the compiled WASM guest cache (`~/.cache/oxydra/wasm`): its entries are loaded as
   machine code, and its key signs them;
3. the workspace's `ipc/` (gateway token, control socket), `.oxydra/` (memory database,
   persona) and `logs/`.
And no mount may hold an agent config directory (`~/.oxydra`, `~/.config/oxydra`,
`./.oxydra`, `/etc/oxydra`): agent.toml decides how confined the shell is. (A workspace
inside `~/.oxydra/workspaces` lies inside one; that is the default layout.)

Paths are compared after resolving symlinks, so a link to `~` is seen as `~`. A refusal
names the file, the key, and what the mount would reach, before anything is created.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from oxydra.config.runner_schema import Mounts
from oxydra.core.cachedirs import pyz_cache_root, wasm_cache_dir
from oxydra.core.errors import RunnerError

KEYS = ("shared", "tmp", "vault")
_INTERNAL = {
    "ipc": "the workspace's ipc/ (gateway token, sockets)",
    ".oxydra": "the workspace's .oxydra/ (memory database, persona)",
    "logs": "the workspace's logs/",
}
_CONFIG_DIRS = (".oxydra", ".config/oxydra")


def check_mounts(
    mounts: Mounts,
    root: Path,
    *,
    source: str,
    environ: Mapping[str, str],
    home: Path,
    cwd: Path,
) -> None:
    """Raise `RunnerError` when a configured mount reaches a protected place (module doc).

    `root` is the user's workspace directory; relative mounts resolve against it.
    """
    pyz_note = " (OXYDRA_PYZ_CACHE)" if environ.get("OXYDRA_PYZ_CACHE") else ""
    guarded = [
        (
            pyz_cache_root(environ, home),
            f"the archive's native package cache{pyz_note}: code planted there runs at the "
            "next start of oxydra.pyz",
        ),
        (wasm_cache_dir(environ, home), "the compiled WASM guest cache"),
        *((root / name, what) for name, what in _INTERNAL.items()),
    ]
    configs = [home / d for d in _CONFIG_DIRS] + [cwd / ".oxydra", Path("/etc/oxydra")]
    held = [(place, "an agent config directory") for place in configs]
    for key in KEYS:
        configured = getattr(mounts, key)
        if not configured:
            continue
        mount = _real(mount_path(root, configured, home))
        for place, what in guarded:
            real = _real(place)
            if mount == real or mount in real.parents or real in mount.parents:
                _refuse(source, key, configured, real, what)
        for place, what in held:
            real = _real(place)
            if mount == real or mount in real.parents:
                _refuse(source, key, configured, real, what)


def mount_path(root: Path, configured: str, home: Path) -> Path:
    """A `[mounts]` value as a path: `~` is `home`, a relative path is under `root`."""
    if configured == "~" or configured.startswith("~/"):
        path = home / configured[2:]
    else:
        path = Path(configured).expanduser()
    return path if path.is_absolute() else root / path


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _refuse(source: str, key: str, configured: str, place: Path, what: str) -> None:
    raise RunnerError(
        f"{source}: [mounts] {key} = {configured!r} reaches {place}, {what}; "
        "the model's tools must not reach it",
        hint="mount a project folder; not ~, the caches of native code, the workspace's "
        "ipc/, .oxydra/ or logs/, nor a folder holding agent config (docs/runner.md)",
    )
