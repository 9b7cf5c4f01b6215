"""Entry point of `oxydra.pyz` (copied into the archive as `__main__.py`).

Pure-Python code runs straight from the archive. Packages with native extensions cannot be
imported from a zip, so the first run unpacks them once into a cache directory named by the
build id (`$OXYDRA_PYZ_CACHE`, else `$XDG_CACHE_HOME/oxydra/pyz`, else `~/.cache/oxydra/pyz`);
later runs pay one `stat` for that. The unpack is atomic (temp dir + rename), so two first
runs at once, or a run killed midway, never leave a half-filled cache in use.

Each run marks its cache dir as used (its mtime, refreshed at most hourly). When a new build
unpacks, the dirs of other builds unused for `PRUNE_AFTER_SECS`, and scratch dirs of
unpacks that died, are removed, so rebuilding does not pile up copies of the native
packages.
"""

import os
import sys
import time

BUILD_ID = "dev"  # replaced by build_pyz.py
PRUNE_AFTER_SECS = 24 * 3600
TOUCH_AFTER_SECS = 3600


def _cache_root() -> str:
    explicit = os.environ.get("OXYDRA_PYZ_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "oxydra", "pyz")


def _unpack_native(archive: str, target: str) -> None:
    import shutil
    import tempfile
    import zipfile

    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".unpack-", dir=parent)
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.filename.startswith("native/") and not info.is_dir():
                    dest = zf.extract(info, scratch)
                    mode = (info.external_attr >> 16) & 0o777
                    if mode:
                        os.chmod(dest, mode)
        try:
            os.rename(os.path.join(scratch, "native"), target)
        except OSError:
            if not os.path.isdir(target):  # another process won the race: theirs is complete
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _prepare_path() -> None:
    archive = os.path.dirname(os.path.abspath(__file__))
    if not os.path.isfile(archive):  # run from a source tree, not an archive
        return
    sys.path.insert(0, os.path.join(archive, "site"))
    target = os.path.join(_cache_root(), BUILD_ID)
    try:
        used = os.stat(target).st_mtime
    except FileNotFoundError:
        _unpack_native(archive, target)
        _prune(os.path.dirname(target))
    else:
        if time.time() - used > TOUCH_AFTER_SECS:
            os.utime(target)
    sys.path.insert(1, target)


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
    from oxydra.cli import main

    sys.exit(main())
