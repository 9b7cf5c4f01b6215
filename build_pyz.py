"""Build `dist/oxydra.pyz`: one file that runs with only a Python 3.11+ interpreter.

Layout of the archive:
  __main__.py   the bootstrap (oxydra.py) with the build id filled in
  site/...      pure-Python packages, imported from the zip (with unchecked-hash .pyc files
                beside the sources, so nothing is compiled at start-up)
  native/<module>.zip   each package that holds native extensions (with its vendored
                `.libs`), as one stored zip of its own, unpacked by the bootstrap into a
                cache dir per build id when it is first imported;
  native/first-run.zip  all package metadata (and `.libs` of no package), unpacked by the
                first run. Every process keeps zipimport's directory of the archive in
                memory, so these files are not listed in it one by one (3,942 entries
                were ~2 MiB of an idle `vm`). Their shared objects are stripped of symbols
                nothing links against (`strip --strip-unneeded`: numkong's 46 MB are 4 MB
                without them), and their files of 64 KB or more are LZMA-compressed (the
                bootstrap unpacks them with zipfile; only `site/` must stay deflated, for
                zipimport)
Third-party packages are shipped without their test suites (`tests/` folders) and type
stubs (`.pyi`): neither is ever imported at run time.
A directory of `site/` without `__init__.py` has its own entry: zipimport finds a namespace
package (fastembed's `image/transform`) only through its directory entry. Compiled files
name their source as `oxydra.pyz/site/...`, so a traceback never shows the build's
temporary directory.

LZMA is most of a build's time (about 90 s of CPU for the `--with embed` archive), so the
compressed natives are made on every core at once, and kept in a content-addressed cache
(`$XDG_CACHE_HOME/oxydra/build`, else `~/.cache/oxydra/build`): a file compressed before, by
this or another build, is not compressed again. An entry names the digest of the bytes it
holds and is checked against it when read, so a damaged entry is made again, never shipped.
Entries no build used for 30 days are removed. `--no-cache` builds without it.

Usage: python build_pyz.py [--with embed] [--output dist/oxydra.pyz] [--pip] [--no-cache]
Every extra but `embed` is bundled by default.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
DEFAULT_EXTRAS = ["vectors", "wasm", "container", "tokenizers", "otel", "postgres"]
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")
# Native files this large are LZMA-compressed (a third smaller than deflate); smaller ones,
# the many metadata and .py files a first run unpacks, stay deflated: quicker to unpack.
LZMA_FROM = 64 << 10
CACHE_KEEP_SECS = 30 * 86400
FIRST_RUN = "first-run"  # the bundle of metadata and lone `.libs` (not a module's name)
# Pure-Python packages that only some commands import (the time-zone database, when the
# system has none; the postgres backend; the container tier's client; the terminal UI): they
# are bundled like the native packages, so the archive's directory, which every process
# keeps, does not list their 1,300 files.
DEFERRED = frozenset(
    {"tzdata", "psycopg", "docker", "requests", "urllib3", "blessed", "jinxed", "tqdm", "dateutil"}
)
# The bundles every start imports. They are shipped compiled (a first run compiling them
# kept 1.4 MiB of its garbage) and deflated, not LZMA-compressed (so is the first run's
# metadata): LZMA's 8 MiB dictionary,
# once freed, raises glibc's threshold for giving memory back, and a fresh `vm` kept
# 0.7 MiB more heap.
STARTUP = frozenset({"msgspec", "websockets"})
# Bundles shipped with compiled files (`__pycache__`, unchecked hash): STARTUP and the
# deferred ones (compiled in the archive before they were bundled). The others, numpy's
# 1.9 MB of compiled code among them, are compiled by their first import.
COMPILED = DEFERRED | STARTUP


def install_into(target: Path, extras: list[str]) -> None:
    """pip-install the project with `extras` into `target` (needs the package index)."""
    spec = f"{ROOT}[{','.join(extras)}]"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--disable-pip-version-check",
        "--target",
        str(target),
        spec,
    ]
    subprocess.run(cmd, check=True)
    shutil.rmtree(target / "bin", ignore_errors=True)


def copy_from_environment(target: Path, extras: list[str]) -> None:
    """Copy the installed dependency closure of oxydra[extras] into `target`, offline.

    The running interpreter's environment must hold every dependency (`make install` does);
    our own package is copied from the source tree, since it is installed editable.
    """
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip always vendors it
        from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]

    seen: set[str] = set()
    queue: list[tuple[str, tuple[str, ...]]] = [("oxydra", tuple(extras))]
    while queue:
        name, wanted = queue.pop()
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            key = req.name.lower().replace("_", "-")
            if key not in seen:
                seen.add(key)
                queue.append((req.name, tuple(req.extras)))
    for name in sorted(seen):
        dist = metadata.distribution(name)
        for rel in dist.files or []:
            if rel.parts[0] == ".." or "__pycache__" in rel.parts or _not_run(rel.parts):
                continue
            src = Path(str(dist.locate_file(rel)))
            if src.is_file():
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "oxydra", target / "oxydra", ignore=ignore)
    # The pinned catalog is edited at the top of the tree; setup.py maps it to this package.
    shutil.copytree(ROOT / "catalog", target / "oxydra" / "catalog" / "data", ignore=ignore)


def _not_run(parts: tuple[str, ...]) -> bool:
    """A dependency's own test suite and type stubs: never imported by a run, yet every
    entry of the archive is listed in the directory zipimport keeps in memory (numpy's
    tests alone are 575 entries)."""
    return "tests" in parts[:-1] or parts[-1].endswith(".pyi")


def missing_requirements(extras: list[str]) -> list[str]:
    """Requirements of oxydra[extras] this interpreter does not have installed."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip always vendors it
        from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]

    try:
        requires = metadata.distribution("oxydra").requires or []
    except metadata.PackageNotFoundError:
        return ["oxydra"]
    missing = []
    for text in requires:
        req = Requirement(text)
        envs = [{"extra": e} for e in extras]
        if req.marker and not any(req.marker.evaluate(env) for env in envs):
            continue
        try:
            metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            missing.append(req.name)
    return missing


def use_project_environment(extras: list[str], argv: list[str]) -> None:
    """Make sure the running Python holds what will be copied; else switch to `.venv`.

    The build copies installed packages, so it must run on the interpreter `make install`
    filled. Run with another one (`python3 build_pyz.py`), it re-executes itself on
    `.venv/bin/python` when that has everything, and otherwise stops saying what to do.
    """
    missing = missing_requirements(extras)
    if not missing:
        return
    venv_python = ROOT / ".venv" / "bin" / "python"
    here = Path(sys.prefix).resolve()
    if venv_python.exists() and (ROOT / ".venv").resolve() != here:
        print(f"build_pyz.py: this Python lacks {', '.join(missing)}; using {venv_python}")
        sys.stdout.flush()
        os.execv(venv_python, [str(venv_python), str(Path(__file__).resolve()), *argv])
    raise SystemExit(
        f"build_pyz.py: cannot bundle extras {extras}: {', '.join(missing)} not installed "
        f"for {sys.executable}.\n  Run `make install` (it installs every extra into .venv), "
        "then `.venv/bin/python build_pyz.py` with the same options,\n  or pass --pip to "
        "install the dependencies from the package index instead."
    )


def is_native(entry: Path) -> bool:
    """Whether a top-level site-packages entry is shipped as a bundle unpacked to disk.

    Package metadata (`*.dist-info`) goes to disk too: `importlib.metadata` does not look
    inside a directory of a zip, and packages such as fastembed read their own version.
    So do the `DEFERRED` pure-Python packages (module doc).
    """
    if entry.name in DEFERRED or entry.name.endswith((".libs", ".dist-info")):
        return True
    if entry.is_file():
        return entry.name.endswith(NATIVE_SUFFIXES)
    if not (entry / "__init__.py").exists() and not entry.name.endswith(".dist-info"):
        return True  # a namespace package (opentelemetry): zipimport cannot find its portions
    return any(p.name.endswith(NATIVE_SUFFIXES) for p in entry.rglob("*"))


def native_groups(site: Path) -> dict[str, list[str]]:
    """Each native top-level module and the entries unpacked for it, the package last.

    A module is its directory or its extension file (`x.cpython-311-x86_64-linux-gnu.so`
    is module `x`); a vendored `<name>.libs` goes with the package `<name>`. Metadata and a
    `.libs` without its package are not listed: the first run unpacks them up front.
    """
    native = [e for e in sorted(site.iterdir()) if e.name != "__pycache__" and is_native(e)]
    groups: dict[str, list[str]] = {}
    for entry in native:
        if entry.name.endswith((".dist-info", ".libs")):
            continue
        module = entry.name.split(".", 1)[0] if entry.is_file() else entry.name
        groups.setdefault(module, []).append(entry.name)
    for entry in native:
        base = entry.name.removesuffix(".libs")
        if entry.name.endswith(".libs") and base in groups:
            groups[base].insert(0, entry.name)
    return groups


def prune_site(site: Path) -> int:
    """Drop what a third-party package never imports at run time: `tests/`, `.pyi` stubs.

    Our own package keeps everything. Returns the bytes removed.
    """
    removed = 0
    for entry in sorted(site.iterdir()):
        if entry.name in ("oxydra", "__pycache__") or not entry.is_dir():
            continue
        for path in sorted(entry.rglob("*"), reverse=True):
            if path.is_dir() and path.name == "tests" and not path.is_symlink():
                removed += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
                shutil.rmtree(path)
            elif path.is_file() and path.suffix == ".pyi":
                removed += path.stat().st_size
                path.unlink()
    return removed


def strip_native(site: Path) -> int:
    """Strip debug and local symbols from every shared object of the native packages.

    `--strip-unneeded` keeps the dynamic symbol table (what `dlopen` and other libraries
    resolve against: usearch links numkong's symbols this way), so the code runs the same;
    a wheel's symbols only serve a debugger. A library auditwheel patched (`patchelf`) can
    come out of `strip` with segments the loader refuses ("ELF load command address/offset
    not page-aligned": numpy's OpenBLAS did), so every stripped file's loadable segments are
    checked and a file that fails keeps its original. Without `strip` (binutils) the archive
    is built unstripped. Returns the bytes saved.
    """
    tool = shutil.which("strip")
    if tool is None:
        print("build_pyz.py: no `strip` (binutils): native packages are left unstripped")
        return 0
    saved = 0
    for entry in sorted(site.iterdir()):
        if entry.name == "__pycache__" or not is_native(entry):
            continue
        files = [entry] if entry.is_file() else sorted(entry.rglob("*"))
        for file in files:
            if not file.is_file() or file.is_symlink() or not _is_elf(file):
                continue
            before = file.stat().st_size
            stripped = file.with_name(file.name + ".stripped")
            done = subprocess.run(
                [tool, "--strip-unneeded", "-o", str(stripped), str(file)], capture_output=True
            )
            if done.returncode != 0 or not _loadable(stripped):  # keep the original
                stripped.unlink(missing_ok=True)
                continue
            shutil.copymode(file, stripped)
            os.replace(stripped, file)
            saved += before - file.stat().st_size
    return saved


def _loadable(path: Path) -> bool:
    """Whether a 64-bit little-endian ELF's PT_LOAD segments are what `ld.so` maps: each
    one's file offset and address agree modulo the page size (4 KiB on every target)."""
    import struct

    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:  # ELFCLASS64, little-endian
        return False
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        at = phoff + index * phentsize
        if at + 56 > len(data):
            return False
        kind, _flags, offset, vaddr = struct.unpack_from("<IIQQ", data, at)
        if kind == 1 and (vaddr - offset) % 4096:  # PT_LOAD
            return False
    return True


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"\x7fELF"


def compile_legacy_pyc(
    path: Path, shown_as: str, cache: MemberCache | None = None, cfile: Path | None = None
) -> None:
    """Write `x.pyc` beside `x.py`, where zipimport looks for it (PEP 552 unchecked hash),
    or to `cfile` (a bundle's `__pycache__/x.cpython-311.pyc`, where the import system
    looks on disk).

    `shown_as` is the file name tracebacks print (the path inside the archive; on disk the
    import system names the real file). The result depends only on the source, that name
    and the interpreter, so it is cached by those.
    """
    cfile = cfile or Path(str(path) + "c")
    key = b"pyc\0" + importlib.util.MAGIC_NUMBER + shown_as.encode() + b"\0" + path.read_bytes()
    held = cache.get("pyc", key) if cache is not None else None
    if held is not None:
        cfile.write_bytes(held)
        return
    py_compile.compile(
        str(path),
        cfile=str(cfile),
        dfile=shown_as,
        doraise=False,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        quiet=2,
    )
    if cache is not None and cfile.exists():
        cache.put("pyc", key, cfile.read_bytes())


def default_cache() -> Path:
    """Where compressed members are kept between builds (see the module doc)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "oxydra" / "build"


Method = int  # zipfile.ZIP_LZMA or zipfile.ZIP_DEFLATED


def packed_member(data: bytes, method: Method) -> bytes:
    """`data` as zipfile stores a member compressed with `method` (LZMA: its properties
    header, then the stream; deflate: the raw stream at level 6)."""
    compressor: Any = (
        zipfile.LZMACompressor()
        if method == zipfile.ZIP_LZMA
        else zlib.compressobj(6, zlib.DEFLATED, -15)  # what zipfile makes at compresslevel=6
    )
    return bytes(compressor.compress(data) + compressor.flush())


class MemberCache:
    """Compressed members (and compiled files) by the digest of what they were made from
    and how (module doc).

    A file holds the digest of what follows it, then the bytes; a read that does not match
    (a damaged or foreign file) is a miss. Writes go through a temporary name, so a build
    killed mid-write leaves no half entry under a real name.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, kind: str, data: bytes) -> Path:
        name = hashlib.sha256(kind.encode() + b"\0" + data).hexdigest()
        return self.directory / f"{name}.member"

    def get(self, kind: str, data: bytes) -> bytes | None:
        path = self._path(kind, data)
        try:
            held = path.read_bytes()
        except OSError:
            return None
        digest, packed = held[:32], held[32:]
        if hashlib.sha256(packed).digest() != digest:
            return None
        os.utime(path)  # used: kept another CACHE_KEEP_SECS
        return packed

    def put(self, kind: str, data: bytes, packed: bytes) -> None:
        path = self._path(kind, data)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_bytes(hashlib.sha256(packed).digest() + packed)
            os.replace(tmp, path)
        except OSError:  # a full disk costs the next build time, not this build
            tmp.unlink(missing_ok=True)

    def prune(self, now: float) -> int:
        """Remove entries unused for CACHE_KEEP_SECS; returns how many."""
        removed = 0
        for path in self.directory.glob("*.member"):
            if now - path.stat().st_mtime > CACHE_KEEP_SECS:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def open_cache(directory: Path) -> MemberCache | None:
    """The cache, or None (said once) when it cannot be made: the build goes on without."""
    try:
        return MemberCache(directory)
    except OSError as exc:
        print(f"build_pyz.py: no cache of compressed members ({exc}); compressing all")
        return None


def pack_all(
    files: list[tuple[Path, Method]], cache: MemberCache | None
) -> dict[Path, tuple[bytes, bytes]]:
    """Each file's sha256 and its compressed member: from the cache, or made on every core."""

    def pack(job: tuple[Path, Method]) -> tuple[bytes, bytes]:
        file, method = job
        data = file.read_bytes()
        kind = f"member-{method}"
        packed = cache.get(kind, data) if cache is not None else None
        if packed is None:
            packed = packed_member(data, method)  # compressors let go of the GIL
            if cache is not None:
                cache.put(kind, data, packed)
        return hashlib.sha256(data).digest(), packed

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(zip((f for f, _ in files), pool.map(pack, files), strict=True))


class _Packed:
    """Stands in for zipfile's compressor when the member's bytes are compressed already:
    zipfile still reads the original bytes for the CRC and size it records."""

    def __init__(self, packed: bytes) -> None:
        self.packed = packed

    def compress(self, _data: bytes) -> bytes:
        out, self.packed = self.packed, b""
        return out

    def flush(self) -> bytes:
        return b""


def write_packed(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes, packed: bytes, method: Method
) -> None:
    """Write a member whose compressed form `packed` was made by `packed_member`."""
    info.compress_type = method
    with zf.open(info, "w") as dest:
        dest._compressor = _Packed(packed)  # type: ignore[attr-defined]
        dest.write(data)


def write_archive(site: Path, output: Path, cache: MemberCache | None = None) -> str:
    """Zip `site` into the archive; return the build id (hash of the contents)."""
    digest = hashlib.sha256()
    entries: list[tuple[str, Path]] = []
    groups = native_groups(site)
    compiled = {top for module in COMPILED for top in groups.get(module, [])}
    for entry in sorted(site.iterdir()):
        if entry.name == "__pycache__":
            continue
        prefix = "native" if is_native(entry) else "site"
        files = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts:
                continue
            rel = file.relative_to(site)
            if prefix == "site" and file.suffix == ".py":
                compile_legacy_pyc(file, f"oxydra.pyz/site/{rel}", cache)
                entries.append((f"site/{rel}c", Path(str(file) + "c")))
            elif file.suffix == ".py" and entry.name in compiled:
                cfile = (
                    file.parent / "__pycache__" / f"{file.stem}.{sys.implementation.cache_tag}.pyc"
                )
                cfile.parent.mkdir(exist_ok=True)
                compile_legacy_pyc(file, f"oxydra.pyz/native/{rel}", cache, cfile)
                if cfile.exists():
                    entries.append((f"native/{cfile.relative_to(site)}", cfile))
            entries.append((f"{prefix}/{rel}", file))
    lazy = {top for module, tops in groups.items() if module not in STARTUP for top in tops}
    jobs = [(f, _method(a, f, lazy)) for a, f in entries]
    packed = pack_all(jobs, cache)
    for arcname, file in entries:  # what the build holds: names and contents
        digest.update(arcname.encode() + b"\0" + packed[file][0])
    build_id = f"{_version()}-{digest.hexdigest()[:16]}"
    bootstrap = (
        (ROOT / "oxydra.py")
        .read_text()
        .replace('BUILD_ID = "dev"', f'BUILD_ID = "{build_id}"', 1)
        .replace("] = {}  # replaced by build_pyz.py", f"] = {groups!r}  #", 1)
    )
    methods = {file: method for file, method in jobs}
    bundles: dict[str, list[tuple[str, Path]]] = {}
    owner = {top: module for module, tops in groups.items() for top in tops}
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            zf.writestr("__main__.py", bootstrap)
            for directory in directory_entries(site, (n for n, _ in entries)):
                info = zipfile.ZipInfo(directory)
                info.external_attr = (0o40755 << 16) | 0x10  # a directory, drwxr-xr-x
                zf.writestr(info, b"")
            for arcname, file in entries:
                if arcname.startswith("native/"):
                    inner = arcname.removeprefix("native/")
                    bundle = owner.get(inner.split("/", 1)[0], FIRST_RUN)
                    bundles.setdefault(bundle, []).append((inner, file))
                    continue
                info = zipfile.ZipInfo.from_file(file, arcname)
                write_packed(zf, info, file.read_bytes(), packed[file][1], methods[file])
            for bundle, members in sorted(bundles.items()):
                inner_zip = _bundle(members, packed, methods)
                zf.writestr(zipfile.ZipInfo(f"native/{bundle}.zip"), inner_zip, zipfile.ZIP_STORED)
    tmp.chmod(0o755)
    os.replace(tmp, output)
    return build_id


def _bundle(
    members: list[tuple[str, Path]],
    packed: dict[Path, tuple[bytes, bytes]],
    methods: dict[Path, Method],
) -> bytes:
    """One native package (or the first run's metadata) as a zip of its own: the archive
    lists it as one entry, so zipimport's directory of the archive, which every process
    keeps, holds none of its files."""
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for inner, file in members:
            info = zipfile.ZipInfo.from_file(file, inner)
            write_packed(zf, info, file.read_bytes(), packed[file][1], methods[file])
    return out.getvalue()


def _method(arcname: str, file: Path, lazy: set[str]) -> Method:
    """LZMA for large files of the bundles unpacked on a later import (`lazy`: their
    top-level names); deflate for the rest: what zipimport reads, and what a start unpacks
    (STARTUP, and the first run's metadata)."""
    parts = arcname.split("/")
    big = parts[0] == "native" and file.stat().st_size >= LZMA_FROM
    return zipfile.ZIP_LZMA if big and parts[1] in lazy else zipfile.ZIP_DEFLATED


def directory_entries(site: Path, names: Iterable[str]) -> list[str]:
    """The directories of `site/` zipimport must see as entries: those without an
    `__init__.py` (a namespace package's portion is found only through its directory entry,
    as fastembed's `image/transform` is), sorted. A package's directory needs none."""
    found: set[str] = set()
    for name in names:
        if not name.startswith("site/"):
            continue
        parts = name.split("/")[1:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if not (site / folder / "__init__.py").exists():
                found.add(f"site/{folder}/")
    return sorted(found)


def _version() -> str:
    text = (ROOT / "oxydra" / "__init__.py").read_text()
    return text.split('__version__ = "', 1)[1].split('"', 1)[0]


def main(argv: list[str] | None = None) -> int:
    """Build the archive; prints its path, size and build id."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--with",
        dest="extra",
        action="append",
        default=[],
        help="bundle another extra too (e.g. embed)",
    )
    parser.add_argument("--output", default=str(ROOT / "dist" / "oxydra.pyz"))
    parser.add_argument(
        "--pip",
        action="store_true",
        help="install dependencies with pip (needs the index) instead of "
        "copying them from the running environment",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="compress every native file again (no cache of compressed members)",
    )
    args = parser.parse_args(argv)
    extras = DEFAULT_EXTRAS + [e for e in args.extra if e not in DEFAULT_EXTRAS]
    if not args.pip:
        use_project_environment(extras, sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="oxydra-pyz-") as tmp:
        site = Path(tmp) / "site"
        if args.pip:
            install_into(site, extras)
        else:
            site.mkdir()
            copy_from_environment(site, extras)
        prune_site(site)
        strip_native(site)
        cache = None if args.no_cache else open_cache(default_cache())
        build_id = write_archive(site, Path(args.output), cache)
        if cache is not None:
            cache.prune(time.time())
    size = Path(args.output).stat().st_size
    print(f"built {args.output} ({size / 1e6:.1f} MB, build {build_id}, extras {extras})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
