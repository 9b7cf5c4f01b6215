"""The file seam: what file tools call, so their bodies never touch the host directly.

`LocalFileBackend` runs the jail (`oxydra.security.Workspace`) in a worker thread so the
event loop never blocks on disk. A sandboxed backend (WASM guest, container daemon) can
implement the same protocol later without any tool changing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Protocol

from oxydra.security import SearchHit, Workspace


class FileBackend(Protocol):
    """Jailed file operations on virtual paths (`/shared`, `/tmp`, `/vault`)."""

    async def read_text(self, path: str, *, max_bytes: int) -> tuple[str, bool]:
        """Text of a file (UTF-8, bad bytes replaced) and whether it was cut at `max_bytes`."""
        ...

    async def read_bytes(self, path: str, *, max_bytes: int) -> tuple[bytes, bool]:
        """Bytes of a file and whether it was cut at `max_bytes`."""
        ...

    async def write_bytes(self, path: str, data: bytes) -> int:
        """Create or replace a file (parents created); returns bytes written."""
        ...

    async def update_text(self, path: str, change: Callable[[str], str]) -> str:
        """Rewrite a file through one open file; `change` may raise to abort."""
        ...

    async def delete(self, path: str) -> str:
        """Delete a file, link or tree; returns what it was."""
        ...

    async def list_dir(self, path: str) -> list[str]:
        """Sorted entries; directories end in `/`."""
        ...

    async def search(self, path: str, query: str, *, max_matches: int) -> list[SearchHit]:
        """Lines containing `query` under `path`."""
        ...

    def restricted(self, *, read: Iterable[str], write: Iterable[str]) -> FileBackend:
        """A view limited to some virtual roots (vault_copyto's two steps use it)."""
        ...

    def to_virtual(self, text: str) -> str:
        """Host paths in `text` rewritten to virtual ones."""
        ...


class LocalFileBackend:
    """`FileBackend` over the in-process jail, each call in a worker thread."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    async def read_text(self, path: str, *, max_bytes: int) -> tuple[str, bool]:
        """See `FileBackend.read_text`."""
        return await asyncio.to_thread(self.workspace.read_text, path, max_bytes=max_bytes)

    async def read_bytes(self, path: str, *, max_bytes: int) -> tuple[bytes, bool]:
        """See `FileBackend.read_bytes`."""
        return await asyncio.to_thread(self.workspace.read_bytes, path, max_bytes=max_bytes)

    async def write_bytes(self, path: str, data: bytes) -> int:
        """See `FileBackend.write_bytes`."""
        return await asyncio.to_thread(self.workspace.write_bytes, path, data)

    async def update_text(self, path: str, change: Callable[[str], str]) -> str:
        """See `FileBackend.update_text`."""
        return await asyncio.to_thread(self.workspace.update_text, path, change)

    async def delete(self, path: str) -> str:
        """See `FileBackend.delete`."""
        return await asyncio.to_thread(self.workspace.delete, path)

    async def list_dir(self, path: str) -> list[str]:
        """See `FileBackend.list_dir`."""
        return await asyncio.to_thread(self.workspace.list_dir, path)

    async def search(self, path: str, query: str, *, max_matches: int) -> list[SearchHit]:
        """See `FileBackend.search`."""
        return await asyncio.to_thread(self.workspace.search, path, query, max_matches=max_matches)

    def restricted(self, *, read: Iterable[str], write: Iterable[str]) -> LocalFileBackend:
        """See `FileBackend.restricted`."""
        return LocalFileBackend(self.workspace.restricted(read=read, write=write))

    def to_virtual(self, text: str) -> str:
        """See `FileBackend.to_virtual`."""
        return self.workspace.to_virtual(text)
