"""The bootstrap (`oxydra.py`) imports from the pack `build_pyz.py` writes: modules, package
data, namespace packages, tracebacks with source lines; without parsing a zip directory of
the pack's files or opening the archive again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import build_pyz

PROBE = """
import json, sys, traceback, zipfile, zipimport
archive = sys.argv[1]
opened = []
real_init = zipfile.ZipFile.__init__
def counting(self, *args, **kwargs):
    opened.append(str(args[0] if args else kwargs))
    real_init(self, *args, **kwargs)
zipfile.ZipFile.__init__ = counting
import runpy
boot = runpy.run_path(archive, run_name="boot")
if sys.argv[2] == "other-interpreter":  # bytecode this interpreter cannot load
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_ArchiveImporter"]
    importer = boot["_ArchiveImporter"](boot["_Pack"](archive))
    importer._magic = b"XXXX"
    sys.meta_path.insert(0, importer)
else:
    boot["_prepare_path"]()
import zpkg.mod, zpkg.ns.leaf
from importlib import resources
a, b = resources.files("zpkg.data"), resources.files("zpkg")
try:
    zpkg.mod.fail()
except ValueError:
    shown = traceback.format_exc()
print(json.dumps({
    "text": [a.joinpath("x.txt").read_text(), b.joinpath("data", "x.txt").read_text()],
    "listing": sorted(e.name for e in a.iterdir()),
    "dirs": [(b / "data" / "sub").is_dir(), (b / "data" / "x.txt").is_dir()],
    "deep": (b / "data" / "sub" / "y.txt").read_bytes().decode(),
    "file": zpkg.mod.__file__,
    "ns": [zpkg.ns.leaf.VALUE, list(zpkg.ns.__path__)],
    "shown": shown,
    "zip_entries": len(zipimport._zip_directory_cache.get(archive, {})),
    "opened": opened,
    "missing": __import__("importlib.util").util.find_spec("zpkg.nope") is None,
}))
"""


def _archive(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "zpkg" / "data" / "sub").mkdir(parents=True)
    (site / "zpkg" / "__init__.py").write_text("")
    (site / "zpkg" / "mod.py").write_text("def fail():\n    raise ValueError('from the pack')\n")
    (site / "zpkg" / "data" / "__init__.py").write_text("")
    (site / "zpkg" / "data" / "x.txt").write_text("hello")
    (site / "zpkg" / "data" / "sub" / "y.txt").write_text("deep")
    (site / "zpkg" / "ns").mkdir()  # a namespace package inside one (as in fastembed)
    (site / "zpkg" / "ns" / "leaf.py").write_text("VALUE = 7\n")
    out = tmp_path / "t.pyz"
    build_pyz.write_archive(site, out, None)
    return out


def _probe(archive: Path, how: str, home: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(archive), how],
        capture_output=True,
        text=True,
        env={"HOME": str(home)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_modules_data_and_namespaces_come_from_the_pack(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    got = _probe(archive, "this-interpreter", tmp_path)
    assert got["text"] == ["hello", "hello"]
    assert got["listing"] == ["__init__.py", "__init__.pyc", "sub", "x.txt"]
    assert got["dirs"] == [True, False] and got["deep"] == "deep"
    assert got["file"] == f"{archive}/site/zpkg/mod.py"
    assert got["ns"] == [7, [f"{archive}/site/zpkg/ns"]]
    assert "raise ValueError('from the pack')" in str(got["shown"])  # the source line
    assert got["missing"] is True
    # the bootstrap (source and compiled) and the pack, not one entry per file
    assert got["zip_entries"] == 3
    assert got["opened"] == [], "the archive was opened and parsed again"


def test_bytecode_of_another_interpreter_is_compiled_from_the_source(tmp_path: Path) -> None:
    got = _probe(_archive(tmp_path), "other-interpreter", tmp_path)
    assert got["text"] == ["hello", "hello"]
    assert "raise ValueError('from the pack')" in str(got["shown"])


def test_a_module_is_inflated_once_and_a_cut_copy_is_made_again(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    _probe(archive, "this-interpreter", tmp_path)
    (build,) = (tmp_path / ".cache" / "oxydra" / "pyz").iterdir()
    kept = build / ".compiled" / "zpkg" / "mod.pyc"
    whole = kept.read_bytes()
    assert whole[16:] and not list(kept.parent.glob("*.tmp"))
    kept.write_bytes(whole[:10])  # a write cut short
    got = _probe(archive, "this-interpreter", tmp_path)
    assert "raise ValueError('from the pack')" in str(got["shown"])
    assert kept.read_bytes() == whole
    shutil.rmtree(build / ".compiled")
    (build / ".compiled").write_text("")  # nowhere to write (as a read-only guest image)
    assert _probe(archive, "this-interpreter", tmp_path)["text"] == ["hello", "hello"]


def test_first_runs_at_once_share_one_cache_and_leave_whole_files(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    argv = [sys.executable, "-I", "-c", PROBE, str(archive), "this-interpreter"]
    runs = [
        subprocess.Popen(argv, env={"HOME": str(tmp_path)}, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0]
    assert all(json.loads(out)["text"] == ["hello", "hello"] for out in outputs)
    (build,) = (tmp_path / ".cache" / "oxydra" / "pyz").iterdir()
    kept = sorted(p.name for p in (build / ".compiled" / "zpkg").rglob("*") if p.is_file())
    assert kept == ["__init__.pyc", "__init__.pyc", "leaf.pyc", "mod.pyc"]  # no .tmp left


class _Writes:
    """A file that keeps what it is given and the largest single write."""

    def __init__(self) -> None:
        self.data, self.largest = bytearray(), 0

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        self.largest = max(self.largest, len(chunk))
        return len(chunk)


def test_a_native_file_is_unpacked_a_chunk_at_a_time(tmp_path: Path) -> None:
    """Bytes as they are packed, never in one buffer the size of the file (a freed buffer
    of tens of MB left glibc keeping that much heap)."""
    import os
    import runpy

    site = tmp_path / "site"
    (site / "zn").mkdir(parents=True)
    (site / "zn" / "__init__.py").write_text("")
    big = b"abc" * 200_000 + os.urandom(100_000)  # compresses ~10x, then not at all
    (site / "zn" / "_core.cpython-311-x86_64-linux-gnu.so").write_bytes(big)
    (site / "zn" / "table.txt").write_bytes(b"x" * 50_000)  # under LZMA_FROM: deflated
    archive = tmp_path / "t.pyz"
    build_pyz.write_archive(site, archive, None)
    boot = runpy.run_path(str(archive), run_name="boot")
    pack = boot["_Pack"](str(archive))
    methods = set()
    for name in ("native/zn/_core.cpython-311-x86_64-linux-gnu.so", "native/zn/table.txt"):
        methods.add(pack.files[name][3])
        out = _Writes()
        pack.copy(name, out, chunk=4096)
        assert bytes(out.data) == pack.read(name)
        assert out.largest <= 4096
    assert methods == {build_pyz.XZ, build_pyz.DEFLATED}
    os.close(pack.fd)
