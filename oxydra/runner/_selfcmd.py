"""How to start another Oxydra process: from `oxydra.pyz`, or from a source tree.

From the archive the command is `python oxydra.pyz MODE ...`; from source it is
`python -m oxydra MODE ...` with the directory holding our package put first on
`PYTHONPATH`, so the child imports the very code the parent runs (not another install).
The package location is read from the imported module object rather than a data file,
which is why `__file__` is used here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import zipfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import oxydra


@cache
def archive_path() -> Path | None:
    """The `oxydra.pyz` we run from, or None when running from a source tree."""
    here = Path(os.path.abspath(oxydra.__file__)).parent
    for parent in here.parents:
        if parent.is_file():
            return parent if zipfile.is_zipfile(parent) else None
        if parent.is_dir():
            return None
    return None


def package_root() -> Path:
    """What a confined child must be able to read to import us: the archive or source root."""
    archive = archive_path()
    if archive is not None:
        return archive
    return Path(os.path.abspath(oxydra.__file__)).parent.parent


def self_command(mode: str) -> list[str]:
    """argv that starts Oxydra in `mode` with the current interpreter."""
    archive = archive_path()
    if archive is not None:
        isolated = ["-I"] if sys.flags.isolated else []  # run the child as we were run
        return [sys.executable, *isolated, str(archive), mode]
    return [sys.executable, "-m", "oxydra", mode]


def self_environment(base: Mapping[str, str]) -> dict[str, str]:
    """`base` plus what the child needs to import the same Oxydra (PYTHONPATH from source)."""
    env = dict(base)
    if archive_path() is None:
        root = str(package_root())
        rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
        env["PYTHONPATH"] = os.pathsep.join([root, *rest])
    return env


def shown_command(*args: str) -> str:
    """A command line a person can paste to run Oxydra with `args`, as this process was run.

    `oxydra` when that name on PATH is this installation's script; from a virtualenv that is
    not activated, `.venv/bin/python -m oxydra` (relative to the working directory when
    inside it); from the archive, `python3 path/to/oxydra.pyz`.
    """
    archive = archive_path()
    if archive is not None:
        head = ["python3", _relative(archive)]
    else:
        script = shutil.which("oxydra")
        ours = Path(sys.executable).parent / "oxydra"
        if script and Path(script).resolve() == ours.resolve():
            head = ["oxydra"]
        else:
            head = [_relative(Path(sys.executable)), "-m", "oxydra"]
    return " ".join(shlex.quote(part) for part in [*head, *args])


def _relative(path: Path) -> str:
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def unpack_natives() -> None:
    """From the archive: unpack all its native packages now (the archive unpacks each on its
    first import, but a confined child may only read the cache; see `oxydra.py`)."""
    for finder in sys.meta_path:
        unpack_all = getattr(finder, "unpack_all", None)
        if unpack_all is not None:
            unpack_all()
