"""The archive build's cache of compressed members: a hit is the same member a fresh
compression makes, a damaged entry is never shipped, old entries go."""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import build_pyz

DATA = bytes(range(256)) * 600 + b"an ELF would be here" * 5000


def test_a_cached_member_is_the_member_a_fresh_compression_makes(tmp_path: Path) -> None:
    (tmp_path / "lib.so").write_bytes(DATA)
    cache = build_pyz.MemberCache(tmp_path / "cache")
    first = build_pyz.pack_all([tmp_path / "lib.so"], cache)
    again = build_pyz.pack_all([tmp_path / "lib.so"], cache)
    assert first == again
    assert first[tmp_path / "lib.so"] == build_pyz.lzma_member(DATA)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("native/lib.so")
        build_pyz.write_packed(zf, info, DATA, again[tmp_path / "lib.so"])
        zf.writestr("after.txt", b"next member")
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None  # every member's CRC checks
        assert zf.getinfo("native/lib.so").compress_type == zipfile.ZIP_LZMA
        assert zf.read("native/lib.so") == DATA and zf.read("after.txt") == b"next member"


def test_a_damaged_entry_is_a_miss_and_is_made_again(tmp_path: Path) -> None:
    cache = build_pyz.MemberCache(tmp_path / "cache")
    cache.put(DATA, build_pyz.lzma_member(DATA))
    (entry,) = (tmp_path / "cache").glob("*.member")
    held = bytearray(entry.read_bytes())
    held[-10] ^= 0xFF  # one flipped byte in the compressed stream
    entry.write_bytes(bytes(held))
    assert cache.get(DATA) is None
    entry.write_bytes(held[:20])  # cut short
    assert cache.get(DATA) is None
    (tmp_path / "lib.so").write_bytes(DATA)
    packed = build_pyz.pack_all([tmp_path / "lib.so"], cache)[tmp_path / "lib.so"]
    assert packed == build_pyz.lzma_member(DATA) and cache.get(DATA) == packed


def test_entries_unused_for_30_days_are_pruned_and_a_hit_keeps_one(tmp_path: Path) -> None:
    cache = build_pyz.MemberCache(tmp_path / "cache")
    old, used = b"old" * 1000, b"used" * 1000
    cache.put(old, build_pyz.lzma_member(old))
    cache.put(used, build_pyz.lzma_member(used))
    for entry in (tmp_path / "cache").glob("*.member"):
        os.utime(entry, (1e9, 1e9))  # 2001
    assert cache.get(used) is not None  # a hit marks the entry used now
    assert cache.prune(time.time()) == 1
    assert cache.get(old) is None and cache.get(used) is not None


def test_a_cache_that_cannot_be_made_leaves_the_build_without_one(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert build_pyz.open_cache(blocker / "pyz") is None
