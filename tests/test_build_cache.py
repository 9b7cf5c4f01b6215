"""The archive build's cache of compressed members: a hit is the same member a fresh
compression makes, a damaged entry is never shipped, old entries go."""

from __future__ import annotations

import hashlib
import marshal
import os
import time
import zipfile
from pathlib import Path

import pytest

import build_pyz
from oxydra.runner._pack import pack_files, read_pack

LZMA, KIND = build_pyz.XZ, f"pack-{build_pyz.XZ}"
DATA = bytes(range(256)) * 600 + b"an ELF would be here" * 5000


@pytest.mark.parametrize("method", [build_pyz.XZ, build_pyz.DEFLATED])
def test_a_cached_member_is_the_member_a_fresh_compression_makes(
    tmp_path: Path, method: int
) -> None:
    (tmp_path / "lib.so").write_bytes(DATA)
    (tmp_path / "after.txt").write_bytes(b"next file")
    cache = build_pyz.MemberCache(tmp_path / "cache")
    first = build_pyz.pack_all([(tmp_path / "lib.so", method)], cache)
    again = build_pyz.pack_all([(tmp_path / "lib.so", method)], cache)
    assert first == again
    assert first[tmp_path / "lib.so"] == (
        hashlib.sha256(DATA).digest(),
        build_pyz.packed_member(DATA, method),
    )
    files = [(tmp_path / "lib.so", method), (tmp_path / "after.txt", build_pyz.DEFLATED)]
    packed = {**again, **build_pyz.pack_all(files[1:], None)}
    entries = [("native/lib.so", tmp_path / "lib.so"), ("site/after.txt", tmp_path / "after.txt")]
    archive = tmp_path / "a.pyz"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(build_pyz.PACK, build_pyz.build_pack(entries, [m for _, m in files], packed))
    read = {f.name: f.data for f in pack_files(archive)}
    assert read == {"native/lib.so": DATA, "site/after.txt": b"next file"}
    assert [f.name for f in pack_files(archive, "native/")] == ["native/lib.so"]
    index, _folders, _ = read_pack(archive)
    assert index["native/lib.so"][3] == method
    assert index["site/after.txt"][3] == build_pyz.STORED  # deflate made 9 bytes longer


def test_a_cached_pyc_is_the_one_a_fresh_compile_writes_for_that_name(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    raise ValueError('x')\n")
    fresh = tmp_path / "fresh.py"
    fresh.write_text(source.read_text())
    cache = build_pyz.MemberCache(tmp_path / "cache")
    build_pyz.compile_legacy_pyc(source, "oxydra.pyz/site/mod.py", cache)
    first = (tmp_path / "mod.pyc").read_bytes()
    (tmp_path / "mod.pyc").unlink()
    build_pyz.compile_legacy_pyc(source, "oxydra.pyz/site/mod.py", cache)  # from the cache
    build_pyz.compile_legacy_pyc(fresh, "oxydra.pyz/site/mod.py")  # no cache
    cached, uncached = (tmp_path / "mod.pyc").read_bytes(), (tmp_path / "fresh.pyc").read_bytes()
    assert cached == first and cached[:16] == uncached[:16]  # magic, flags, source hash
    assert marshal.loads(cached[16:]) == marshal.loads(uncached[16:])
    build_pyz.compile_legacy_pyc(source, "oxydra.pyz/site/other.py", cache)
    code = marshal.loads((tmp_path / "mod.pyc").read_bytes()[16:])
    assert code.co_filename == "oxydra.pyz/site/other.py"  # another name is another entry


def test_a_damaged_entry_is_a_miss_and_is_made_again(tmp_path: Path) -> None:
    cache = build_pyz.MemberCache(tmp_path / "cache")
    cache.put(KIND, DATA, build_pyz.packed_member(DATA, LZMA))
    (entry,) = (tmp_path / "cache").glob("*.member")
    held = bytearray(entry.read_bytes())
    held[-10] ^= 0xFF  # one flipped byte in the compressed stream
    entry.write_bytes(bytes(held))
    assert cache.get(KIND, DATA) is None
    entry.write_bytes(held[:20])  # cut short
    assert cache.get(KIND, DATA) is None
    (tmp_path / "lib.so").write_bytes(DATA)
    _, packed = build_pyz.pack_all([(tmp_path / "lib.so", LZMA)], cache)[tmp_path / "lib.so"]
    assert packed == build_pyz.packed_member(DATA, LZMA) and cache.get(KIND, DATA) == packed


def test_entries_unused_for_30_days_are_pruned_and_a_hit_keeps_one(tmp_path: Path) -> None:
    cache = build_pyz.MemberCache(tmp_path / "cache")
    old, used = b"old" * 1000, b"used" * 1000
    cache.put(KIND, old, build_pyz.packed_member(old, LZMA))
    cache.put(KIND, used, build_pyz.packed_member(used, LZMA))
    for entry in (tmp_path / "cache").glob("*.member"):
        os.utime(entry, (1e9, 1e9))  # 2001
    assert cache.get(KIND, used) is not None  # a hit marks the entry used now
    assert cache.prune(time.time()) == 1
    assert cache.get(KIND, old) is None and cache.get(KIND, used) is not None


def test_a_cache_that_cannot_be_made_leaves_the_build_without_one(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert build_pyz.open_cache(blocker / "pyz") is None
