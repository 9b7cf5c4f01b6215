"""The guest's root filesystem, made from Debian's packages only (no image registry).

Theory of operation:
1. The base is `mmdebstrap --variant=essential` plus Python, cached as
   `<cache>/base-<key>.tar` where the key hashes the suite, the package list and the
   excludes: it does not depend on our code, so it is built once per machine.
2. The guest rootfs (`<cache>/<build id>/rootfs.tar`) is the base with, added: the archive
   at /opt/oxydra/oxydra.pyz, its native packages already unpacked under
   /opt/oxydra/pyz-cache/<build id> (the guest's root is read-only and its /tmp `noexec`,
   so nothing can be unpacked at run time), an `oxydra` command, the guest init, a user
   `oxydra` (the host uid when that is not 0, else 10001: never uid 0 inside) and the
   `/workspace/*` mount points of the microVM. Set-uid and set-gid bits are cleared.
3. The same tar is what `docker import` loads and what `mke2fs -d` turns into the ext4 disk.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path

from oxydra.core.errors import RunnerError
from oxydra.runner._pack import pack_files

BASE_PACKAGES = ("python3-minimal", "libpython3.11-stdlib", "ca-certificates")
BASE_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
BASE_FORMAT = 1  # bump when the base recipe changes without its inputs changing
GUEST_UID_FOR_ROOT = 10001
OPT = "opt/oxydra"
PYZ_CACHE = "/opt/oxydra/pyz-cache"
GUEST_INIT = "sbin/oxydra-init"
# 9p tag → directory under /workspace (the guest's workspace root in the microVM)
WORKSPACE_SHARES = {
    "shared": "shared",
    "tmp": "tmp",
    "vault": "vault",
    "internal": ".oxydra",
    "logs": "logs",
    "ipc": "ipc",
}
GUEST_PATH = "/usr/local/bin:/usr/bin:/bin"

Log = Callable[[str], None]


def guest_cache(environ: Mapping[str, str]) -> Path:
    """`$OXYDRA_GUEST_CACHE`, else `$XDG_CACHE_HOME/oxydra/guest`, else `~/.cache/...`."""
    explicit = environ.get("OXYDRA_GUEST_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")) / ".cache")
    return Path(base).expanduser() / "oxydra" / "guest"


def guest_ids(environ: Mapping[str, str]) -> tuple[int, int]:
    """The uid:gid the guest runs as: the invoking user's, or 10001 when that is root."""
    uid = int(environ.get("SUDO_UID") or os.getuid())
    gid = int(environ.get("SUDO_GID") or os.getgid())
    return (uid, gid) if uid != 0 else (GUEST_UID_FOR_ROOT, GUEST_UID_FOR_ROOT)


def debian_suite() -> str:
    """The host's Debian codename (the guest's Python must match the archive's natives)."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return "bookworm"


def ensure_base(cache: Path, log: Log) -> Path:
    """The cached base tar, built with mmdebstrap the first time.

    Raises:
        RunnerError: mmdebstrap is missing or failed (its output is in the message).
    """
    suite = debian_suite()
    recipe = f"{BASE_FORMAT}|{suite}|{','.join(BASE_PACKAGES)}|{','.join(BASE_EXCLUDES)}"
    path = cache / f"base-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}.tar"
    if path.is_file():
        log(f"base rootfs: {path} (cached)")
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.tar")
    argv = ["mmdebstrap", "--variant=essential", "--format=tar", "--quiet"]
    argv += [f"--include={','.join(BASE_PACKAGES)}"]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in BASE_EXCLUDES]
    argv += [suite, str(partial)]
    log(f"base rootfs: building with mmdebstrap ({suite}, {' '.join(BASE_PACKAGES)})")
    _run(argv, "mmdebstrap", hint="apt-get install mmdebstrap")
    os.replace(partial, path)
    return path


def _run(argv: list[str], what: str, *, hint: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise RunnerError(f"{what} is not installed", hint=hint) from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
        raise RunnerError(f"{what} failed (status {done.returncode}):\n{tail}")


def compose(base: Path, pyz: Path, build_id: str, ids: tuple[int, int], out: Path) -> None:
    """Write the guest rootfs tar: the base plus our files (see the module docstring)."""
    uid, gid = ids
    partial = out.with_suffix(".partial")
    with tarfile.open(base) as src, tarfile.open(partial, "w") as dst:
        for member in src:
            name = member.name.removeprefix("./")
            if name in ("etc/passwd", "etc/group", "etc/resolv.conf", "etc/hostname"):
                data = src.extractfile(member)
                text = data.read().decode() if data is not None else ""
                _add_file(dst, name, _patched(name, text, uid, gid).encode(), 0o644)
                continue
            member.mode &= ~0o6000  # no set-uid/set-gid program inside the guest
            fileobj = src.extractfile(member) if member.isreg() else None
            dst.addfile(member, fileobj)
        for entry in _our_entries(pyz, build_id, uid, gid):
            entry(dst)
    os.replace(partial, out)


def _patched(name: str, text: str, uid: int, gid: int) -> str:
    match name:
        case "etc/passwd":
            return text + f"oxydra:x:{uid}:{gid}:oxydra guest:/workspace/shared:/bin/sh\n"
        case "etc/group":
            return text + f"oxydra:x:{gid}:\n"
        case "etc/resolv.conf":
            return "nameserver 10.0.2.3\n"  # QEMU user networking's resolver (microVM)
        case _:
            return "oxydra-guest\n"


def _add_file(dst: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    dst.addfile(info, io.BytesIO(data))


def _add_dir(dst: tarfile.TarFile, name: str, mode: int = 0o755, owner: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
    info.uid = info.gid = owner
    dst.addfile(info)


def _our_entries(
    pyz: Path, build_id: str, uid: int, gid: int
) -> Iterator[Callable[[tarfile.TarFile], None]]:
    wrapper = (
        "#!/bin/sh\n# oxydra inside the guest: the archive, its natives unpacked beside it\n"
        f'OXYDRA_PYZ_CACHE={PYZ_CACHE} exec /usr/bin/python3 -I /{OPT}/oxydra.pyz "$@"\n'
    )
    init = resources.files("oxydra.runner").joinpath("_guest_init.py").read_bytes()
    yield lambda t: _add_dir(t, OPT)
    yield lambda t: t.add(str(pyz), f"{OPT}/oxydra.pyz", filter=_plain(0o644))
    yield lambda t: _add_file(t, f"{OPT}/BUILD_ID", f"{build_id}\n".encode(), 0o644)
    yield lambda t: _add_file(t, "usr/local/bin/oxydra", wrapper.encode(), 0o755)
    yield lambda t: _add_file(t, GUEST_INIT, init, 0o755)
    yield lambda t: _add_natives(t, pyz, build_id)
    yield lambda t: _add_dir(t, "workspace")
    for name in WORKSPACE_SHARES.values():
        yield lambda t, n=name: _add_dir(t, f"workspace/{n}", 0o755)  # type: ignore[misc]
    yield lambda t: _add_dir(t, "run/oxydra", 0o755)


def _plain(mode: int) -> Callable[[tarfile.TarInfo], tarfile.TarInfo]:
    def fix(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode, info.mtime = mode, 0
        return info

    return fix


def _add_natives(dst: tarfile.TarFile, pyz: Path, build_id: str) -> None:
    """The archive's `native/` tree as the bootstrap would unpack it (read-only root)."""
    prefix = f"{PYZ_CACHE.lstrip('/')}/{build_id}"
    _add_dir(dst, PYZ_CACHE.lstrip("/"))
    _add_dir(dst, prefix)
    made: set[str] = set()
    for file in pack_files(pyz, "native/"):
        rel = file.name.removeprefix("native/")
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder not in made:
                made.add(folder)
                _add_dir(dst, f"{prefix}/{folder}")
        _add_file(dst, f"{prefix}/{rel}", file.data, (file.mode or 0o644) | 0o444)


def make_ext4(rootfs_tar: Path, out: Path, scratch: Path) -> None:
    """The rootfs tar as an ext4 disk image (`mke2fs -d`), sized to fit with some room.

    Raises:
        RunnerError: not root (the files' owners would be lost), or tar/mke2fs failed.
    """
    if os.geteuid() != 0:
        raise RunnerError(
            "building the micro_vm disk needs root: `mke2fs -d` copies file owners from an "
            "unpacked tree, which only root can unpack faithfully",
            hint="run `runner image build` as root, or pass --no-disk",
        )
    tree = scratch / "tree"
    tree.mkdir(parents=True)
    _run(["tar", "-xpf", str(rootfs_tar), "-C", str(tree)], "tar", hint="apt-get install tar")
    size_mib = rootfs_tar.stat().st_size // (1024 * 1024) * 5 // 4 + 64
    partial = out.with_suffix(".partial")
    argv = ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "oxydra-root", "-d", str(tree)]
    argv += ["-E", "root_owner=0:0", str(partial), f"{size_mib}M"]
    _run(argv, "mke2fs", hint="apt-get install e2fsprogs")
    os.replace(partial, out)
