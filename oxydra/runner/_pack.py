"""The files inside an `oxydra.pyz` (its `oxydra.pack` member), read without running it.

`build_pyz.py` writes the pack and the archive's bootstrap (`oxydra.py`) reads it at every
start; the runner reads it too, to lay the native packages out in a guest's root file
system as the bootstrap would unpack them. The format: `OXPK1\\0`, the index's length (4
bytes, little-endian), the marshalled index `({name: (offset, stored size, size, method,
mode)}, folders)`, then each file's bytes (method 0 as is, 8 raw deflate, 14 xz).
"""

from __future__ import annotations

import lzma
import marshal
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

PACK = "oxydra.pack"
MAGIC = b"OXPK1\0"


class PackFile(NamedTuple):
    """One file of the pack: its path in it (`native/numpy/...`), mode and bytes."""

    name: str
    mode: int
    data: bytes


Index = dict[str, tuple[int, int, int, int, int]]  # name -> offset, stored, size, method, mode


def read_pack(archive: Path) -> tuple[Index, frozenset[str], memoryview]:
    """The pack's index, its folders, and the bytes its offsets count from.

    Raises:
        ValueError: the archive holds no pack of this format.
        OSError, KeyError, zipfile.BadZipFile: not a readable archive with a pack.
    """
    with zipfile.ZipFile(archive) as zf, zf.open(PACK) as member:
        pack = memoryview(member.read())
    if bytes(pack[: len(MAGIC)]) != MAGIC:
        raise ValueError(f"{archive}: {PACK} is not a pack of this format")
    size = int.from_bytes(pack[len(MAGIC) : len(MAGIC) + 4], "little")
    start = len(MAGIC) + 4 + size
    files, folders = marshal.loads(pack[len(MAGIC) + 4 : start])
    return files, folders, pack[start:]


def pack_files(archive: Path, prefix: str = "") -> Iterator[PackFile]:
    """Every file whose name starts with `prefix`, in index order (errors: `read_pack`)."""
    files, _folders, data = read_pack(archive)
    for name, (offset, stored, _size, method, mode) in files.items():
        if name.startswith(prefix):
            yield PackFile(name, mode, _inflate(bytes(data[offset : offset + stored]), method))


def _inflate(data: bytes, method: int) -> bytes:
    if method == 8:
        return zlib.decompress(data, -15)
    if method == 14:
        return lzma.decompress(data)
    return data
