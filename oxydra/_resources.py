"""Package data, read through one index of the archive per process.

`importlib.resources.files(pkg)` on a package imported from a zip (`oxydra.pyz`) opens the
archive anew and re-reads its whole central directory (~8,000 entries), then builds the
set of implied directories: ~20 ms of CPU per call, and a turn made several (the catalog,
its overrides, the WASM guest twice, the built-in skills, the migrations). `files` returns
the same `Traversable`, but every package of one archive shares one opened `ZipFile` whose
name index is built once. Outside an archive it is `importlib.resources.files`.
"""

from __future__ import annotations

import functools
import importlib
import os
import zipfile
from importlib import resources
from importlib.resources.abc import Traversable


@functools.cache
def _archive(path: str) -> zipfile.Path:
    """The archive's root; its `ZipFile` caches the name index (zipfile's FastLookup)."""
    return zipfile.Path(path)


def files(package: str) -> Traversable:
    """The directory of `package` (imported if it is not yet) as a `Traversable`."""
    module = importlib.import_module(package)
    archive = getattr(getattr(module, "__loader__", None), "archive", None)
    where = getattr(module, "__file__", None)
    if not isinstance(archive, str) or not isinstance(where, str):
        return resources.files(package)
    inner = os.path.dirname(where)[len(archive) + 1 :].replace(os.sep, "/")
    return _archive(archive).joinpath(inner + "/")
