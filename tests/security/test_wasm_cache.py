"""The compiled-guest cache: loaded only when private and verified, else compiled afresh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oxydra.security.wasm import _cache

wasmtime = pytest.importorskip("wasmtime")

NAME = "guest-test.cwasm"


def test_an_entry_round_trips_and_the_dir_and_key_are_private(tmp_path: Path) -> None:
    root = tmp_path / "wasm"
    _cache.store(NAME, b"compiled", root)
    assert _cache.load(NAME, root) == b"compiled"
    assert root.stat().st_mode & 0o777 == 0o700
    assert (root / "key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # one bit of the code
        lambda b: b[:40],  # truncated
        lambda b: b"",  # emptied
        lambda b: bytes([b[0] ^ 1]) + b[1:],  # the tag itself
    ],
)
def test_a_tampered_entry_is_never_returned(tmp_path: Path, tamper: object) -> None:
    root = tmp_path / "wasm"
    _cache.store(NAME, b"\x00asm compiled code" * 10, root)
    path = root / NAME
    path.write_bytes(tamper(path.read_bytes()))  # type: ignore[operator]
    assert _cache.load(NAME, root) is None


def test_an_entry_written_without_the_key_does_not_verify(tmp_path: Path) -> None:
    root = tmp_path / "wasm"
    _cache.store(NAME, b"real", root)
    other = tmp_path / "other"
    _cache.store(NAME, b"evil", other)  # a valid entry under another key
    (root / NAME).write_bytes((other / NAME).read_bytes())
    assert _cache.load(NAME, root) is None


def test_an_entry_is_bound_to_its_name(tmp_path: Path) -> None:
    root = tmp_path / "wasm"
    _cache.store("guest-a.cwasm", b"code for a", root)
    (root / "guest-b.cwasm").write_bytes((root / "guest-a.cwasm").read_bytes())
    assert _cache.load("guest-b.cwasm", root) is None


def test_a_dir_others_can_write_is_not_used(tmp_path: Path) -> None:
    root = tmp_path / "wasm"
    _cache.store(NAME, b"compiled", root)
    root.chmod(0o777)
    assert _cache.load(NAME, root) is None
    root.chmod(0o700)
    (root / NAME).chmod(0o666)
    assert _cache.load(NAME, root) is None


def test_a_symlinked_entry_or_key_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "wasm"
    _cache.store(NAME, b"compiled", root)
    moved = tmp_path / "elsewhere"
    (root / NAME).rename(moved)
    (root / NAME).symlink_to(moved)
    assert _cache.load(NAME, root) is None
    key = root / "key"
    key.rename(tmp_path / "key")
    key.symlink_to(tmp_path / "key")
    assert _cache.load(NAME, root) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own a file as another user")
def test_a_dir_owned_by_another_user_is_not_used(tmp_path: Path) -> None:
    root = tmp_path / "wasm"
    _cache.store(NAME, b"compiled", root)
    os.chown(root, 65534, 65534)
    assert _cache.load(NAME, root) is None


def test_an_unwritable_cache_still_compiles(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a dir")
    _cache.store(NAME, b"x", tmp_path / "file" / "wasm")  # nothing raised
    assert _cache.load(NAME, tmp_path / "file" / "wasm") is None


RUN_GUEST = """
import sys
from oxydra.security.wasm._runtime import WasmSandbox, _runtime
WasmSandbox().warm()
print(len(_runtime().modules))
"""


def _run(home: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(home)}
    subprocess.run([sys.executable, "-c", RUN_GUEST], env=env, check=True, capture_output=True)


def test_a_second_process_loads_the_guest_and_a_damaged_one_is_replaced(tmp_path: Path) -> None:
    _run(tmp_path)
    (entry,) = (tmp_path / "oxydra" / "wasm").glob("guest-*.cwasm")
    first, inode = entry.read_bytes(), entry.stat().st_ino
    _run(tmp_path)  # loaded: the entry is not rewritten (a store renames a new file in)
    assert entry.stat().st_ino == inode
    entry.write_bytes(first[:-100])
    _run(tmp_path)  # refused, compiled, written back whole
    assert entry.read_bytes() == first


def test_a_cache_the_tools_can_reach_is_never_used(tmp_path: Path) -> None:
    """A mount over the cache (a user who mounts `~`): the tools could read the key and
    plant an entry that verifies, so the process neither loads nor stores there."""
    code = """
import sys
from pathlib import Path
from oxydra.security.jail import Mount, Workspace
from oxydra.security.wasm import WasmWorkspace, _cache
home = Path(sys.argv[1])
root = home / ".cache" / "oxydra" / "wasm"
_cache.store("guest-x.cwasm", b"compiled", root)
assert _cache.load("guest-x.cwasm", root) == b"compiled"
WasmWorkspace(Workspace([Mount(virtual="/shared", host=str(home), writable=True)]))
print(_cache.load("guest-x.cwasm", root), end=" ")
_cache.store("guest-y.cwasm", b"planted", root)
print((root / "guest-y.cwasm").exists())
"""
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "False"]
