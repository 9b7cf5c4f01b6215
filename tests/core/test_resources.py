"""Package data read through one index of the archive (`oxydra._resources`)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from oxydra import _resources

PROBE = """
import sys, zipfile
sys.path.insert(0, sys.argv[1])
from importlib import resources
from oxydra import _resources
opened = []
real_init = zipfile.ZipFile.__init__
def counting(self, *args, **kwargs):
    opened.append(args[0] if args else kwargs)
    real_init(self, *args, **kwargs)
zipfile.ZipFile.__init__ = counting
a = _resources.files("zpkg.data")
b = _resources.files("zpkg")
print(a.joinpath("x.txt").read_text(), b.joinpath("data", "x.txt").read_text())
print(sorted(e.name for e in a.iterdir()))
print(sorted(e.name for e in resources.files("zpkg.data").iterdir()))
print(len(opened))
"""


def test_packages_in_one_zip_share_one_index_and_read_the_same(tmp_path: Path) -> None:
    archive = tmp_path / "pkgs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zpkg/__init__.py", "")
        zf.writestr("zpkg/data/__init__.py", "")
        zf.writestr("zpkg/data/x.txt", "hello")
        zf.writestr("zpkg/data/sub/y.txt", "deep")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(archive)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "hello hello"
    assert out[1] == out[2] == str(["__init__.py", "sub", "x.txt"])
    assert out[3] == "1"  # ours reads zipimport's index; importlib.resources opens it again


def test_outside_an_archive_it_is_importlib_resources() -> None:
    from importlib import resources

    assert _resources.files("oxydra.catalog") == resources.files("oxydra.catalog")
