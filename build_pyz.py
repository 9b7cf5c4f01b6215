"""Build `dist/oxydra.pyz`: one file that runs with only a Python 3.11+ interpreter.

Layout of the archive (a zip Python runs; three members):
  __main__.pyc  the bootstrap compiled (unchecked hash: nothing compares it with the source)
  __main__.py   the bootstrap (oxydra.py) with the build id filled in
  oxydra.pack   stored: an index, then every other file compressed on its own, read by the
                bootstrap with one `pread` per file (a zip of the same 4,000 files costs
                ~13 ms of CPU at every start to parse its directory, and zipimport inflates
                through pure-Python code)
    site/...    pure-Python packages, imported from the pack (with unchecked-hash .pyc files
                beside the sources, so nothing is compiled at start-up)
    native/...  packages that hold native extensions (and their vendored `.libs`), and all
                package metadata, unpacked once per build id into a cache dir by the bootstrap;
                their shared objects are stripped of symbols nothing links against
                (`strip --strip-unneeded`: numkong's 46 MB are 4 MB without them), and their
                files of 64 KB or more are xz-compressed (unpacked once; the rest, read at
                every run, is deflated: quicker to inflate)
Third-party packages are shipped without their test suites (`tests/` folders) and type
stubs (`.pyi`): neither is ever imported at run time.
The index lists every folder too: a namespace package (a directory without `__init__.py`,
as fastembed has) is found through it. Compiled files name their source as
`oxydra.pyz/site/...`, so a traceback never shows the build's temporary directory.

xz is most of a build's time (about 90 s of CPU for the `--with embed` archive), so the
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
import lzma
import marshal
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

ROOT = Path(__file__).resolve().parent
DEFAULT_EXTRAS = ["vectors", "wasm", "container", "tokenizers", "otel", "postgres"]
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")
# Native files this large are xz-compressed (a third smaller than deflate); smaller ones,
# the many metadata and .py files a first run unpacks, stay deflated: quicker to unpack.
LZMA_FROM = 64 << 10
# Native packages every start imports. They ship compiled (`__pycache__`, unchecked hash:
# a first run compiling them kept ~1.4 MiB of the compiler's garbage) and stay deflated
# whatever their size, as does the first run's metadata: xz's 8 MiB dictionary, once freed,
# raises glibc's threshold for handing memory back, and a first run kept ~0.8 MiB more heap.
STARTUP = frozenset({"msgspec", "websockets"})
CACHE_KEEP_SECS = 30 * 86400


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
    """Whether a top-level site-packages entry must live on disk to be imported.

    Package metadata (`*.dist-info`) goes to disk too: `importlib.metadata` does not look
    inside a directory of a zip, and packages such as fastembed read their own version.
    """
    if entry.name.endswith((".libs", ".dist-info")):
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
    """Write `x.pyc` beside `x.py`, where the archive's importer looks for it (PEP 552
    unchecked hash), or to `cfile` (`__pycache__/x.cpython-311.pyc` of a native package,
    where the import system looks on disk).

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


Method = int  # STORED, DEFLATED or XZ: how the pack holds one file
STORED, DEFLATED, XZ = 0, 8, 14  # the bootstrap's constants (oxydra.py)
PACK = "oxydra.pack"
PACK_MAGIC = b"OXPK1\0"


def packed_member(data: bytes, method: Method) -> bytes:
    """`data` as the pack holds it: an xz stream, a raw deflate stream (level 6), or as is."""
    if method == XZ:
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE)
    if method == DEFLATED:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush()
    return data


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
        kind = f"pack-{method}"
        packed = cache.get(kind, data) if cache is not None else None
        if packed is None:
            packed = packed_member(data, method)  # compressors let go of the GIL
            if cache is not None:
                cache.put(kind, data, packed)
        return hashlib.sha256(data).digest(), packed

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(zip((f for f, _ in files), pool.map(pack, files), strict=True))


def build_pack(
    entries: list[tuple[str, Path]], methods: list[Method], packed: dict[Path, tuple[bytes, bytes]]
) -> bytes:
    """The `oxydra.pack` member: magic, index length, the marshalled index
    ({name: (offset, stored size, size, method, mode)}, the set of folders), then each
    file as `packed_member` made it (stored as is when compressing did not make it smaller).
    """
    files: dict[str, tuple[int, int, int, int, int]] = {}
    blobs: list[bytes] = []
    offset = 0
    for (arcname, file), method in zip(entries, methods, strict=True):
        data_stat = file.stat()
        blob = packed[file][1]
        if len(blob) >= data_stat.st_size and method != STORED:
            blob, method = file.read_bytes(), STORED
        files[arcname] = (offset, len(blob), data_stat.st_size, method, data_stat.st_mode & 0o777)
        blobs.append(blob)
        offset += len(blob)
    index = marshal.dumps((files, frozenset(folders(files))), 4)
    return b"".join([PACK_MAGIC, len(index).to_bytes(4, "little"), index, *blobs])


def write_archive(site: Path, output: Path, cache: MemberCache | None = None) -> str:
    """Pack `site` into the archive; return the build id (hash of the contents)."""
    digest = hashlib.sha256()
    entries: list[tuple[str, Path]] = []
    groups = native_groups(site)
    startup = {top for module in STARTUP for top in groups.get(module, [])}
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
            elif file.suffix == ".py" and entry.name in startup:
                tag = sys.implementation.cache_tag
                cfile = file.parent / "__pycache__" / f"{file.stem}.{tag}.pyc"
                cfile.parent.mkdir(exist_ok=True)
                compile_legacy_pyc(file, f"oxydra.pyz/native/{rel}", cache, cfile)
                if cfile.exists():
                    entries.append((f"native/{cfile.relative_to(site)}", cfile))
            entries.append((f"{prefix}/{rel}", file))
    later = {top for module, tops in groups.items() if module not in STARTUP for top in tops}
    methods = [_method(a, f, later) for a, f in entries]
    packed = pack_all(list(zip((f for _, f in entries), methods, strict=True)), cache)
    for arcname, file in entries:  # what the build holds: names and contents
        digest.update(arcname.encode() + b"\0" + packed[file][0])
    build_id = f"{_version()}-{digest.hexdigest()[:16]}"
    bootstrap = (
        (ROOT / "oxydra.py")
        .read_text()
        .replace('BUILD_ID = "dev"', f'BUILD_ID = "{build_id}"', 1)
        .replace("] = {}  # replaced by build_pyz.py", f"] = {groups!r}  #", 1)
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    with open(tmp, "wb") as fh, tempfile.TemporaryDirectory(prefix="oxydra-main-") as scratch:
        fh.write(b"#!/usr/bin/env python3\n")
        main = Path(scratch) / "__main__.py"
        main.write_text(bootstrap)
        compile_legacy_pyc(main, "oxydra.pyz/__main__.py", cache)
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            # the compiled bootstrap first: zipimport runs it without compiling the source
            # (3.8 ms a start); an interpreter whose bytecode differs falls back to the source
            zf.write(Path(scratch) / "__main__.pyc", "__main__.pyc")
            zf.writestr("__main__.py", bootstrap)
            info = zipfile.ZipInfo(PACK, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, build_pack(entries, methods, packed), zipfile.ZIP_STORED)
    tmp.chmod(0o755)
    os.replace(tmp, output)
    return build_id


def _method(arcname: str, file: Path, later: set[str]) -> Method:
    """xz for large files of the native packages a later import unpacks (`later`: their
    top-level names); deflate for the rest (read at each run, or unpacked by every first
    run: STARTUP and the package metadata)."""
    parts = arcname.split("/")
    big = parts[0] == "native" and file.stat().st_size >= LZMA_FROM
    return XZ if big and parts[1] in later else DEFLATED


def folders(names: Iterable[str]) -> set[str]:
    """Every folder (`a`, `a/b`) that holds one of the names."""
    found: set[str] = set()
    for name in names:
        parts = name.split("/")[:-1]
        found.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return found


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
