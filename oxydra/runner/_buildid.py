"""The build id of an `oxydra.pyz`: what a guest image records and the runner compares.

`build_pyz.py` writes `BUILD_ID = "<version>-<content hash>"` into the archive's
`__main__.py`; it is read back from there, so any archive (old or new) answers. A source
tree has no build id (None): it is not one reproducible thing.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from oxydra.core.errors import RunnerError
from oxydra.runner._selfcmd import archive_path

_BUILD_LINE = re.compile(r'^BUILD_ID = "([A-Za-z0-9_.+-]{1,80})"', re.MULTILINE)


def archive_build_id(archive: Path) -> str:
    """The build id written into `archive`.

    Raises:
        RunnerError: not a zip, no `__main__.py`, or a development build (`dev`).
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            head = zf.read("__main__.py")[:65536].decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise RunnerError(f"{archive} is not an oxydra.pyz archive: {exc}") from exc
    found = _BUILD_LINE.search(head)
    if found is None or found.group(1) == "dev":
        raise RunnerError(f"{archive} has no build id (build it with build_pyz.py)")
    return found.group(1)


def own_build_id() -> str | None:
    """This process's build id when it runs from an archive, else None."""
    archive = archive_path()
    return None if archive is None else archive_build_id(archive)
