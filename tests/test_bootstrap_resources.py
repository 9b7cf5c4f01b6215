"""Package data of a zip read through zipimport's own directory (the bootstrap, `oxydra.py`):
the same files and folders `importlib.resources` gives, without opening the zip again."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import importlib.util, sys, zipfile
archive, bootstrap = sys.argv[1], sys.argv[2]
sys.path.insert(0, archive)
import zpkg.data  # zipimport reads the zip's directory once, here
spec = importlib.util.spec_from_file_location("bootstrap", bootstrap)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module._read_resources_through_the_importer(archive)
from importlib import resources
opened = []
real_init = zipfile.ZipFile.__init__
def counting(self, *args, **kwargs):
    opened.append(args[0] if args else kwargs)
    real_init(self, *args, **kwargs)
zipfile.ZipFile.__init__ = counting
a = resources.files("zpkg.data")
b = resources.files("zpkg")
print(a.joinpath("x.txt").read_text(), b.joinpath("data", "x.txt").read_text())
print(sorted(e.name for e in a.iterdir()), (b / "data" / "sub").is_dir())
print(type(a).__name__, len(opened))
"""


def test_packages_in_one_zip_read_the_same_without_opening_it_again(tmp_path: Path) -> None:
    archive = tmp_path / "pkgs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zpkg/__init__.py", "")
        zf.writestr("zpkg/data/__init__.py", "")
        zf.writestr("zpkg/data/x.txt", "hello")
        zf.writestr("zpkg/data/sub/y.txt", "deep")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(archive), str(ROOT / "oxydra.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "hello hello"
    assert out[1] == str(["__init__.py", "sub", "x.txt"]) + " True"
    assert out[2] == "Entry 0"  # zipimport's index, not a second parse of the zip
