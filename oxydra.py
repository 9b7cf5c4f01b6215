"""Entry point of `oxydra.pyz` (copied into the archive as `__main__.py`).

Pure-Python code runs straight from the archive. Packages with native extensions cannot be
imported from a zip, so they are unpacked into a cache directory named by the build id
(`$OXYDRA_PYZ_CACHE`, else `$XDG_CACHE_HOME/oxydra/pyz`, else `~/.cache/oxydra/pyz`), each
one only when it is first imported: the first run unpacks the package metadata (a few
hundred KB) and then what that run imports (msgspec for `--help`, not numpy, wasmtime or
the vector index). `NATIVE` (filled in by build_pyz.py) maps each native top-level module to
the top-level names its bundle `native/<module>.zip` holds (its vendored `.libs`, then the
package); `_NativeFinder` unpacks a bundle the first time its module is imported. Each
bundle is one entry of the archive, so the directory of the archive that zipimport keeps
in memory lists none of their files. Every unpack is atomic (a scratch dir in
the cache, then `rename`), so two first runs at once, or a run killed midway, never leave a
half-filled package in use. Later runs pay one `stat` per native package they import.

The archive runs isolated from the interpreter's own site-packages: a package installed
there (click, pygments, trio) is neither imported by ours nor found instead of ours.

Each run marks its cache dir as used (its mtime, refreshed at most hourly). When a new build
unpacks, the dirs of other builds unused for `PRUNE_AFTER_SECS`, and scratch dirs of
unpacks that died, are removed, so rebuilding does not pile up copies of the native
packages.
"""

import functools
import os
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

BUILD_ID = "dev"  # replaced by build_pyz.py
NATIVE: dict[str, list[str]] = {}  # replaced by build_pyz.py: module -> entries under native/
PRUNE_AFTER_SECS = 24 * 3600
TOUCH_AFTER_SECS = 3600


def _cache_root() -> str:
    explicit = os.environ.get("OXYDRA_PYZ_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "oxydra", "pyz")


FIRST_RUN = "first-run"  # native/first-run.zip: package metadata, unpacked up front


def _unpack(archive: str, cache: str, bundle: str, entries: list[str], target: str) -> None:
    """Extract `native/<bundle>.zip` into a scratch dir, then rename into `target`.

    `entries` are the top-level names it holds (`numpy`, `numpy.libs`,
    `x.cpython-311-x86_64-linux-gnu.so`), moved into `target` the package last; when
    `target` does not exist yet the scratch dir itself becomes `target`. The bundle is read
    through zipimport's directory of the archive (parsed once at start): the archive's own
    directory is never parsed again, nor kept.
    """
    import io
    import shutil
    import tempfile
    import zipfile
    import zipimport

    os.makedirs(cache, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".unpack-", dir=cache)
    try:
        unpacked = os.path.join(scratch, "native")
        data = zipimport.zipimporter(archive).get_data(f"native/{bundle}.zip")
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            del data
            for info in zf.infolist():
                if info.is_dir():
                    continue
                dest = zf.extract(info, unpacked)
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    os.chmod(dest, mode)
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

    def __init__(self, archive: str, target: str) -> None:
        self.archive, self.target = archive, target

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        entries = NATIVE.get(name) if path is None else None
        if entries is None or os.path.exists(os.path.join(self.target, entries[-1])):
            return None
        import importlib.machinery

        return importlib.machinery.ModuleSpec(name, _Unpacker(self, entries))

    def unpack(self, name: str, entries: list[str]) -> None:
        cache = os.path.dirname(self.target)
        try:
            _unpack(self.archive, cache, name, entries, self.target)
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
    sys.path.insert(0, os.path.join(archive, "site"))
    target = os.path.join(_cache_root(), BUILD_ID)
    try:
        used = os.stat(target).st_mtime
    except (FileNotFoundError, NotADirectoryError):
        try:
            _unpack(archive, os.path.dirname(target), FIRST_RUN, [], target)
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
    sys.path.insert(1, target)
    sys.meta_path.insert(0, _NativeFinder(archive, target))
    _read_resources_through_the_importer(archive)


def _read_resources_through_the_importer(archive: str) -> None:
    """`importlib.resources.files()` of a package in the archive reads from the directory
    zipimport parsed once at start, instead of opening the archive and parsing its whole
    central directory again at every call (thousands of entries: ~30 ms of CPU each, and
    a `vm` that does it ten times at start kept megabytes of freed memory fragmented).
    Every package reads its data this way, ours and third-party ones alike. Left as it is
    when this interpreter's zipimport keeps no such directory."""
    import zipimport

    per_call = zipimport.zipimporter.get_resource_reader

    def get_resource_reader(self: zipimport.zipimporter, fullname: str) -> object:
        reader = per_call(self, fullname)
        directory = getattr(zipimport, "_zip_directory_cache", {}).get(archive)
        if reader is not None and self.archive == archive and directory is not None:
            importer, at = zipimport.zipimporter(archive), reader.prefix.strip("/")
            reader.files = lambda: _entry_class()(importer, _tree(archive, directory, at), at)
        return reader

    zipimport.zipimporter.get_resource_reader = get_resource_reader  # type: ignore[method-assign]


_TREES: dict[tuple[str, str], tuple[set[str], dict[str, set[str]]]] = {}


def _tree(archive: str, directory: dict[str, Any], at: str) -> tuple[set[str], dict[str, set[str]]]:
    """The files under the package folder `at` (`site/a/b`), and each folder's children
    (`site/a/b/c` -> {names}), built once per package from zipimport's directory (whose
    keys are paths in the archive, folders ending in `/`). Only the few packages whose data
    is read pay for a tree, and only for their own files."""
    key = (archive, at)
    if key not in _TREES:
        files: set[str] = set()
        children: dict[str, set[str]] = {}
        base = len(at.split("/"))
        for name in directory:
            name = name.replace(os.sep, "/")
            if not name.startswith(at + "/"):
                continue
            parts = name.rstrip("/").split("/")
            if not name.endswith("/"):
                files.add(name)
            for depth in range(base + 1, len(parts) + 1):
                children.setdefault("/".join(parts[: depth - 1]), set()).add(parts[depth - 1])
        _TREES[key] = files, children
    return _TREES[key]


@functools.cache
def _entry_class() -> type:
    """The `Traversable` of an archive entry (built at the first resource read: the ABC's
    module is not worth importing for `--help`)."""
    import io
    from importlib.resources.abc import Traversable

    class Entry(Traversable):
        """A file or folder of the archive; `at` is its path in the archive (`a/b`)."""

        def __init__(self, importer: Any, tree: Any, at: str) -> None:
            self._importer, self._tree, self._at = importer, tree, at.strip("/")

        @property
        def name(self) -> str:
            return self._at.rpartition("/")[2]

        def is_file(self) -> bool:
            return self._at in self._tree[0]

        def is_dir(self) -> bool:
            return self._at in self._tree[1] and not self.is_file()

        def iterdir(self) -> Iterator["Entry"]:
            for child in sorted(self._tree[1].get(self._at, ())) if self.is_dir() else ():
                yield Entry(self._importer, self._tree, f"{self._at}/{child}")

        def joinpath(self, *parts: str) -> "Entry":
            names = [p for part in parts for p in os.fspath(part).split("/") if p]
            return Entry(self._importer, self._tree, "/".join([self._at, *names]))

        def read_bytes(self) -> bytes:
            if not self.is_file():
                raise FileNotFoundError(f"{self._at}: no such file in the archive")
            data: bytes = self._importer.get_data(self._at)
            return data

        def open(self, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
            if mode not in ("r", "rb"):
                raise ValueError(f"package data opens read-only, not {mode!r}")
            data = io.BytesIO(self.read_bytes())
            return data if mode == "rb" else io.TextIOWrapper(data, *args, **kwargs)

        def __repr__(self) -> str:
            return f"<oxydra.pyz entry {self._at}>"

    return Entry


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
