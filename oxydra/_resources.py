"""Package data, read from the archive through the index zipimport already holds.

`importlib.resources.files(pkg)` on a package imported from a zip (`oxydra.pyz`) opens the
archive anew, re-reads its whole central directory (~8,000 entries) and builds the set of
implied directories: ~20 ms of CPU per call, and a turn made several (the catalog, its
overrides, the WASM guest twice, the built-in skills, the migrations). zipimport read that
directory once, to import the package; `files` answers from its index (`_ArchiveEntry`:
names from the index, bytes through the importer's public `get_data`). Where that index is
not found (another Python's zipimport) it falls back to one shared `zipfile.Path` per
archive; outside an archive it is `importlib.resources.files`.
"""

from __future__ import annotations

import functools
import importlib
import io
import os
import zipfile
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from typing import IO, Any


class _Index:
    """The archive's names as a tree: directory (no trailing slash) -> its children."""

    def __init__(self, loader: Any, names: list[str]) -> None:
        self.loader = loader
        self.children: dict[str, set[str]] = {}
        self.files: set[str] = set()
        for raw in names:
            name = raw.replace(os.sep, "/")
            parts = name.rstrip("/").split("/")
            if not name.endswith("/"):
                self.files.add(name)
            for depth in range(1, len(parts) + 1):
                parent = "/".join(parts[: depth - 1])
                self.children.setdefault(parent, set()).add(parts[depth - 1])


class _ArchiveEntry(Traversable):
    """A file or directory of the archive, read through zipimport's index."""

    def __init__(self, index: _Index, at: str) -> None:
        self._index, self._at = index, at.strip("/")

    @property
    def name(self) -> str:
        return self._at.rsplit("/", 1)[-1]

    def is_dir(self) -> bool:
        return self._at in self._index.children and self._at not in self._index.files

    def is_file(self) -> bool:
        return self._at in self._index.files

    def iterdir(self) -> Iterator[_ArchiveEntry]:
        for child in sorted(self._index.children.get(self._at, ())) if self.is_dir() else ():
            yield _ArchiveEntry(self._index, f"{self._at}/{child}")

    def joinpath(self, *descendants: str | os.PathLike[str]) -> _ArchiveEntry:
        parts = [p for d in descendants for p in os.fspath(d).split("/") if p]
        return _ArchiveEntry(self._index, "/".join([self._at, *parts]))

    def __truediv__(self, child: str | os.PathLike[str]) -> _ArchiveEntry:
        return self.joinpath(child)

    def read_bytes(self) -> bytes:
        if not self.is_file():
            raise FileNotFoundError(self._at)
        loader = self._index.loader
        return bytes(loader.get_data(os.path.join(loader.archive, *self._at.split("/"))))

    def read_text(self, encoding: str | None = None) -> str:
        return self.read_bytes().decode(encoding or "utf-8")

    def open(self, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
        if mode not in ("r", "rb"):
            raise ValueError(f"package data opens read-only, not {mode!r}")
        data = io.BytesIO(self.read_bytes())
        return data if mode == "rb" else io.TextIOWrapper(data, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<archive entry {self._at!r}>"


_INDEXES: dict[str, _Index | None] = {}


def _index(archive: str, loader: Any) -> _Index | None:
    """zipimport's own table of the archive's names, or None where it is not to be had.

    One per archive, whichever package asked first: every package directory has its own
    importer, and any of them reads any name of the archive (`get_data` takes full paths).
    """
    if archive not in _INDEXES:
        import zipimport

        table = getattr(zipimport, "_zip_directory_cache", {}).get(archive)
        usable = callable(getattr(loader, "get_data", None))
        _INDEXES[archive] = _Index(loader, list(table)) if usable and table else None
    return _INDEXES[archive]


@functools.cache
def _archive(path: str) -> zipfile.Path:
    """The fallback: one `zipfile.Path` per archive (its `ZipFile` caches the names)."""
    return zipfile.Path(path)


def files(package: str) -> Traversable:
    """The directory of `package` (imported if it is not yet) as a `Traversable`."""
    module = importlib.import_module(package)
    loader = getattr(module, "__loader__", None)
    archive = getattr(loader, "archive", None)
    where = getattr(module, "__file__", None)
    if not isinstance(archive, str) or not isinstance(where, str):
        return resources.files(package)
    inner = os.path.dirname(where)[len(archive) + 1 :].replace(os.sep, "/")
    index = _index(archive, loader)
    if index is not None:
        return _ArchiveEntry(index, inner)
    return _archive(archive).joinpath(inner + "/")
