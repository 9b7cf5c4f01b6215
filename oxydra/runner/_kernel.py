"""The microVM's kernel and initramfs, from Debian's `linux-image-amd64` and
`busybox-static` (fetched with `apt-get download`, never installed on the host).

Not `linux-image-cloud-amd64`: it is built without 9p (`# CONFIG_NET_9P is not set`), and
the workspace reaches the guest over virtio-9p. The generic kernel builds virtio, 9p, ext4
and the network drivers as modules, so the guest boots
through a small initramfs: busybox loads those modules, brings up the network QEMU's user
mode offers (10.0.2.15/24, gateway 10.0.2.2), mounts the ext4 root read-only, the five
workspace shares (9p over virtio) under /workspace, tmpfs on /tmp and /run, and hands over
to the guest init with `switch_root`. Cached in `<cache>/kernel-<version>/`.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from oxydra.core.errors import RunnerError
from oxydra.runner._rootfs import GUEST_INIT, WORKSPACE_SHARES, Log

KERNEL_PACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
INITRAMFS_FORMAT = 2
# What the guest needs beyond the kernel's built-ins; their dependencies are found from
# each module's `depends=` and loaded first.
WANTED_MODULES = (
    "virtio_mmio", "virtio_blk", "virtio_net", "virtio_console",
    "crc32c_generic", "ext4", "9pnet_virtio", "9p",
)  # fmt: skip
SHARE_OPTIONS = "trans=virtio,version=9p2000.L,msize=262144,access=client,cache=none"


@dataclass(frozen=True)
class KernelFiles:
    """A kernel and the initramfs that boots our rootfs with it."""

    vmlinux: Path
    initramfs: Path
    version: str


def init_script() -> str:
    """The initramfs `/init` (busybox sh); see the module docstring."""
    shares = "\n".join(
        f"mount -t 9p -o {SHARE_OPTIONS}{',ro' if tag == 'vault' else ''} "
        f"{tag} /newroot/workspace/{name} || fail 'cannot mount the {tag} share'"
        for tag, name in WORKSPACE_SHARES.items()
    )
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
fail() {{ echo "oxydra-initramfs: $1" >/dev/console; poweroff -f; }}
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.list); do insmod /lib/modules/$m || fail "insmod $m"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do usleep 20000; i=$((i+1)); done
mount -t ext4 -o ro /dev/vda /newroot || fail 'cannot mount the root disk'
{shares}
mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=64m tmpfs /newroot/tmp
mount -t tmpfs -o nosuid,nodev,mode=0755,size=8m tmpfs /newroot/run
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
mount --move /dev /newroot/dev
mount --move /sys /newroot/sys
mount --move /proc /newroot/proc
exec switch_root /newroot /{GUEST_INIT}
"""


def ensure_kernel(cache: Path, log: Log) -> KernelFiles:
    """The cached kernel and initramfs, fetched and built the first time.

    Raises:
        RunnerError: apt-get cannot fetch the packages, or they lack what we need.
    """
    cache.mkdir(parents=True, exist_ok=True)
    for done in sorted(cache.glob(f"kernel-*-i{INITRAMFS_FORMAT}")):
        files = _files(done)
        if files is not None:
            log(f"kernel: {files.vmlinux} (cached)")
            return files
    with tempfile.TemporaryDirectory(dir=cache, prefix=".kernel-") as scratch:
        work = Path(scratch)
        log(f"kernel: fetching {KERNEL_PACKAGE} and {BUSYBOX_PACKAGE} with apt-get download")
        tree = _fetch(work)
        version = _kernel_version(tree)
        target = cache / f"kernel-{version}-i{INITRAMFS_FORMAT}"
        staging = work / "out"
        staging.mkdir()
        bzimage = (tree / "boot" / f"vmlinuz-{version}").read_bytes()
        (staging / "vmlinux").write_bytes(uncompressed_kernel(bzimage))
        modules = tree / "lib" / "modules" / version / "kernel"
        busybox = (tree / "bin" / "busybox").read_bytes()
        (staging / "initramfs.cpio.gz").write_bytes(initramfs(busybox, modules))
        (staging / "version").write_text(version + "\n")
        os.replace(staging, target)
    files = _files(target)
    assert files is not None
    return files


def uncompressed_kernel(bzimage: bytes) -> bytes:
    """The ELF `vmlinux` inside a bzImage (xz payload), booted through its PVH entry.

    Why not the bzImage: on a host whose KVM is `kvm-pvm` (nested, no VMX/SVM) the bzImage's
    decompressor never gets past "Probing EDD", while the PVH entry boots.

    Raises:
        RunnerError: no xz payload, or it does not hold an ELF image.
    """
    import lzma

    at = bzimage.find(b"\xfd7zXZ\x00")
    if at < 0:
        raise RunnerError("the kernel image holds no xz payload (CONFIG_KERNEL_XZ expected)")
    try:
        elf = lzma.LZMADecompressor().decompress(bzimage[at:])
    except lzma.LZMAError as exc:
        raise RunnerError(f"cannot unpack the kernel's xz payload: {exc}") from exc
    if not elf.startswith(b"\x7fELF"):
        raise RunnerError("the kernel's payload is not an ELF image")
    return elf


def _files(folder: Path) -> KernelFiles | None:
    paths = (folder / "vmlinux", folder / "initramfs.cpio.gz", folder / "version")
    if not all(p.is_file() for p in paths):
        return None
    return KernelFiles(paths[0], paths[1], paths[2].read_text().strip())


def _fetch(work: Path) -> Path:
    depends = _apt(["apt-cache", "depends", KERNEL_PACKAGE], work)
    image = [w for w in depends.split() if w.startswith("linux-image-") and w != KERNEL_PACKAGE]
    if not image:
        raise RunnerError(f"apt-cache does not name the kernel package behind {KERNEL_PACKAGE}")
    _apt(["apt-get", "download", "-q", image[0], BUSYBOX_PACKAGE], work)
    tree = work / "tree"
    for deb in sorted(work.glob("*.deb")):
        _apt(["dpkg-deb", "-x", str(deb), str(tree)], work)
    return tree


def _apt(argv: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise RunnerError(f"{argv[0]} is not available: the kernel comes from Debian") from exc
    if done.returncode != 0:
        raise RunnerError(f"`{' '.join(argv)}` failed:\n{done.stderr.strip()[-2000:]}")
    return done.stdout


def _kernel_version(tree: Path) -> str:
    found = sorted(p.name.removeprefix("vmlinuz-") for p in (tree / "boot").glob("vmlinuz-*"))
    if not found:
        raise RunnerError(f"{KERNEL_PACKAGE} held no /boot/vmlinuz-*")
    return found[-1]


def initramfs(busybox: bytes, modules: Path) -> bytes:
    """A gzipped `newc` cpio: busybox, the modules we load, /init, /dev/console."""
    out = _Cpio()
    for folder in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"):
        out.add(folder, 0o040755)
    out.add("dev/console", 0o020600, rdev=(5, 1))
    out.add("bin/busybox", 0o100755, busybox)
    names = []
    for path in load_order(modules, WANTED_MODULES):
        out.add(f"lib/modules/{path.name}", 0o100644, path.read_bytes())
        names.append(path.name)
    out.add("modules.list", 0o100644, ("\n".join(names) + "\n").encode())
    out.add("init", 0o100755, init_script().encode())
    return gzip.compress(out.finish(), compresslevel=6, mtime=0)


def load_order(tree: Path, wanted: tuple[str, ...]) -> list[Path]:
    """The `.ko` files of `wanted` and their dependencies, each after what it depends on.

    Raises:
        RunnerError: a module (or a dependency) is not in the kernel package.
    """
    index = {p.name.removesuffix(".ko").replace("-", "_"): p for p in tree.rglob("*.ko")}
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        path = index.get(name)
        if path is None:
            raise RunnerError(f"the kernel has no module {name} (is it {KERNEL_PACKAGE}?)")
        for dep in _depends(path.read_bytes()):
            visit(dep)
        order.append(path)

    for name in wanted:
        visit(name)
    return order


def _depends(module: bytes) -> list[str]:
    """The `depends=` field of a module's .modinfo section (comma-separated names)."""
    at = module.find(b"\0depends=")
    if at < 0:
        return []
    end = module.find(b"\0", at + 1)
    text = module[at + 9 : end].decode("ascii", "replace")
    return [d.replace("-", "_") for d in text.split(",") if d]


class _Cpio:
    """The `newc` format (070701): a header of hex fields, the name, the data, 4-aligned."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
        self.ino += 1
        self.buf.write(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        self._pad()
        self.buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def finish(self) -> bytes:
        self.add("TRAILER!!!", 0)
        return self.buf.getvalue()
