"""Entry point of `oxydra.pyz` (copied into the archive as `__main__.py`, and compiled).

The archive is a zip of this bootstrap (its source and its `.pyc`) and `oxydra.pack`,
stored, which holds every other file compressed one by one behind an index (`build_pyz.py`
writes it; `_Pack` reads it). Python runs the zip; the zip's own directory is three entries,
so nothing parses
thousands of them at start. `_ArchiveImporter` imports pure-Python modules straight from
the pack: it finds them in the index (no path scan), reads their compiled code with one
`pread` and loads it; their package data is read the same way (`importlib.resources`).
A module's compiled code is inflated once: the first run that imports it keeps the `.pyc`
in the build's cache dir (`.compiled/`), and later runs read that file instead.

Packages with native extensions cannot be imported from memory, so they are unpacked into
a cache directory named by the build id (`$OXYDRA_PYZ_CACHE`, else
`$XDG_CACHE_HOME/oxydra/pyz`, else `~/.cache/oxydra/pyz`), each one only when it is first
imported: the first run unpacks the package metadata (a few hundred KB) and then what that
run imports (msgspec for `--help`, not numpy, wasmtime or the vector index). `NATIVE`
(filled in by build_pyz.py) maps each native top-level module to its entries (the package,
then its vendored `.libs`); `_NativeFinder` unpacks a group the first time one of its names
is imported. Every unpack is atomic (a scratch dir in the cache, then `rename`), so two
first runs at once, or a run killed midway, never leave a half-filled package in use. Later
runs pay one `stat` per native package they import.

The archive runs isolated from the interpreter's own site-packages: a package installed
there (click, pygments, trio) is neither imported by ours nor found instead of ours.

Each run marks its cache dir as used (its mtime, refreshed at most hourly). When a new build
unpacks, the dirs of other builds unused for `PRUNE_AFTER_SECS`, and scratch dirs of
unpacks that died, are removed, so rebuilding does not pile up copies of the native
packages.
"""

import _thread
import functools
import marshal
import os
import sys
import time
import zlib
from collections.abc import Iterator
from typing import IO, Any

BUILD_ID = "dev"  # replaced by build_pyz.py
NATIVE: dict[str, list[str]] = {}  # replaced by build_pyz.py: module -> entries under native/
PRUNE_AFTER_SECS = 24 * 3600
TOUCH_AFTER_SECS = 3600
PACK = "oxydra.pack"  # the member that holds every other file
PACK_MAGIC = b"OXPK1\0"
STORED, DEFLATED, XZ = 0, 8, 14  # how one file is held in the pack
COMPILED = ".compiled"  # in the build's cache dir: the inflated .pyc files (never importable)


def _cache_root() -> str:
    explicit = os.environ.get("OXYDRA_PYZ_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "oxydra", "pyz")


class _Pack:
    """The files of `oxydra.pack`: its index (name -> offset, stored size, size, method,
    mode), the folders, and each file's bytes read with one `pread` of the archive, which
    stays open (close-on-exec) for the life of the process."""

    def __init__(self, archive: str) -> None:
        self.archive = archive
        self.fd = os.open(archive, os.O_RDONLY | os.O_CLOEXEC)
        base = _member_data(archive, self.fd, PACK)
        head = os.pread(self.fd, len(PACK_MAGIC) + 4, base)
        if head[: len(PACK_MAGIC)] != PACK_MAGIC:
            raise ImportError(f"{archive}: {PACK} is not a pack of this bootstrap's format")
        size = int.from_bytes(head[len(PACK_MAGIC) :], "little")
        index = os.pread(self.fd, size, base + len(head))
        self.files: dict[str, tuple[int, int, int, int, int]]
        self.dirs: frozenset[str]
        self.files, self.dirs = marshal.loads(index)
        self.start = base + len(head) + size
        self._children: dict[str, set[str]] | None = None

    def read(self, name: str) -> bytes:
        """The bytes of the file `name` (`site/a/b.pyc`); KeyError when there is none."""
        offset, stored, _size, method, _mode = self.files[name]
        data = os.pread(self.fd, stored, self.start + offset)
        if method == DEFLATED:
            return zlib.decompress(data, -15)
        if method == XZ:
            import lzma

            return lzma.decompress(data)
        return data

    def copy(self, name: str, out: IO[bytes], chunk: int = 1 << 20) -> None:
        """Write the file `name` to `out`, reading and inflating at most `chunk` bytes at a
        time. Unpacking wasmtime or numpy whole (tens of MB in one buffer) made glibc raise
        its mmap threshold to that size for the rest of the process, and later buffers came
        from a heap that never shrinks: a `vm` after its first file tool kept ~18 MiB more."""
        offset, stored, _size, method, _mode = self.files[name]
        inflate: Any = None
        if method == DEFLATED:
            inflate = zlib.decompressobj(-15)
        elif method == XZ:
            import lzma

            inflate = lzma.LZMADecompressor()
        done = 0
        while done < stored:
            data = os.pread(self.fd, min(chunk, stored - done), self.start + offset + done)
            if not data:
                raise OSError(f"{self.archive}: {name} is cut short")
            done += len(data)
            if inflate is None:
                out.write(data)
            elif method == DEFLATED:
                while data:
                    out.write(inflate.decompress(data, chunk))
                    data = inflate.unconsumed_tail
            else:
                out.write(inflate.decompress(data, max_length=chunk))
                while not inflate.eof and not inflate.needs_input:
                    out.write(inflate.decompress(b"", max_length=chunk))
        if method == DEFLATED:
            out.write(inflate.flush())

    def children(self, folder: str) -> set[str]:
        """The names directly inside `folder` (built once, at the first listing)."""
        if self._children is None:
            found: dict[str, set[str]] = {}
            for name in (*self.files, *self.dirs):
                parent, _, leaf = name.rpartition("/")
                found.setdefault(parent, set()).add(leaf)
            self._children = found
        return self._children.get(folder, set())


def _member_data(archive: str, fd: int, member: str) -> int:
    """Where `member`'s bytes start in the archive: from the directory zipimport read to run
    `__main__.py` when it is there, else from the zip's own directory."""
    import zipimport

    entry = getattr(zipimport, "_zip_directory_cache", {}).get(archive, {}).get(member)
    if entry is not None:
        header = entry[4]
    else:
        import zipfile

        with zipfile.ZipFile(archive) as zf:
            header = zf.getinfo(member).header_offset
    local = os.pread(fd, 30, header)
    if local[:4] != b"PK\x03\x04":
        raise ImportError(f"{archive}: no local header for {member}")
    return (
        header
        + 30
        + int.from_bytes(local[26:28], "little")
        + int.from_bytes(local[28:30], "little")
    )


def _unpack(pack: _Pack, cache: str, entries: list[str], target: str) -> None:
    """Write `native/<entry>/...` for each entry into a scratch dir, then rename into `target`.

    `entries` are top-level names (`numpy`, `numpy.libs`, `x.cpython-311-x86_64-linux-gnu.so`)
    or, when `target` does not exist yet, ignored: the scratch dir itself becomes `target`.
    """
    import shutil
    import tempfile

    os.makedirs(cache, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".unpack-", dir=cache)
    try:
        wanted = set(entries)
        for name in pack.files:
            if not name.startswith("native/") or name.split("/", 2)[1] not in wanted:
                continue
            dest = os.path.join(scratch, *name.split("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as fh:
                pack.copy(name, fh)
            mode = pack.files[name][4]
            if mode:
                os.chmod(dest, mode)
        unpacked = os.path.join(scratch, "native")
        os.makedirs(unpacked, exist_ok=True)
        if not os.path.isdir(target):
            _rename(unpacked, target)
            return
        for entry in entries:  # the package itself last: its presence says "unpacked"
            _rename(os.path.join(unpacked, entry), os.path.join(target, entry))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _rename(source: str, dest: str) -> None:
    try:
        os.rename(source, dest)
    except OSError:
        if not os.path.exists(dest):  # another process won the race: theirs is complete
            raise


class _NativeFinder:
    """Finds a native package not unpacked yet; it is unpacked when it is really imported.

    A probe (`importlib.util.find_spec("wasmtime")`, asking whether an extra is there) gets
    a spec and unpacks nothing; loading that spec unpacks the package, then hands over to
    the spec the path finder gives for it.
    """

    def __init__(self, pack: _Pack, target: str) -> None:
        self.pack, self.target = pack, target

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        entries = NATIVE.get(name) if path is None else None
        if entries is None or os.path.exists(os.path.join(self.target, entries[-1])):
            return None
        import importlib.machinery

        return importlib.machinery.ModuleSpec(name, _Unpacker(self, entries))

    def unpack(self, name: str, entries: list[str]) -> None:
        cache = os.path.dirname(self.target)
        try:
            _unpack(self.pack, cache, entries, self.target)
        except OSError as exc:
            raise ImportError(
                f"oxydra.pyz: cannot unpack {name} into {cache}: {exc.strerror or exc}; "
                "set OXYDRA_PYZ_CACHE to a writable directory",
                name=name,
            ) from exc
        finder = sys.path_importer_cache.get(self.target)
        if finder is not None:
            finder.invalidate_caches()  # it listed the dir before the package was in it

    def invalidate_caches(self) -> None:
        """Nothing cached beyond what is on disk."""

    def unpack_all(self) -> None:
        """Unpack every native package not unpacked yet: for a child that cannot write here
        (the runner's Landlock-confined process-tier guest reads this cache, never writes it).
        """
        for name, entries in NATIVE.items():
            if not os.path.exists(os.path.join(self.target, entries[-1])):
                self.unpack(name, entries)


class _Unpacker:
    """The loader of a `_NativeFinder` spec: unpack, then become the real spec."""

    def __init__(self, finder: _NativeFinder, entries: list[str]) -> None:
        self.finder, self.entries = finder, entries

    def create_module(self, spec: object) -> object:
        import importlib.machinery

        name = spec.name  # type: ignore[attr-defined]
        self.finder.unpack(name, self.entries)
        real = importlib.machinery.PathFinder.find_spec(name)
        if real is None or (real.loader is None and real.submodule_search_locations is None):
            raise ImportError(f"oxydra.pyz: {name} is not in the archive", name=name)
        # the import system reads these after create_module: the module gets the real ones
        spec.loader = real.loader  # type: ignore[attr-defined]
        spec.origin = real.origin  # type: ignore[attr-defined]
        spec.submodule_search_locations = real.submodule_search_locations  # type: ignore[attr-defined]
        spec.loader_state = real.loader_state  # type: ignore[attr-defined]
        spec.cached = real.cached  # type: ignore[attr-defined]
        spec.has_location = real.has_location  # type: ignore[attr-defined]
        if real.loader is None:  # a namespace package: the import system makes its module
            return None
        return real.loader.create_module(real)

    def exec_module(self, module: object) -> None:
        raise ImportError("oxydra.pyz: the unpacked package's loader runs it")


def _isolate() -> None:
    """Drop the interpreter's site-packages from `sys.path` (the archive bundles its own)."""
    sys.path[:] = [
        p for p in sys.path if os.path.basename(p) not in ("site-packages", "dist-packages")
    ]


def _prepare_path() -> None:
    archive = os.path.dirname(os.path.abspath(__file__))
    if not os.path.isfile(archive):  # run from a source tree, not an archive
        return
    _isolate()
    pack = _Pack(archive)
    target = os.path.join(_cache_root(), BUILD_ID)
    try:
        used = os.stat(target).st_mtime
    except (FileNotFoundError, NotADirectoryError):
        eager = [e for e in _entries(pack) if e.endswith((".dist-info", ".libs"))]
        eager = [e for e in eager if not any(e in group for group in NATIVE.values())]
        try:
            _unpack(pack, os.path.dirname(target), eager, target)
        except OSError as exc:  # HOME=/nonexistent for a service account, a read-only disk
            where = os.path.dirname(target)
            reason = exc.strerror or exc
            print(
                f"oxydra.pyz: cannot unpack its native packages into {where}: {reason}; "
                "set OXYDRA_PYZ_CACHE to a writable directory",
                file=sys.stderr,
            )
            sys.exit(2)
        _prune(os.path.dirname(target))
    else:
        if time.time() - used > TOUCH_AFTER_SECS:
            try:
                os.utime(target)
            except OSError:  # a shared, read-only cache prepared by someone else
                pass
    sys.path.insert(0, target)
    # where a path entry `site/` came before: after the built-in and frozen modules
    names = [getattr(f, "__name__", "") for f in sys.meta_path]
    last = names.index("PathFinder") if "PathFinder" in names else len(names)
    sys.meta_path.insert(last, _ArchiveImporter(pack, os.path.join(target, COMPILED)))
    sys.meta_path.insert(0, _NativeFinder(pack, target))


class _ArchiveImporter:
    """Finder and loader of the pure-Python modules in the pack (`site/...`).

    A module is found by its name in the index, never by scanning a path; its code is the
    `.pyc` the build compiled (unchecked hash: nothing to compare at start), or, under an
    interpreter whose bytecode differs, compiled from the `.py` beside it. `__file__` is
    `<archive>/site/<path>.py`, so tracebacks and `inspect` name files inside the archive.
    """

    def __init__(self, pack: _Pack, compiled: str | None = None) -> None:
        import importlib.machinery
        from importlib._bootstrap_external import MAGIC_NUMBER, decode_source

        self.pack, self.root, self.compiled = pack, os.path.join(pack.archive, "site"), compiled
        self._spec_class = importlib.machinery.ModuleSpec
        self._magic, self._decode = MAGIC_NUMBER, decode_source

    def _key(self, fullname: str) -> tuple[str, bool] | None:
        """`site/a/b` (a module) or `site/a/b/__init__` (a package), and which it is."""
        base = "site/" + fullname.replace(".", "/")
        files = self.pack.files
        if base + "/__init__.pyc" in files or base + "/__init__.py" in files:
            return base + "/__init__", True
        if base + ".pyc" in files or base + ".py" in files:
            return base, False
        return None

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        found = self._key(fullname)
        if found is None:
            folder = "site/" + fullname.replace(".", "/")
            if folder not in self.pack.dirs:
                return None
            spec = self._spec_class(fullname, None, is_package=True)  # a namespace package
            spec.submodule_search_locations = [os.path.join(self.root, *folder.split("/")[1:])]
            return spec
        key, package = found
        origin = os.path.join(self.pack.archive, *key.split("/")) + ".py"
        spec = self._spec_class(fullname, self, origin=origin, is_package=package)
        spec.has_location = True
        if package:
            spec.submodule_search_locations = [os.path.dirname(origin)]
        return spec

    def create_module(self, spec: object) -> None:
        """The default module object."""

    def exec_module(self, module: Any) -> None:
        exec(self.get_code(module.__spec__.name), module.__dict__)

    def get_code(self, fullname: str) -> Any:
        found = self._key(fullname)
        if found is None:
            raise ImportError(f"oxydra.pyz: no module {fullname}", name=fullname)
        key = found[0]
        compiled = self._compiled(key + ".pyc")
        if compiled and compiled[:4] == self._magic:
            return marshal.loads(memoryview(compiled)[16:])
        source = self.pack.read(key + ".py")  # another interpreter's bytecode: compile
        return compile(source, self.get_filename(fullname), "exec", dont_inherit=True)

    def _compiled(self, name: str) -> bytes | None:
        """A module's `.pyc`: inflated from the pack once, then read from the cache dir.

        Inflating is most of what importing from the pack costs (~13 ms of a turn's 240
        modules); reading the file the first run wrote is a fifth of that. A file of the
        wrong size (a write cut short) is made again; a cache this process cannot write (a
        read-only guest image) leaves every run inflating.
        """
        entry = self.pack.files.get(name)
        if entry is None:
            return None
        if self.compiled is None:
            return self.pack.read(name)
        path = os.path.join(self.compiled, *name.split("/")[1:])
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            if len(data) == entry[2]:
                return data
        except OSError:
            pass
        data = self.pack.read(name)
        tmp = f"{path}.{os.getpid()}.{_thread.get_ident()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return data

    def get_source(self, fullname: str) -> str | None:
        found = self._key(fullname)
        if found is None or found[0] + ".py" not in self.pack.files:
            return None
        return str(self._decode(self.pack.read(found[0] + ".py")))

    def get_filename(self, fullname: str) -> str:
        found = self._key(fullname)
        if found is None:
            raise ImportError(f"oxydra.pyz: no module {fullname}", name=fullname)
        return os.path.join(self.pack.archive, *found[0].split("/")) + ".py"

    def is_package(self, fullname: str) -> bool:
        found = self._key(fullname)
        return found is not None and found[1]

    def get_data(self, path: str) -> bytes:
        """A file by its path under the archive (`pkgutil.get_data` and friends)."""
        prefix = self.pack.archive + os.sep
        name = path[len(prefix) :].replace(os.sep, "/") if path.startswith(prefix) else ""
        if name not in self.pack.files:
            raise FileNotFoundError(path)
        return self.pack.read(name)

    def get_resource_reader(self, fullname: str) -> object:
        found = self._key(fullname)
        if found is None or not found[1]:
            return None
        return _Reader(self.pack, found[0].rpartition("/")[0])

    def invalidate_caches(self) -> None:
        """The pack does not change under a running process."""


class _Reader:
    """What `importlib.resources.files()` asks a package's loader for: its folder."""

    def __init__(self, pack: _Pack, at: str) -> None:
        self.pack, self.at = pack, at

    def files(self) -> Any:
        return _entry_class()(self.pack, self.at)


@functools.cache
def _entry_class() -> type:
    """The `Traversable` of a file or folder in the pack (built at the first resource read:
    the ABC's module is not worth importing for `--help`)."""
    import io
    from importlib.resources.abc import Traversable

    class Entry(Traversable):
        """A file or folder of the pack; `at` is its path in it (`site/a/b`)."""

        def __init__(self, pack: _Pack, at: str) -> None:
            self._pack, self._at = pack, at.strip("/")

        @property
        def name(self) -> str:
            return self._at.rpartition("/")[2]

        def is_file(self) -> bool:
            return self._at in self._pack.files

        def is_dir(self) -> bool:
            return self._at in self._pack.dirs

        def iterdir(self) -> Iterator["Entry"]:
            for child in sorted(self._pack.children(self._at)) if self.is_dir() else ():
                yield Entry(self._pack, f"{self._at}/{child}")

        def joinpath(self, *parts: str) -> "Entry":
            names = [p for part in parts for p in os.fspath(part).split("/") if p]
            return Entry(self._pack, "/".join([self._at, *names]))

        def read_bytes(self) -> bytes:
            if not self.is_file():
                raise FileNotFoundError(f"{self._at}: no such file in the archive")
            return self._pack.read(self._at)

        def open(self, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
            if mode not in ("r", "rb"):
                raise ValueError(f"package data opens read-only, not {mode!r}")
            data = io.BytesIO(self.read_bytes())
            return data if mode == "rb" else io.TextIOWrapper(data, *args, **kwargs)

        def __repr__(self) -> str:
            return f"<oxydra.pyz entry {self._at}>"

    return Entry


def _entries(pack: _Pack) -> list[str]:
    """The top-level names under `native/` in the pack (metadata and vendored libs)."""
    return sorted({n.split("/", 2)[1] for n in pack.files if n.startswith("native/")})


def _prune(root: str) -> None:
    """Remove other builds' dirs unused for a day, and scratch dirs of dead unpacks."""
    import shutil

    cutoff = time.time() - PRUNE_AFTER_SECS
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if name == BUILD_ID:
            continue
        try:
            stale = os.stat(path).st_mtime < cutoff
        except OSError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    _prepare_path()
    from oxydra.cli import entry

    entry()
